"""qkvae.sources and qkvae.pipeline: every image source as one sequence, and sets through the model."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from qkvae import ImageError, SourceError, open_source
from qkvae.metrics import psnr
from qkvae.pipeline import encode_images, load_fitted, reconstruct_set
from qkvae.sources import read_all


def write_stl10_bin(path, images: np.ndarray) -> None:
    """uint8 (N, 96, 96, 3) in STL-10's layout: N x 3 x 96 x 96, column-major per image."""
    images.transpose(0, 3, 2, 1).tofile(path)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def write_parquet(path, images: list, paths=None, labels=None, row_group_size=2) -> None:
    """A Parquet file in the Hugging Face ``datasets`` layout: image structs of bytes and path."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    rows = [{"bytes": data, "path": None if paths is None else paths[i]} for i, data in enumerate(images)]
    columns = {"image": pa.array(rows, type=image_type)}
    if labels is not None:
        columns["label"] = pa.array(labels, type=pa.int64())
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)


def test_stl10_bin_reads_column_major_images_and_labels(tmp_path, images):
    write_stl10_bin(tmp_path / "test_X.bin", images)
    np.array([3, 1, 4, 1, 5], np.uint8).tofile(tmp_path / "test_y.bin")
    source = open_source(tmp_path / "test_X.bin")
    assert len(source) == 5 and source.names[:2] == ["test_X_00000", "test_X_00001"]
    assert source.labels == [3, 1, 4, 1, 5]
    item = source[2]
    np.testing.assert_array_equal(item.rgb, images[2])
    assert (item.name, item.label) == ("test_X_00002", 4)
    np.testing.assert_array_equal(source[-1].rgb, images[-1])
    with pytest.raises(IndexError):
        source[5]


def test_stl10_binary_folder_gives_its_test_split(tmp_path, images):
    write_stl10_bin(tmp_path / "train_X.bin", images[:2])
    write_stl10_bin(tmp_path / "test_X.bin", images[2:])
    source = open_source(tmp_path)
    assert source.names == ["test_X_00000", "test_X_00001", "test_X_00002"] and source.labels is None
    np.testing.assert_array_equal(source[0].rgb, images[2])


def test_stl10_label_count_must_match(tmp_path, images):
    write_stl10_bin(tmp_path / "test_X.bin", images)
    np.zeros(4, np.uint8).tofile(tmp_path / "test_y.bin")
    with pytest.raises(SourceError, match="4 labels for 5 images"):
        open_source(tmp_path / "test_X.bin")


def test_folder_is_recursive_and_sorted_by_relative_path(tmp_path, images):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "z").mkdir(parents=True)
    for i, rel in enumerate(["b/1.png", "a/z/2.jpg", "c.png", "a/0.PNG"]):
        Image.fromarray(images[i]).save(tmp_path / rel, format="JPEG" if rel.endswith("jpg") else "PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path)
    assert source.names == ["a/0.PNG", "a/z/2.jpg", "b/1.png", "c.png"]
    np.testing.assert_array_equal(source[2].rgb, images[0])


def test_list_file_names_entries_as_written(tmp_path, images):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(images[0]).save(tmp_path / "imgs" / "x.png")
    Image.fromarray(images[1]).save(tmp_path / "y.png")
    (tmp_path / "list.txt").write_text(f"# photos\nimgs/x.png\n\n{tmp_path / 'y.png'}\n")
    source = open_source(tmp_path / "list.txt")
    assert source.names == ["imgs/x.png", str(tmp_path / "y.png")]
    np.testing.assert_array_equal(source[1].rgb, images[1])


def test_parquet_in_datasets_layout_with_paths_and_labels(tmp_path, images):
    write_parquet(tmp_path / "data.parquet", [png_bytes(a) for a in images],
                  paths=[f"img{i}.png" for i in range(5)], labels=[0, 1, 2, 3, 4])
    source = open_source(tmp_path / "data.parquet")
    assert source.names == [f"img{i}.png" for i in range(5)] and source.labels == [0, 1, 2, 3, 4]
    for i in (4, 0, 3):  # row groups of 2, read out of order
        np.testing.assert_array_equal(source[i].rgb, images[i])


def test_parquet_folder_split_and_row_names(tmp_path, images):
    (tmp_path / "data").mkdir()
    write_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", [png_bytes(a) for a in images[:2]])
    write_parquet(tmp_path / "data" / "test-00000-of-00002.parquet", [png_bytes(a) for a in images[2:4]])
    write_parquet(tmp_path / "data" / "test-00001-of-00002.parquet", [png_bytes(images[4])])
    source = open_source(tmp_path, split="test")
    assert source.names == ["test-00000-of-00002/000000", "test-00000-of-00002/000001",
                            "test-00001-of-00002/000000"]
    np.testing.assert_array_equal(source[2].rgb, images[4])
    assert len(open_source(tmp_path)) == 5
    with pytest.raises(SourceError, match="split 'validation'"):
        open_source(tmp_path, split="validation")


def test_parquet_without_an_image_column_is_refused(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"]}), tmp_path / "t.parquet")
    with pytest.raises(SourceError, match="no image column"):
        open_source(tmp_path / "t.parquet")


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("empty", "no images found"),
    ("short_X.bin", "not an STL-10 image file"),
    ("photo.npy", "is not an image folder"),
    ("blank.txt", "lists no image paths"),
])
def test_bad_sources_raise_source_error(tmp_path, case, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "short_X.bin").write_bytes(b"\0" * 100)
    (tmp_path / "photo.npy").write_bytes(b"\0" * 100)
    (tmp_path / "blank.txt").write_text("# nothing\n\n")
    with pytest.raises(SourceError, match=message):
        open_source(tmp_path / case)


def test_bad_entries_are_named_and_skipped(tmp_path, images):
    Image.fromarray(images[0]).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(png_bytes(images[1])[:60])  # truncated
    (tmp_path / "c.jpg").write_bytes(b"")
    (tmp_path / "d.png").write_bytes(b"this is text, not a PNG")
    Image.fromarray(images[2]).save(tmp_path / "e.png")
    source = open_source(tmp_path)
    with pytest.raises(ImageError, match="b.png"):
        source[1]
    skipped = []
    names = [item.name for item in read_all(source, skipped)]
    assert names == ["a.png", "e.png"]
    assert [s.name for s in skipped] == ["b.png", "c.jpg", "d.png"]
    assert "empty" in skipped[1].reason and "not an image" in skipped[2].reason
    fitted = load_fitted(source)
    assert fitted.names == ["a.png", "e.png"] and len(fitted.skipped) == 3 and fitted.images.shape == (2, 96, 96, 3)


def test_parquet_entries_without_bytes_are_skipped(tmp_path, images):
    write_parquet(tmp_path / "d.parquet", [png_bytes(images[0]), None, b"garbage"], paths=["a", "b", "c"])
    fitted = load_fitted(tmp_path / "d.parquet")
    assert fitted.names == ["a"] and [s.name for s in fitted.skipped] == ["b", "c"]


def test_load_fitted_resizes_limits_and_refuses_all_bad(tmp_path, rgb):
    Image.fromarray(np.repeat(rgb, 2, axis=1)).save(tmp_path / "b_wide.png")
    Image.fromarray(rgb).save(tmp_path / "a_square.jpg")
    fitted = load_fitted(tmp_path)
    assert fitted.names == ["a_square.jpg", "b_wide.png"] and fitted.labels == [None, None]
    assert fitted.images.shape == (2, 96, 96, 3) and fitted.images.dtype == np.uint8
    assert load_fitted(tmp_path, limit=1).names == ["a_square.jpg"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.raises(SourceError, match="could be decoded"):
        load_fitted(tmp_path / "bad")


def test_reconstruct_set_matches_one_call_per_image(model, rgb, tmp_path):
    images = np.stack([rgb, rgb[::-1], rgb[:, ::-1]])
    write_stl10_bin(tmp_path / "test_X.bin", images)
    result = reconstruct_set(model, tmp_path / "test_X.bin", batch_size=2)
    assert result.indices.shape == (3, 2304) and result.reconstructions.shape == (3, 96, 96, 3)
    assert result.psnr.shape == result.ssim.shape == (3,) and result.names[0] == "test_X_00000"
    np.testing.assert_array_equal(result.originals, images)
    np.testing.assert_array_equal(encode_images(model, images, batch_size=3), result.indices)
    np.testing.assert_array_equal(result.psnr, [psnr(a, b) for a, b in zip(images, result.reconstructions)])
    assert encode_images(model, images[:0]).shape == (0, 2304)
