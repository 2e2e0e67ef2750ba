"""Images as language-model ids and back: the sequence layout, its parser, and a generation guard.

The layout is ``qkvae.tokens.lm_sequence``'s: ``<img_start>``, each of the 48 rows of 48 code
ids (offset by the text vocabulary) followed by ``<img_newrow>``, then ``<img_end>``; 2,354
positions with the default config. Code ``i`` is id ``code_offset + i``; the three special ids
follow the codes (``qkvae.tokens.lm_vocab``).
"""

from dataclasses import dataclass

import numpy as np
import torch
from transformers import LogitsProcessor

from qkvae.model import QKVAE, QKVAEConfig
from qkvae.tokens import LMVocab, TokenError, lm_sequence, lm_vocab


class LayoutError(TokenError):
    """A sequence of LM ids that is not one image in our layout."""


@dataclass(frozen=True)
class ImageVocab(LMVocab):
    """``qkvae.tokens.LMVocab`` with the tokenizer's config: where the image tokens sit in a
    language model's vocabulary, and the grid they spell."""

    config: QKVAEConfig

    @classmethod
    def after(cls, base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> "ImageVocab":
        """The image tokens appended to a text vocabulary of ``base_vocab_size`` ids."""
        return cls(**vars(lm_vocab(base_vocab_size, config)), config=config)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def row_length(self) -> int:
        """Ids per grid row in the sequence: the codes and their ``<img_newrow>``."""
        return self.config.grid_size + 1

    @property
    def sequence_length(self) -> int:
        """Positions of one image: ``<img_start>``, the rows, ``<img_end>``."""
        return 2 + self.config.grid_size * self.row_length


def grid_to_ids(indices, vocab: ImageVocab) -> np.ndarray:
    """Token ids of one image ((48, 48) or flat) -> its LM ids, int64 (``vocab.sequence_length``,)."""
    return lm_sequence(indices, vocab.code_offset, vocab.config)


@torch.no_grad()
def image_to_ids(image: torch.Tensor, model: QKVAE, vocab: ImageVocab) -> np.ndarray:
    """An image (3, 96, 96) in [-1, 1] -> its LM ids through ``model.encode``."""
    indices = model.encode(image[None].to(model.device))[0]
    return grid_to_ids(indices.cpu().numpy(), vocab)


def ids_to_grid(ids, vocab: ImageVocab) -> np.ndarray:
    """LM ids of one image (generated or read back) -> int64 (48, 48) code ids.

    Ids before ``<img_start>`` (a text prompt) and after ``<img_end>`` are ignored. Raises
    ``LayoutError`` naming the first thing wrong: no ``<img_start>``, a row too short or too
    long, an id that is not a code where a code belongs, too many rows, or no ``<img_end>``.
    """
    seq = np.asarray(ids, dtype=np.int64).ravel()
    starts = np.flatnonzero(seq == vocab.img_start)
    if not starts.size:
        raise LayoutError("no <img_start> in the sequence")
    g = vocab.config.grid_size
    rows, pos = [], int(starts[0]) + 1
    while len(rows) < g:
        newrows = np.flatnonzero(seq[pos:] == vocab.img_newrow)
        end = pos + int(newrows[0]) if newrows.size else len(seq)
        row = seq[pos:end]
        if vocab.img_end in row:
            row = row[:int(np.flatnonzero(row == vocab.img_end)[0])]
            raise LayoutError(f"<img_end> after {len(rows)} rows (and {len(row)} ids); an image has {g} rows")
        if not newrows.size:
            raise LayoutError(f"row {len(rows)} has {len(row)} ids and no <img_newrow>: the sequence is cut short")
        if len(row) != g:
            raise LayoutError(f"row {len(rows)} has {len(row)} ids; every row has {g}")
        codes = row - vocab.code_offset
        if bad := np.flatnonzero((codes < 0) | (codes >= vocab.codebook_size)).tolist():
            raise LayoutError(f"id {int(row[bad[0]])} at row {len(rows)}, column {bad[0]} is not an image code "
                              f"({vocab.code_offset}..{vocab.code_offset + vocab.codebook_size - 1})")
        rows.append(codes)
        pos = end + 1
    if pos >= len(seq):
        raise LayoutError(f"no <img_end> after the {g} rows: the sequence is cut short")
    if seq[pos] != vocab.img_end:
        raise LayoutError(f"id {int(seq[pos])} after the {g} rows where <img_end> belongs: a row too many")
    return np.stack(rows)


@torch.no_grad()
def ids_to_image(ids, model: QKVAE, vocab: ImageVocab) -> torch.Tensor:
    """LM ids of one image -> the image (3, 96, 96) in [-1, 1], decoded by ``model``."""
    grid = torch.from_numpy(ids_to_grid(ids, vocab))
    return model.decode(grid[None].to(model.device))[0].cpu()


def allowed_next(prefix, vocab: ImageVocab) -> tuple[int, int] | int | None:
    """What the layout allows after ``prefix`` (LM ids): a code (``(first, last)`` id range), one
    special id, or ``None`` when no image is open (before ``<img_start>`` or after ``<img_end>``)."""
    seq = np.asarray(prefix, dtype=np.int64).ravel()
    starts = np.flatnonzero(seq == vocab.img_start)
    if not starts.size:
        return None
    done = len(seq) - int(starts[-1]) - 1  # ids of the open image so far
    if done >= vocab.sequence_length - 1:
        return None
    if done == vocab.sequence_length - 2:
        return vocab.img_end
    if done % vocab.row_length == vocab.config.grid_size:
        return vocab.img_newrow
    return vocab.code_offset, vocab.code_offset + vocab.codebook_size - 1


class ImageLayoutProcessor(LogitsProcessor):
    """For ``model.generate``: once ``<img_start>`` is generated or given, allow only what the
    layout allows next (48 codes, ``<img_newrow>``, ..., ``<img_end>``); other positions pass."""

    def __init__(self, vocab: ImageVocab):
        self.vocab = vocab

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.zeros_like(scores, dtype=torch.bool)
        for b, prefix in enumerate(input_ids.cpu().numpy()):
            allowed = allowed_next(prefix, self.vocab)
            if allowed is None:
                continue
            mask[b] = True
            if isinstance(allowed, tuple):
                mask[b, allowed[0]:allowed[1] + 1] = False
            else:
                mask[b, allowed] = False
        return scores.masked_fill(mask, float("-inf"))
