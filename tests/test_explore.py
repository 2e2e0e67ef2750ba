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
from qkvae.image import to_tensor
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


def _skipped(tmp_path, paths) -> dict[str, str]:
    """What ``open_uploads`` skips of ``paths`` uploaded beside a good image (which it keeps): name -> why."""
    good = tmp_path / "good-loose.png"
    good.write_bytes(_png(0))
    source = open_uploads([*paths, good])
    assert "good-loose.png" in source.names  # the rest of the upload is processed
    return {s.name: s.reason for s in source.unlisted}


def test_too_many_bytes_are_refused(tmp_path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:
        f.truncate(MAX_TOTAL_BYTES - 2**20)  # sparse: nothing is written to disk
    assert "huge.png is not an image" in _skipped(tmp_path, [big])["huge.png"]  # under the limit: read, and skipped
    assert "the upload holds 398 MB uncompressed; the limit is 200 MB per run" in _refused([str(big), str(big)])


def test_too_many_pixels_are_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(explore, "MAX_RUN_MEGAPIXELS", 0.02)  # 20,000 pixels: two 96x96 images, not three
    assert len(open_uploads(_files(tmp_path, 2))) == 2
    decoded = []
    monkeypatch.setattr(explore, "open_rgb", lambda *a, **k: decoded.append(a))
    assert "megapixels to decode; the limit is 0.02 per run" in _refused(_files(tmp_path, 3))
    assert decoded == []  # refused from the headers alone


def test_a_zip_declaring_a_huge_size_is_skipped_before_reading(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"a.png": _png(0)}, declared={"a.png": 3 * MAX_TOTAL_BYTES})
    why = _skipped(tmp_path, [bomb])["bomb.zip"]
    assert why.startswith("would expand to 600 MB") and "zip bomb" in why


def test_a_member_compressed_too_many_times_is_skipped(tmp_path):
    bomb = _zip(tmp_path / "ratio.zip", {"ok.png": _png(1), "zeros.bmp": bytes(4 * 2**20)})
    assert open_uploads([bomb]).names == ["ok.png"]
    why = _skipped(tmp_path, [bomb])["ratio.zip/zeros.bmp"]
    assert why.startswith("expands") and f"the limit is {MAX_ZIP_RATIO}x" in why
    small_flat = _zip(tmp_path / "flat.zip", {"flat.bmp": bytes(100_000)})  # under the size the ratio applies from
    assert "flat.zip/flat.bmp" not in _skipped(tmp_path, [small_flat])  # not skipped as a bomb (then as unreadable)


@pytest.mark.parametrize("name, words", [
    ("inner.zip", "is a zip inside the zip"),
    ("sub/Inner.ZIP", "is a zip inside the zip"),
    ("../evil.png", "has an absolute or '../' path"),
    ("a/../../evil.png", "has an absolute or '../' path"),
    ("/etc/evil.png", "has an absolute or '../' path"),
    ("C:/evil.png", "has an absolute or '../' path"),
    ("a\\..\\..\\evil.png", "has an absolute or '../' path"),
])
def test_nested_zips_and_unsafe_paths_are_skipped_naming_the_entry(tmp_path, name, words):
    archive = _zip(tmp_path / "upload.zip", {"good.png": _png(0), name: _png(1)})
    assert open_uploads([archive]).names == ["good.png"]
    assert _skipped(tmp_path, [archive])[f"upload.zip/{name}"].startswith(words)


def test_a_symbolic_link_is_skipped(tmp_path):
    archive = _zip(tmp_path / "links.zip", {"good.png": _png(0), "link.png": b"/etc/passwd"}, links={"link.png"})
    assert _skipped(tmp_path, [archive])["links.zip/link.png"] == "is a symbolic link; archives may hold only files"


def test_an_encrypted_member_is_skipped_in_words(tmp_path):
    archive = _zip(tmp_path / "locked.zip", {"good.png": _png(0), "secret.png": _png(1)})
    data = bytearray(open(archive, "rb").read())
    # Set the "encrypted" flag bit in the central directory entry of secret.png, the second.
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[central + 8] |= 0x1
    open(archive, "wb").write(bytes(data))
    why = _skipped(tmp_path, [archive])["locked.zip/secret.png"]
    assert why == "is encrypted; upload it without a password" and "ZipInfo" not in why


def test_a_member_larger_than_declared_is_read_only_up_to_its_declared_size(tmp_path, model):
    data = _png(0)
    archive = _zip(tmp_path / "liar.zip", {"liar.png": data, "good.png": _png(1)}, declared={"liar.png": 100})
    result = _explore(model, [archive])  # 100 bytes of a PNG of thousands: truncated, or refused by the CRC check
    assert [r.name for r in result.rows] == ["good.png"] and [s.name for s in result.skipped] == ["liar.png"]


def test_an_image_over_the_pixel_limit_is_skipped(tmp_path, model, monkeypatch):
    monkeypatch.setattr("qkvae.image.MAX_PIXELS", 100 * 100)
    big = tmp_path / "big.png"
    big.write_bytes(_png(0, size=(200, 150)))
    result = _explore(model, [big, *_files(tmp_path, 1)])
    assert [r.name for r in result.rows] == ["image-000.png"]
    assert result.skipped == [Skipped("big.png", "big.png is 0.0 megapixels; the limit is 0")]


def test_a_broken_zip_is_skipped_and_an_upload_of_nothing_readable_refused(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    assert _skipped(tmp_path, [broken])["broken.zip"].startswith("not a readable zip archive")
    message = _refused([_zip(tmp_path / "text.zip", {"notes.txt": b"hi"})])
    assert message == "the upload holds no readable image files (1 skipped: text.zip/notes.txt: not an image file (by its name))"
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    assert _skipped(tmp_path, [notes]) == {"notes.txt": "not an image file or a .zip archive (by its name)"}


def test_names_keep_upload_order_and_say_the_archive_of_a_repeated_name(tmp_path):
    loose = tmp_path / "b.png"
    loose.write_bytes(_png(0))
    archive = _zip(tmp_path / "set.zip", {"z.png": _png(0), "b.png": _png(1), "__MACOSX/._b.png": b"meta",
                                          "d/": b"", "readme.md": b"hi"})
    source = open_uploads([loose, archive, archive])
    assert source.names == ["b.png", "set.zip/b.png", "set.zip/z.png", "set.zip/b.png (2)", "set.zip/z.png (2)"]
    assert source.unlisted == [Skipped("set.zip/readme.md", "not an image file (by its name)")] * 2
    assert open_uploads([archive]).names == ["b.png", "z.png"]  # no repeat: the member's own path


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
    # garbage.png is skipped by its header, before decoding
    assert heard == [(k / 6, f"reconstructing: {k} of 6 images read") for k in (0, 2, 4)]


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
    assert [caption for _, caption in items] == [f"{psnrs[i]:.2f} dB · {result.rows[i].name}" for i in by_psnr]
    top = result.worst("OOD score", 1)[0]  # the ranking value first, then the PSNR and the name
    assert result.gallery("OOD score", 1)[0][1] == f"OOD {scores[top]:.2f} · {psnrs[top]:.2f} dB · {result.rows[top].name}"
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
    with pytest.raises(UploadError, match="no readable image files .1 skipped: bad.png: bad.png is not an image"):
        _explore(model, [bad])
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_png(1)[:200])  # its header reads: refused only when decoded
    with pytest.raises(SourceError, match="none of the entries .* could be decoded.*truncated"):
        _explore(model, [truncated])


def test_the_summary_lists_the_first_skipped_entries_with_why(tmp_path, model):
    archive = _zip(tmp_path / "set.zip", {"good.png": _png(0), **{f"bad{i:02d}.png": b"x" for i in range(12)}})
    html = _explore(model, [archive]).summary_html()
    assert "<b>1</b> images reconstructed" in html and "<b>12</b> skipped" in html
    assert "<code>bad09.png</code>: bad09.png is not an image" in html and "bad10.png" not in html
    assert "and 2 more (all in the JSON)" in html
