"""Input embeddings of image codes: a projection of each code's dequantized FSQ vector.

A code's FSQ vector (``qkvae.fsq.implicit_codebook``: 5 numbers in [-1, 1]) already says which
codes look alike, so its embedding is a learned linear map of that vector, plus an optional
learned per-id residual (zero at the start). ``ImageTokenEmbedding`` maps code ids to vectors;
``ImageAwareEmbedding`` plugs it into a language model as its input embedding, next to the text
rows and the three special tokens.
"""

import torch
from torch import Tensor, nn

from qkvae.fsq import implicit_codebook
from qkvae.lm.layout import ImageVocab


class ImageTokenEmbedding(nn.Module):
    """Code ids (...) in 0..codebook_size-1 -> (..., hidden): ``proj(fsq_vector(id)) [+ residual[id]]``."""

    def __init__(self, levels, hidden: int, residual: bool = False):
        super().__init__()
        self.levels = tuple(levels)
        self.register_buffer("codebook", implicit_codebook(self.levels), persistent=False)  # (C, D)
        self.proj = nn.Linear(len(self.levels), hidden)
        self.residual = nn.Embedding(len(self.codebook), hidden) if residual else None
        if self.residual is not None:
            nn.init.zeros_(self.residual.weight)

    def table(self) -> Tensor:
        """Every code's embedding, (C, hidden): the rows a tied output layer scores against."""
        rows = self.proj(self.codebook)
        return rows if self.residual is None else rows + self.residual.weight

    def forward(self, codes: Tensor) -> Tensor:
        out = self.proj(self.codebook[codes])
        return out if self.residual is None else out + self.residual(codes)


class ImageAwareEmbedding(nn.Module):
    """The input embedding of an extended LM: text ids and the three special ids read ``text``
    (base + 3 rows; a special id at ``code_offset + C + k`` reads row ``base + k``), code ids
    read ``image``."""

    def __init__(self, text: nn.Embedding, image: ImageTokenEmbedding, vocab: ImageVocab):
        super().__init__()
        if text.num_embeddings != vocab.code_offset + 3:
            raise ValueError(f"the text embedding needs {vocab.code_offset + 3} rows (text and the three "
                             f"special tokens), it has {text.num_embeddings}")
        self.text, self.image, self.vocab = text, image, vocab

    def forward(self, input_ids: Tensor) -> Tensor:
        offset, size = self.vocab.code_offset, self.vocab.codebook_size
        is_code = (input_ids >= offset) & (input_ids < offset + size)
        text_ids = torch.where(input_ids >= offset + size, input_ids - size, input_ids)
        codes = (input_ids - offset).clamp(0, size - 1)
        return torch.where(is_code[..., None], self.image(codes), self.text(torch.where(is_code, 0, text_ids)))
