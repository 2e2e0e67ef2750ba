"""Export token shards for language models: nanoGPT's flat ``train.bin`` plus a JSON sidecar.

    python -m qkvae.tokenize export DIR --base-vocab-size 50257 --out train.bin

Each image becomes ``lm_sequence``'s 2 + 48 * 49 ids (``<img_start>``, rows each followed by
``<img_newrow>``, ``<img_end>``), the images concatenated in shard order, read back with
``np.memmap(path, dtype=sidecar["dtype"])``. The ids are written as uint16 only when every id
fits (vocabulary up to 65,536); otherwise uint32, and the summary says so. With GPT-2's 50,257
base tokens the ids reach 65,619: uint32, never wrapped.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qkvae.model import QKVAEConfig
from qkvae.atomic import atomic_path, atomic_write
from qkvae.shards import read_metadata
from qkvae.tokens import TokenError, iter_shards, lm_sequences, lm_vocab, shard_files

UINT16_LIMIT = 1 << 16


class ExportError(ValueError):
    """Shards that cannot be exported as asked."""


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    sidecar: Path
    images: int
    tokens: int
    dtype: str
    max_id: int

    def line(self) -> str:
        why = "" if self.dtype == "uint16" else f" (ids reach {self.max_id:,}, beyond uint16's 65,535)"
        return (f"exported {self.images:,} images, {self.tokens:,} tokens as {self.dtype}{why} -> "
                f"{self.out} + {self.sidecar.name}")


def sidecar_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".json")


def export_lm(folder, base_vocab_size: int, out, batch_size: int = 4096) -> ExportSummary:
    """Write the LM sequences of every shard in ``folder`` to ``out`` (flat binary) and
    ``out.json`` (dtype, vocabulary, offsets, special ids, sequence length, the shards' metadata)."""
    try:
        files = shard_files(folder)
    except TokenError as e:
        raise ExportError(str(e)) from None
    metadata = read_metadata(files[0]) if files else {}
    config = QKVAEConfig.from_dict(json.loads(metadata["config"])) if "config" in metadata else QKVAEConfig()
    vocab = lm_vocab(base_vocab_size, config)
    dtype = np.dtype(np.uint16 if vocab.vocab_size <= UINT16_LIMIT else np.uint32)
    out = Path(out)
    images = tokens = max_id = 0
    with atomic_path(out) as staging, open(staging, "wb") as f:
        for batch in iter_shards(folder, batch_size):
            if batch.metadata.get("weights_sha256") != metadata.get("weights_sha256"):
                raise ExportError(f"{folder} mixes shards made with different weights")
            if batch.tokens.size and int(batch.tokens.max()) >= config.codebook_size:
                raise ExportError(f"{folder} holds id {int(batch.tokens.max())}, outside the codebook "
                                  f"of {config.codebook_size:,}")
            seq = lm_sequences(batch.tokens, base_vocab_size, config)  # all < vocab_size: no wrap
            f.write(seq.astype(dtype).tobytes())
            images, tokens = images + len(seq), tokens + seq.size
            max_id = max(max_id, int(seq.max(initial=0)))
    sidecar = sidecar_path(out)
    atomic_write(sidecar, json.dumps({
        "dtype": dtype.name, "images": images, "tokens": tokens,
        "sequence_length": 2 + config.grid_size * (config.grid_size + 1), "max_id": max_id,
        "base_vocab_size": base_vocab_size, "vocab_size": vocab.vocab_size, "code_offset": vocab.code_offset,
        "codebook_size": config.codebook_size,
        "special_tokens": vocab.special_tokens(),
        "layout": "per image: <img_start>, then each grid row's ids + code_offset followed by <img_newrow>, "
                  "then <img_end>; images in shard order",
        "shards": str(folder), "shard_metadata": metadata,
    }, indent=1) + "\n")
    return ExportSummary(out, sidecar, images, tokens, dtype.name, max_id)
