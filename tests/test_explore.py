"""The Explore tab's computation: upload limits (count, bytes, zip bombs, nested zips, unsafe
paths, links), mixed good and bad images, the table, the worst-first gallery, CSV and JSON."""

import csv
import io
import json
import stat
import zipfile
from functools import partial

import numpy as np
import pytest
from PIL import Image

from analysis.reference import load_reference
from analysis.report import image_summary
from qkvae import SourceError
from qkvae.image import ImageError, to_tensor
from qkvae.pipeline import reconstruct_set
from qkvae.metrics import psnr, ssim
from qkvae.sources import Skipped
from qkvae.stream import ReconstructedImage
from qkvae_app import explore
from qkvae_app.explore import MAX_IMAGES, MAX_TOTAL_BYTES, MAX_ZIP_RATIO, UploadError, open_uploads

@pytest.fixture(scope="module")
def ood(ood_reference_path) -> dict:
    """``image_summary``'s OOD argument: the seeded model's reference (conftest)."""
    return {"reference": load_reference(ood_reference_path)}


def _summarize(model, ood: dict | None):
    """``image_summary`` with the OOD reference bound (None: no OOD score), as the app binds its own."""
    return partial(image_summary, **(ood or {}), config=model.config)


def _explore(model, paths, ood: dict | None = None, **kwargs) -> explore.Exploration:
    return explore.explore(paths, partial(reconstruct_set, model), _summarize(model, ood), **kwargs)


def _png(seed: int, size=(96, 96)) -> bytes:
    """A small deterministic image: smooth for low seeds, noisier (harder to reconstruct) for higher ones."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([xx * 2, yy * 2, (xx + yy) % 256], axis=-1).astype(np.float64)
    rgb = np.clip(base + rng.normal(0, 20 * seed, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="png")
    return buffer.getvalue()


def _zip(path, members: dict, declared: dict | None = None, links=()) -> str:
    """A zip of ``members`` (name -> bytes); ``declared`` overrides the sizes written in the
    central directory, ``links`` are members marked as symbolic links."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, data)
        for info in z.filelist:
            info.file_size = (declared or {}).get(info.filename, info.file_size)
    return str(path)


def _files(tmp_path, count: int, start: int = 0) -> list[str]:
    paths = []
    for i in range(start, start + count):
        path = tmp_path / f"image-{i:03d}.png"
        path.write_bytes(_png(i % 4))
        paths.append(str(path))
    return paths


def _refused(paths) -> str:
    with pytest.raises(UploadError) as e:
        open_uploads(paths)
    return str(e.value)


def test_too_many_images_are_refused_with_the_limit(tmp_path):
    assert "501 images; the limit is 500" in _refused(_files(tmp_path, MAX_IMAGES + 1))
    members = {f"a/{i}.png": b"x" for i in range(MAX_IMAGES)}
    assert "501 images" in _refused([_zip(tmp_path / "many.zip", members), *_files(tmp_path, 1)])
    assert len(open_uploads(_files(tmp_path, MAX_IMAGES))) == MAX_IMAGES


def test_too_many_bytes_are_refused(tmp_path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:
        f.truncate(MAX_TOTAL_BYTES - 10)  # sparse: nothing is written to disk
    assert open_uploads([big]).names == ["huge.png"]
    message = _refused([str(big), *_files(tmp_path, 1)])
    assert "MB uncompressed; the limit is 200 MB" in message


def test_a_zip_declaring_a_huge_size_is_refused_before_reading(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"a.png": _png(0)}, declared={"a.png": 3 * MAX_TOTAL_BYTES})
    message = _refused([bomb])
    assert "bomb.zip would expand to 600 MB" in message and "zip bomb" in message


def test_a_member_compressed_too_many_times_is_refused(tmp_path):
    bomb = _zip(tmp_path / "ratio.zip", {"ok.png": _png(1), "zeros.bmp": bytes(4 * 2**20)})
    message = _refused([bomb])
    assert "ratio.zip: entry 'zeros.bmp' expands" in message and f"the limit is {MAX_ZIP_RATIO}x" in message
    small_flat = _zip(tmp_path / "flat.zip", {"flat.bmp": bytes(100_000)})  # under the size the ratio applies from
    assert open_uploads([small_flat]).names == ["flat.bmp"]


@pytest.mark.parametrize("name, words", [
    ("inner.zip", "entry 'inner.zip' is a zip inside the zip"),
    ("sub/Inner.ZIP", "entry 'sub/Inner.ZIP' is a zip inside the zip"),
    ("../evil.png", "entry '../evil.png' has an absolute or '../' path"),
    ("a/../../evil.png", "entry 'a/../../evil.png' has an absolute or '../' path"),
    ("/etc/evil.png", "entry '/etc/evil.png' has an absolute or '../' path"),
    ("C:/evil.png", "entry 'C:/evil.png' has an absolute or '../' path"),
    ("a\\..\\..\\evil.png", "entry 'a\\\\..\\\\..\\\\evil.png' has an absolute or '../' path"),
])
def test_nested_zips_and_unsafe_paths_are_refused_naming_the_entry(tmp_path, name, words):
    archive = _zip(tmp_path / "upload.zip", {"good.png": _png(0), name: _png(1)})
    assert f"upload.zip: {words}" in _refused([archive])


def test_a_symbolic_link_is_refused(tmp_path):
    archive = _zip(tmp_path / "links.zip", {"good.png": _png(0), "link.png": b"/etc/passwd"}, links={"link.png"})
    assert "links.zip: entry 'link.png' is a symbolic link" in _refused([archive])


def test_a_member_larger_than_declared_is_read_only_up_to_its_declared_size(tmp_path, model):
    data = _png(0)
    archive = _zip(tmp_path / "liar.zip", {"liar.png": data, "good.png": _png(1)}, declared={"liar.png": 100})
    source = open_uploads([archive])
    assert source.names == ["good.png", "liar.png"]
    with pytest.raises(ImageError, match="liar.png"):
        source[1]  # 100 bytes of a PNG of thousands: truncated, or refused by the CRC check
    result = _explore(model, [archive])
    assert [r.name for r in result.rows] == ["good.png"] and [s.name for s in result.skipped] == ["liar.png"]


def test_an_image_over_the_pixel_limit_is_skipped(tmp_path, model, monkeypatch):
    monkeypatch.setattr("qkvae.image.MAX_PIXELS", 100 * 100)
    big = tmp_path / "big.png"
    big.write_bytes(_png(0, size=(200, 150)))
    result = _explore(model, [big, *_files(tmp_path, 1)])
    assert [r.name for r in result.rows] == ["image-000.png"]
    assert result.skipped == [Skipped("big.png", "big.png is too large: 200x150 pixels, the limit is 10,000", 0)]


def test_a_broken_zip_is_refused_and_an_empty_upload_too(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    assert "broken.zip is not a readable zip archive" in _refused([broken])
    assert "no image files (1 other files)" in _refused([_zip(tmp_path / "text.zip", {"notes.txt": b"hi"})])


def test_names_keep_upload_order_and_become_unique(tmp_path):
    loose = tmp_path / "b.png"
    loose.write_bytes(_png(0))
    archive = _zip(tmp_path / "set.zip", {"z.png": _png(0), "b.png": _png(1), "__MACOSX/._b.png": b"meta",
                                          "d/": b"", "readme.md": b"hi"})
    source = open_uploads([loose, archive])
    assert source.names == ["b.png", "b.png (2)", "z.png"]
    assert source.unlisted == [Skipped("set.zip/readme.md", "not an image file (by its name)")]


@pytest.fixture
def mixed(tmp_path, model, ood, monkeypatch):
    """Five good images (two loose, three in a zip) and three bad entries, explored two at a time."""
    monkeypatch.setattr(explore, "CHUNK", 2)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    archive = _zip(tmp_path / "set.zip", {"z/noisy.png": _png(3), "z/smooth.png": _png(0), "z/mid.png": _png(2),
                                          "z/truncated.png": _png(1)[:200], "notes.txt": b"hi"})
    paths = [*_files(tmp_path, 2, start=1), str(garbage), archive]
    heard = []
    result = _explore(model, paths, ood, progress=lambda f, desc: heard.append((f, desc)))
    return result, heard


def test_mixed_upload_gives_rows_for_good_images_and_lists_the_bad(mixed):
    result, heard = mixed
    names = ["image-001.png", "image-002.png", "z/mid.png", "z/noisy.png", "z/smooth.png"]
    assert [r.name for r in result.rows] == names
    skipped = {s.name: s.reason for s in result.skipped}
    assert set(skipped) == {"garbage.png", "z/truncated.png", "set.zip/notes.txt"}
    assert "not an image" in skipped["garbage.png"] and "truncated" in skipped["z/truncated.png"]
    assert result.originals.shape == result.reconstructions.shape == (5, 96, 96, 3)
    assert heard == [(k / 7, f"reconstructing: {k} of 7 images read") for k in (0, 2, 4, 6)]


def test_rows_hold_each_images_summary(mixed, model, ood):
    result, _ = mixed
    for i, row in enumerate(result.rows):
        original, reconstruction = result.originals[i], result.reconstructions[i]
        ids = model.encode(to_tensor(original)[None])[0].numpy()
        image = ReconstructedImage(row.name, original, ids, reconstruction, psnr(original, reconstruction),
                                   ssim(original, reconstruction))
        summary = _summarize(model, ood)(image)
        assert (row.psnr, row.ssim) == (image.psnr, image.ssim) == (summary.psnr, summary.ssim)
        assert result.images[i]["rate"] == summary.rate.to_json()
        assert (row.ood_score, row.verdict) == explore.ood_reading(summary)
        assert row.verdict in {"in distribution", "unusual", "out of distribution"}


def test_table_has_sortable_columns(mixed):
    result, _ = mixed
    table = result.table()
    assert list(table.columns) == ["name", "PSNR (dB)", "SSIM", "OOD score", "verdict"]
    assert all(np.issubdtype(table[c].dtype, np.number) for c in ("PSNR (dB)", "SSIM", "OOD score"))
    assert table["PSNR (dB)"].tolist() == [round(r.psnr, 2) for r in result.rows]


def test_gallery_shows_the_worst_first(mixed):
    result, _ = mixed
    psnrs = [r.psnr for r in result.rows]
    by_psnr = result.worst("PSNR", 3)
    assert [psnrs[i] for i in by_psnr] == sorted(psnrs)[:3]
    scores = [r.ood_score for r in result.rows]
    assert [scores[i] for i in result.worst("OOD score")] == sorted(scores, reverse=True)
    items = result.gallery("PSNR", 3)
    assert [caption.split(" · ")[0] for _, caption in items] == [result.rows[i].name for i in by_psnr]
    assert items[0][1].endswith(f"{psnrs[by_psnr[0]]:.2f} dB")
    top = result.worst("OOD score", 1)[0]
    assert result.gallery("OOD score", 1)[0][1].endswith(f" · OOD {scores[top]:.2f}")
    tile = np.asarray(Image.open(items[0][0]))
    np.testing.assert_array_equal(tile[:, :96], result.originals[by_psnr[0]])
    np.testing.assert_array_equal(tile[:, -96:], result.reconstructions[by_psnr[0]])
    with pytest.raises(ValueError, match="by must be one of"):
        result.worst("SSIM")


def test_csv_and_json_downloads_match_the_rows(mixed):
    result, _ = mixed
    csv_path, json_path = result.write_files()
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["name"] for r in rows] == [r.name for r in result.rows]
    assert list(rows[0]) == ["name", "psnr", "ssim", "ood_score", "verdict"]
    for line, row in zip(rows, result.rows, strict=True):
        assert float(line["psnr"]) == pytest.approx(row.psnr)
        assert float(line["ood_score"]) == pytest.approx(row.ood_score)
        assert line["verdict"] == row.verdict
    data = json.loads(open(json_path).read())
    assert [e["name"] for e in data["images"]] == [r.name for r in result.rows]
    for entry, row in zip(data["images"], result.rows, strict=True):
        assert {"name", "psnr", "ssim", "rate", "ood_score"} <= set(entry)
        assert entry["psnr"] == pytest.approx(row.psnr) and entry["ood_score"]["score"] == pytest.approx(row.ood_score)
        assert entry["rate"]["nominal_bits"] > 0
    assert {s["name"] for s in data["skipped"]} == {"garbage.png", "z/truncated.png", "set.zip/notes.txt"}
    assert data["aggregate"]["num_images"] == 5
    assert data["aggregate"]["psnr"]["min"] == pytest.approx(min(r.psnr for r in result.rows))
    assert result.write_files() == (csv_path, json_path)  # the same content, the same files


def test_no_reference_leaves_the_score_empty(tmp_path, model):
    result = _explore(model, _files(tmp_path, 2))
    assert [(r.ood_score, r.verdict) for r in result.rows] == [(None, ""), (None, "")]
    assert result.table()["OOD score"].isna().all()
    assert "ood_score" not in result.results_json()["images"][0]


def test_an_upload_with_no_decodable_image_says_so(tmp_path, model):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(SourceError, match="none of the entries .* could be decoded.*bad.png is not an image"):
        _explore(model, [bad])


def test_the_summary_lists_the_first_skipped_entries_with_why(tmp_path, model):
    archive = _zip(tmp_path / "set.zip", {"good.png": _png(0), **{f"bad{i:02d}.png": b"x" for i in range(12)}})
    html = _explore(model, [archive]).summary_html()
    assert "<b>1</b> images reconstructed" in html and "<b>12</b> skipped" in html
    assert "<code>bad09.png</code>: bad09.png is not an image" in html and "bad10.png" not in html
    assert "and 2 more (all in the JSON)" in html
