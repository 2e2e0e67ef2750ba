"""qkvae.atomic: a file is replaced whole or left as it was."""

import pytest

from qkvae.atomic import atomic_path, atomic_write


def test_text_and_bytes_replace_the_file_and_leave_no_staging_file(tmp_path):
    path = tmp_path / "results.json"
    atomic_write(path, "old\n")
    assert atomic_write(path, b"new\n") == path and path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_writer_that_fails_leaves_the_old_file_and_no_staging_file(tmp_path):
    path = tmp_path / "reference.npz"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as staging:
        staging.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["reference.npz"]
