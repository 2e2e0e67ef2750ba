"""Give any Hugging Face causal LM (and its tokenizer) our image tokens.

``extend(tokenizer, model)`` appends the codebook's ids and ``<img_start>``, ``<img_end>``,
``<img_newrow>`` in ``qkvae.tokens.lm_vocab``'s layout: code ``i`` at ``len(tokenizer) + i``, the
special tokens after the codes. They are also added to the tokenizer as special added tokens
(``<img_00000>`` ... ``<img_15359>``) in that same order, so ``tokenizer.decode`` shows them, text
holding ``<img_start>`` tokenizes to its id, and ``save_pretrained`` writes one merged tokenizer
file. The image rows of the embedding start as the card's recipe says: a projection of each
code's dequantized FSQ vector, scaled to the text rows' spread.
"""

import torch
from torch import nn

from qkvae.fsq import implicit_codebook
from qkvae.lm.embedding import ImageAwareEmbedding, ImageTokenEmbedding
from qkvae.lm.layout import ImageVocab
from qkvae.model import QKVAEConfig
from qkvae.tokens import SPECIAL_TOKENS


def code_token_names(config: QKVAEConfig = QKVAEConfig()) -> list[str]:
    """The tokenizer's names of the codes: ``<img_00000>`` ... , zero-padded to the largest id."""
    width = len(str(config.codebook_size - 1))
    return [f"<img_{i:0{width}d}>" for i in range(config.codebook_size)]


def extend(tokenizer, model, config: QKVAEConfig = QKVAEConfig(), seed: int = 0) -> ImageVocab:
    """Add the image tokens to ``tokenizer`` and ``model`` (in place) and return where they sit.

    The embedding grows to ``vocab.vocab_size`` rows (more if the model already had more, as
    padded vocabularies do). Code rows of the input embedding, and of an untied output layer,
    are ``fsq_vector @ P`` for one seeded random ``P`` (D, hidden), scaled to the standard
    deviation of the text rows; the special rows keep ``resize_token_embeddings``'s start.
    """
    if "<img_start>" in tokenizer.get_vocab():
        raise ValueError("the tokenizer already has the image tokens (extend it once)")
    vocab = ImageVocab.after(len(tokenizer), config)
    tokenizer.add_tokens(code_token_names(config) + list(SPECIAL_TOKENS), special_tokens=True)
    if len(tokenizer) != vocab.vocab_size or tokenizer.convert_tokens_to_ids("<img_end>") != vocab.img_end:
        raise ValueError(f"the tokenizer placed the image tokens elsewhere than ids {vocab.code_offset}.."
                         f"{vocab.vocab_size - 1} (some of its names were already taken?)")
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(rows, vocab.vocab_size))
    with torch.no_grad():
        init = code_rows(model.get_input_embeddings().weight[:vocab.code_offset], config, seed)
        codes = slice(vocab.code_offset, vocab.code_offset + vocab.codebook_size)
        for layer in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}.values():
            layer.weight[codes] = init.to(layer.weight.dtype)
    return vocab


def code_rows(text_rows: torch.Tensor, config: QKVAEConfig, seed: int) -> torch.Tensor:
    """The card's start for code embeddings: (C, hidden) = FSQ vectors @ a seeded random projection,
    scaled to ``text_rows``' standard deviation (1 when there are no text rows)."""
    generator = torch.Generator().manual_seed(seed)
    projection = torch.randn(len(config.levels), text_rows.shape[1], generator=generator)
    rows = implicit_codebook(config.levels) @ projection
    scale = text_rows.float().std() if len(text_rows) > 1 else torch.tensor(1.0)
    return rows * (scale / rows.std())


def plug_image_embedding(model, vocab: ImageVocab, residual: bool = False) -> ImageAwareEmbedding:
    """Replace an extended model's input embedding by an ``ImageAwareEmbedding`` whose projection
    (and optional per-id residual) is learned, starting from the current rows: the projection is
    the least-squares fit of the code rows, so after ``extend`` the model computes the same.
    The output layer keeps its own rows."""
    weight = model.get_input_embeddings().weight.detach()
    specials = [vocab.img_start, vocab.img_end, vocab.img_newrow]
    text = nn.Embedding.from_pretrained(torch.cat([weight[:vocab.code_offset], weight[specials]]), freeze=False)
    image = ImageTokenEmbedding(vocab.config.levels, weight.shape[1], residual).to(weight.device, weight.dtype)
    codes = weight[vocab.code_offset:vocab.code_offset + vocab.codebook_size].float()
    design = torch.cat([image.codebook, torch.ones(len(codes), 1, device=codes.device)], dim=1)  # (C, D + 1)
    solution = torch.linalg.lstsq(design.float(), codes).solution  # (D + 1, hidden)
    with torch.no_grad():
        image.proj.weight.copy_(solution[:-1].T)
        image.proj.bias.copy_(solution[-1])
    embedding = ImageAwareEmbedding(text, image, vocab)
    model.set_input_embeddings(embedding)
    return embedding
