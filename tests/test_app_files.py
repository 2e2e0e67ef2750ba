"""The app's files are pruned: every kind, by age of last use, on a schedule."""

import os
import time

import numpy as np
import pytest

from qkvae_app import files


@pytest.fixture
def out_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "OUT_DIR", tmp_path)
    return tmp_path


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_every_kind_of_file_is_pruned_after_its_lifetime(out_dir):
    grid = np.arange(2304, dtype=np.int64).reshape(48, 48)
    npy, js = files.token_files(grid, "cat")
    _, lm = files.lm_file(grid, 1000, "cat")
    png = files.png_file(np.zeros((8, 8, 3), np.uint8))
    cached = files.folder("datasets") / "metrics.json"
    cached.write_text("{}")
    written = [npy, js, lm, png, cached]
    assert files.prune() == 0 and all(os.path.exists(p) for p in written)

    hour = files.LIFETIMES["tokens"]
    for path in written:
        _age(path, hour + 60)
    assert files.prune() == 4  # the dataset cache lives longer
    assert [os.path.exists(p) for p in written] == [False] * 4 + [True]
    _age(cached, files.LIFETIMES["datasets"] + 60)
    assert files.prune() == 1 and not cached.exists()


def test_reuse_keeps_a_file_and_emptied_folders_go(out_dir):
    image = np.full((8, 8, 3), 7, np.uint8)
    png = files.png_file(image)
    _age(png, files.LIFETIMES["png"] + 60)
    assert files.png_file(image) == png  # reused: touched, so it is recent again
    assert files.prune() == 0 and os.path.exists(png)

    npy, _ = files.token_files(np.zeros((48, 48), np.int64), "x")
    token_folder = os.path.dirname(npy)
    for path in os.listdir(token_folder):
        _age(os.path.join(token_folder, path), files.LIFETIMES["tokens"] + 60)
    assert files.prune() == 2 and os.path.isdir(token_folder)  # the folder was just emptied: not old yet
    _age(token_folder, files.LIFETIMES["tokens"] + 60)
    files.prune()
    assert not os.path.exists(token_folder) and (out_dir / "tokens").is_dir()


@pytest.fixture
def schedule():
    files.stop_pruning()
    yield
    files.stop_pruning()


def test_pruning_runs_on_a_schedule_once_per_process(out_dir, schedule):
    old = files.png_file(np.ones((8, 8, 3), np.uint8))
    _age(old, files.LIFETIMES["png"] + 60)
    assert files.start_pruning(every=0.05)
    assert not files.start_pruning(every=0.05)
    deadline = time.monotonic() + 10
    while os.path.exists(old) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(old)
    later = files.png_file(np.full((8, 8, 3), 9, np.uint8))
    _age(later, files.LIFETIMES["png"] + 60)  # made after the first pass: the schedule removes it too
    deadline = time.monotonic() + 10
    while os.path.exists(later) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(later)


def test_unknown_kind_is_refused(out_dir):
    with pytest.raises(ValueError, match="unknown kind"):
        files.folder("other")


def test_result_files_are_written_once_touched_on_reuse_and_pruned(out_dir):
    texts = {"explore.csv": "name,psnr\na.png,30.0\n", "explore.json": '{"images": []}\n'}
    paths = files.result_files(texts)
    assert [open(p).read() for p in paths] == list(texts.values())
    for path in paths:
        _age(path, files.LIFETIMES["results"] + 60)
    assert files.result_files(texts) == paths  # reused: in use again, not pruned
    assert files.prune() == 0
    for path in paths:
        _age(path, files.LIFETIMES["results"] + 60)
    assert files.prune() == 2 and not any(os.path.exists(p) for p in paths)
