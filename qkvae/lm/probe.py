"""The probe: a small causal transformer over one image's LM ids, asking "can a small LM model these tokens?".

The trunk is a ``transformers`` Mistral (random init) with sliding-window attention, so a model
trained on short windows of the 2,354-id sequence is exactly the model that reads (and samples)
whole images: every position sees the last ``window`` ids, whatever the length. Its input
embedding is ``ImageAwareEmbedding`` (a code = a learned projection of its FSQ vector + a
learned per-id residual). Only codes are predicted: ``<img_newrow>`` and ``<img_end>`` are
fixed by the layout, so bits per token are over the 2,304 codes of an image. Two output layers:

- ``tied``: logits over the codebook = hidden state . each code's input embedding;
- ``digits``: the five FSQ digits in turn, digit k from the hidden state plus embeddings of
  the digits before it (p(code) = prod_k p(d_k | h, d_<k)).
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn import functional as F
from transformers import DynamicCache, MistralConfig, MistralModel

from qkvae.fsq import digits_to_indices, indices_to_digits
from qkvae.lm.embedding import ImageAwareEmbedding, ImageTokenEmbedding
from qkvae.lm.layout import ImageVocab
from qkvae.model import QKVAE, QKVAEConfig
from qkvae.tokens import lm_sequences

HEADS = ("tied", "digits")


@dataclass(frozen=True)
class ProbeConfig:
    head: str = "digits"  # output layer: "tied" (to the input embedding) or "digits" (factorised over FSQ digits)
    hidden: int = 96  # width of the trunk and the embeddings
    layers: int = 3  # transformer blocks
    attention_heads: int = 4
    intermediate: int = 256  # width of each block's MLP
    window: int = 128  # sliding attention window in ids (a grid row is 49)
    residual: bool = True  # a learned per-code residual on top of the FSQ projection
    levels: tuple = QKVAEConfig.levels  # the tokenizer's FSQ levels
    image_size: int = QKVAEConfig.image_size  # the tokenizer's image side; the grid is half of it

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"the probe's head is one of {', '.join(HEADS)}, not {self.head!r}")

    @property
    def qkvae(self) -> QKVAEConfig:
        return QKVAEConfig(levels=tuple(self.levels), image_size=self.image_size)

    @property
    def vocab(self) -> ImageVocab:
        return ImageVocab.after(0, self.qkvae)

    @property
    def context(self) -> int:
        """Ids back that can reach a position through the stacked windows."""
        return self.layers * (self.window - 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeConfig":
        return cls(**{**d, "levels": tuple(d["levels"])})


class TiedHead(nn.Module):
    """Logits over the codebook: the hidden state against each code's input embedding."""

    def __init__(self, image: ImageTokenEmbedding):
        super().__init__()
        self.image = [image]  # shared, not a second copy of its parameters

    def nll(self, h: Tensor, codes: Tensor) -> Tensor:
        return F.cross_entropy(h @ self.image[0].table().T, codes, reduction="none")

    def sample(self, h: Tensor, generator: torch.Generator) -> Tensor:
        return torch.multinomial(F.softmax(h @ self.image[0].table().T, dim=-1), 1, generator=generator)[:, 0]


class DigitHead(nn.Module):
    """p(code | h) = prod_k p(d_k | h + sum_{j<k} E_j[d_j]), each factor a small MLP."""

    def __init__(self, levels, hidden: int):
        super().__init__()
        self.levels = tuple(levels)
        self.digit_embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in self.levels[:-1])
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n))
                                  for n in self.levels)

    def nll(self, h: Tensor, codes: Tensor) -> Tensor:
        digits = indices_to_digits(codes, self.levels)  # (N, D)
        total = h.new_zeros(len(h))
        for k, mlp in enumerate(self.mlps):
            total = total + F.cross_entropy(mlp(h), digits[:, k], reduction="none")
            if k < len(self.digit_embeddings):
                h = h + self.digit_embeddings[k](digits[:, k])
        return total

    def sample(self, h: Tensor, generator: torch.Generator) -> Tensor:
        digits = []
        for k, mlp in enumerate(self.mlps):
            digits.append(torch.multinomial(F.softmax(mlp(h), dim=-1), 1, generator=generator)[:, 0])
            if k < len(self.digit_embeddings):
                h = h + self.digit_embeddings[k](digits[-1])
        return digits_to_indices(torch.stack(digits, dim=-1), self.levels)


class Probe(nn.Module):
    def __init__(self, config: ProbeConfig):
        super().__init__()
        self.config = config
        vocab = config.vocab
        trunk_config = MistralConfig(vocab_size=1, hidden_size=config.hidden, intermediate_size=config.intermediate,
                                     num_hidden_layers=config.layers, num_attention_heads=config.attention_heads,
                                     num_key_value_heads=config.attention_heads, sliding_window=config.window,
                                     max_position_embeddings=vocab.sequence_length, attn_implementation="sdpa",
                                     bos_token_id=None, eos_token_id=None, pad_token_id=None)
        self.trunk = MistralModel(trunk_config)
        image = ImageTokenEmbedding(config.levels, config.hidden, config.residual)
        self.trunk.set_input_embeddings(ImageAwareEmbedding(nn.Embedding(3, config.hidden), image, vocab))
        self.head = TiedHead(image) if config.head == "tied" else DigitHead(config.levels, config.hidden)

    def hidden(self, ids: Tensor, position_ids: Tensor | None = None) -> Tensor:
        """Probe ids (B, T) -> hidden states (B, T, hidden)."""
        return self.trunk(input_ids=ids, position_ids=position_ids).last_hidden_state

    def nll(self, ids: Tensor, start: int = 0) -> tuple[Tensor, int]:
        """Summed nats of the codes among ``ids[:, start+1:]`` given what precedes them in ``ids``,
        and how many codes that is."""
        h = self.hidden(ids[:, :-1])[:, start:]
        targets = ids[:, start + 1:]
        is_code = targets < self.config.vocab.codebook_size
        return self.head.nll(h[is_code], targets[is_code]).sum(), int(is_code.sum())


def sequences(tokens: np.ndarray, config: ProbeConfig) -> Tensor:
    """Token ids (N, 2304) -> the probe's ids, int64 (N, 2354)."""
    return torch.from_numpy(lm_sequences(np.asarray(tokens, dtype=np.int64), 0, config.qkvae))


@torch.no_grad()
def bits_per_token(probe: Probe, tokens: np.ndarray, batch_size: int = 8) -> float:
    """Mean -log2 p of each code of each image in ``tokens`` (N, 2304), every code seeing its full
    window: the sequence is read in pieces that overlap by the probe's reach, so the numbers are
    those of one pass over the whole sequence."""
    probe.eval()
    seqs, reach = sequences(tokens, probe.config), probe.config.context
    step = 4 * reach
    nats, count = 0.0, 0
    for b in range(0, len(seqs), batch_size):
        batch = seqs[b:b + batch_size]
        for begin in range(0, batch.shape[1] - 1, step):
            lo = max(0, begin - reach)
            piece = batch[:, lo:begin + step + 1]
            positions = torch.arange(lo, lo + piece.shape[1] - 1).expand(len(piece), -1)
            h = probe.hidden(piece[:, :-1], positions)[:, begin - lo:]
            targets = piece[:, begin - lo + 1:]
            is_code = targets < probe.config.vocab.codebook_size
            nats += float(probe.head.nll(h[is_code], targets[is_code]).sum())
            count += int(is_code.sum())
    return nats / count / math.log(2)


@torch.no_grad()
def sample_grids(probe: Probe, n: int, seed: int) -> np.ndarray:
    """``n`` token grids sampled from the probe, the layout's special ids placed by rule: int64 (n, 48, 48)."""
    probe.eval()
    vocab, g = probe.config.vocab, probe.config.qkvae.grid_size
    generator = torch.Generator().manual_seed(seed)
    cache = DynamicCache(config=probe.trunk.config)
    token = torch.full((n, 1), vocab.img_start)
    codes = []
    for pos in range(vocab.sequence_length - 2):
        h = probe.trunk(input_ids=token, cache=cache, use_cache=True,
                        position_ids=torch.full((n, 1), pos)).last_hidden_state[:, -1]
        if pos % vocab.row_length == g:  # after a row's 48 codes comes <img_newrow>
            token = torch.full((n, 1), vocab.img_newrow)
            continue
        code = probe.head.sample(h, generator)
        codes.append(code)
        token = code[:, None]
    return torch.stack(codes, dim=1).reshape(n, g, g).numpy()


@torch.no_grad()
def sample_images(probe: Probe, n: int, seed: int, model: QKVAE | None = None) -> np.ndarray:
    """``n`` images sampled from the probe and decoded by ``model`` (default: the shipped
    tokenizer): uint8 (n, 96, 96, 3)."""
    from qkvae.image import to_uint8
    from qkvae.weights import load_qkvae

    model = model or load_qkvae(device="cpu")
    if model.config.levels != probe.config.qkvae.levels or model.config.image_size != probe.config.image_size:
        raise ValueError(f"the probe models tokens of levels {probe.config.qkvae.levels}, image_size "
                         f"{probe.config.image_size}; the decoder has {model.config.levels}, {model.config.image_size}")
    grids = torch.from_numpy(sample_grids(probe, n, seed))
    return to_uint8(model.decode(grids.to(model.device)))


def save_probe(probe: Probe, folder) -> Path:
    """``config.json`` + ``model.safetensors`` (float16) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(probe.config.to_dict(), indent=2) + "\n")
    save_file({k: v.half().contiguous() for k, v in probe.state_dict().items()}, folder / "model.safetensors")
    return folder


def load_probe(folder=None) -> Probe:
    """The probe saved by ``save_probe`` in ``folder`` (default: the shipped one, ``assets/lm_probe``),
    float32, in eval mode."""
    from qkvae.weights import ASSETS

    folder = Path(folder) if folder is not None else ASSETS / "lm_probe"
    probe = Probe(ProbeConfig.from_dict(json.loads((folder / "config.json").read_text())))
    probe.load_state_dict({k: v.float() for k, v in load_file(folder / "model.safetensors").items()}, strict=True)
    return probe.eval()
