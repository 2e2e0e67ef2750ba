"""Token files and LM sequences: round trips, validation messages, the vocabulary layout."""

import json

import numpy as np
import pytest

from qkvae import TokenError, lm_sequence, load_tokens, save_tokens
from qkvae.tokens import lm_vocab, validate_indices

IDS = np.arange(2304, dtype=np.int64) * 6 % 15360


@pytest.mark.parametrize("suffix", [".npy", ".json"])
def test_round_trip(tmp_path, suffix):
    path = save_tokens(IDS, tmp_path / f"t{suffix}")
    assert np.array_equal(load_tokens(path), IDS.reshape(48, 48))


def test_other_integer_dtypes_and_flat_json(tmp_path):
    np.save(tmp_path / "a.npy", IDS.astype(np.uint16))
    (tmp_path / "b.json").write_text(json.dumps(IDS.tolist()))
    assert np.array_equal(load_tokens(tmp_path / "a.npy"), load_tokens(tmp_path / "b.json"))


@pytest.mark.parametrize("ids,message", [
    (IDS[:2000], "expected 2304 token ids .* got 2000"),
    (np.append(IDS, 1), "got 2305"),
    (IDS.astype(np.float32) + 0.5, "whole numbers"),
    (np.where(IDS == 6, 15360, IDS), "0..15359; 1 do not, the first being 15360 at row 0, column 1"),
    (np.where(IDS == 0, -1, IDS), "the first being -1"),
    (np.array(["a"] * 2304), "array of integers, got dtype <U1"),
])
def test_invalid_ids(ids, message):
    with pytest.raises(TokenError, match=message):
        validate_indices(ids)


@pytest.mark.parametrize("name,content,message", [
    ("t.json", "{not json", "not a readable .json"),
    ("t.json", '{"ids": [1, 2]}', "flat or 48x48|expected 2304"),
    ("t.json", "[[1, 2], [3]]", "flat or 48x48"),
    ("t.npy", "garbage", "not a readable .npy"),
    ("t.txt", "1 2 3", "end in .npy or .json"),
])
def test_bad_token_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(TokenError, match=message):
        load_tokens(tmp_path / name)


def test_missing_token_file(tmp_path):
    with pytest.raises(TokenError, match="no such token file"):
        load_tokens(tmp_path / "none.npy")


def test_lm_vocab_layout():
    v = lm_vocab(50257)
    assert v.code_offset == 50257
    assert (v.img_start, v.img_end, v.img_newrow) == (65617, 65618, 65619)
    assert v.vocab_size == 50257 + 15360 + 3
    assert v.to_json() == {"code_offset": 50257, "<img_start>": 65617, "<img_end>": 65618, "<img_newrow>": 65619,
                           "vocab_size": 65620}


def test_lm_sequence_structure():
    seq = lm_sequence(IDS, 1000)
    v = lm_vocab(1000)
    assert len(seq) == 1 + 48 * 49 + 1
    assert seq[0] == v.img_start and seq[-1] == v.img_end
    rows = seq[1:-1].reshape(48, 49)
    assert np.all(rows[:, -1] == v.img_newrow)
    assert np.array_equal(rows[:, :-1] - 1000, IDS.reshape(48, 48))
