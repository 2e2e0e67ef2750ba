"""Image tokens for language models (the ``lm`` extra: ``pip install 'qkvae-studio[lm]'``).

    from qkvae.lm import extend, image_to_ids, ids_to_image, ImageLayoutProcessor
    vocab = extend(tokenizer, model)              # any Hugging Face causal LM, in place
    ids = image_to_ids(x, qkvae_model, vocab)     # <img_start>, 48 rows + <img_newrow>, <img_end>
    out = model.generate(..., logits_processor=[ImageLayoutProcessor(vocab)])
    x_hat = ids_to_image(out[0], qkvae_model, vocab)

``python -m qkvae.lm train --shards DIR --out RUN`` trains the probe (``qkvae.lm.probe``).
``import qkvae`` does not import this package (it needs ``transformers``).
"""

from qkvae.lm.embedding import ImageAwareEmbedding, ImageTokenEmbedding
from qkvae.lm.extend import code_token_names, extend, plug_image_embedding
from qkvae.lm.layout import (ImageLayoutProcessor, ImageVocab, LayoutError, grid_to_ids, ids_to_grid, ids_to_image,
                             image_to_ids)

__all__ = [
    "extend", "plug_image_embedding", "code_token_names", "ImageTokenEmbedding", "ImageAwareEmbedding",
    "ImageVocab", "LayoutError", "ImageLayoutProcessor", "grid_to_ids", "ids_to_grid", "image_to_ids", "ids_to_image",
]
