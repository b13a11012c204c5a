"""Frames streamed out of the archives (fl_saliency/scoring/atari_head/archive.py): member order, memory,
broken archives; expected frames drawn here and written with tarfile/zipfile by hand."""

from __future__ import annotations

import io
import os
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from atari_head_files import assert_frames, drawn_frame, label_text, png, tar_bytes, write_release2_trial
from fl_saliency.scoring.atari_head import archive
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError
from fl_saliency.scoring.atari_head.sample import make_sample_trial


N_ORDER = 30


ORDERS = {
    "ten-first": [10, *range(1, 10), *range(11, N_ORDER + 1)],
    "lexicographic": sorted(range(1, N_ORDER + 1), key=str),
    "reversed": list(range(N_ORDER, 0, -1)),
    "shuffled": [int(i) for i in np.random.default_rng(0).permutation(np.arange(1, N_ORDER + 1))],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("buffer_bytes", [None, 0, 3000])
def test_frames_come_out_in_numeric_order(tmp_path, order, buffer_bytes):
    stem, frames = write_release2_trial(tmp_path, 9, "AB_9", N_ORDER, order=ORDERS[order])
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    kwargs = {} if buffer_bytes is None else {"buffer_bytes": buffer_bytes}
    before = sorted(os.listdir(tmp_path))
    assert_frames(ds.frames(trial, **kwargs), frames)
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted
    ds.check(trial)


def test_frames_skip_foreign_members_and_reject_bad_names(tmp_path):
    stem = "9_AB_9_Feb-20-16-46-45"
    frames = {i: drawn_frame(i) for i in (1, 2, 3)}
    write_release2_trial(tmp_path, 9, "AB_9", 3)
    extra = {f"{stem}/._AB_9_2.png": b"\0\5\x16\7", f"{stem}/notes.txt": b"hello"}
    (tmp_path / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, "AB_9", frames, [2, 3, 1], extra))
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    assert_frames(ds.frames(trial), frames)
    ds.check(trial)
    (tmp_path / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, "AB_9", frames, [1, 2, 3], {f"{stem}/XY_9_4.png": png(frames[1])}))
    with pytest.raises(DatasetError, match=f"trial 9 \\({stem}\\).*XY_9_4.png"):
        list(ds.frames(trial))
    (tmp_path / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, "AB_9", frames, [1, 2, 3, 2]))
    with pytest.raises(DatasetError, match="trial 9 .*duplicate"):
        list(ds.frames(trial))
    (tmp_path / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, "AB_9", frames, [1, 3]))
    with pytest.raises(DatasetError, match="trial 9 .*no frame 2"):
        ds.check(trial)


@pytest.mark.slow
def test_frames_memory_is_bounded(tmp_path):
    root = make_sample_trial("Breakout", 300, tmp_path, tar_order="shuffled")
    ds = AtariHeadDataset(root)
    (trial,) = ds.trials("Breakout")
    all_frames = 300 * 210 * 160 * 3  # about 30 MB
    for kwargs in ({}, {"buffer_bytes": 50_000}):
        tracemalloc.start()
        try:
            count, checksum = 0, 0
            for frame in ds.frames(trial, **kwargs):
                count += 1
                checksum += int(frame[::7, ::7].sum())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == 300
        assert peak < all_frames / 10, f"peak {peak} bytes with {kwargs}"


@pytest.mark.parametrize("cut", ["half", "end"])
def test_truncated_archive(tmp_path, cut):
    root = make_sample_trial("Breakout", 60, tmp_path)
    ds = AtariHeadDataset(root)
    (trial,) = ds.trials("Breakout")
    path = Path(trial.frames_file)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-20])
    for action in (lambda: list(ds.frames(trial)), lambda: ds.check(trial)):
        with pytest.raises(DatasetError, match=rf"trial 900 \({trial.stem}\).*{path.name}.*truncated or corrupt"):
            action()


def test_truncated_archive_in_zip(tmp_path):
    root = make_sample_trial("Breakout", 40, tmp_path, layout="release4")
    with zipfile.ZipFile(root / "breakout.zip") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(root / "breakout.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data[: len(data) // 2] if name.endswith(".tar.bz2") else data)
    ds = AtariHeadDataset(root)
    (trial,) = ds.trials("Breakout")
    with pytest.raises(DatasetError, match=rf"trial 900 .*breakout\.zip:breakout/{trial.stem}\.tar\.bz2"):
        list(ds.frames(trial))


def test_not_bz2(tmp_path):
    stem, _ = write_release2_trial(tmp_path, 9, "AB_9", 3)
    (tmp_path / f"{stem}.tar.bz2").write_bytes(b"not an archive at all" * 10)
    ds = AtariHeadDataset(tmp_path)
    with pytest.raises(DatasetError, match="trial 9 .*truncated or corrupt"):
        list(ds.frames(ds.trials("Breakout")[0]))


def test_missing_file(tmp_path):
    stem, _ = write_release2_trial(tmp_path, 9, "AB_9", 3)
    (tmp_path / f"{stem}.tar.bz2").unlink()
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    assert len(ds.labels(trial)) == 3
    with pytest.raises(DatasetError, match=f"trial 9 \\({stem}\\).*frames file is missing"):
        list(ds.frames(trial))


@pytest.mark.parametrize("order,buffer_bytes,passes", [
    ("numeric", 0, 1),  # in order: one pass, nothing buffered
    ("lexicographic", None, 1),  # out of order but within the buffer: one pass
    ("shuffled", None, 1),
    ("reversed", 0, N_ORDER),  # nothing may be buffered: one frame per pass
])
def test_archive_passes(tmp_path, monkeypatch, order, buffer_bytes, passes):
    numbers = list(range(1, N_ORDER + 1)) if order == "numeric" else ORDERS[order]
    _, frames = write_release2_trial(tmp_path, 9, "AB_9", N_ORDER, order=numbers)
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    opened = []
    original = archive._open_tar
    monkeypatch.setattr(archive, "_open_tar", lambda t: opened.append(t) or original(t))
    assert_frames(ds.frames(trial, **({} if buffer_bytes is None else {"buffer_bytes": buffer_bytes})), frames)
    assert len(opened) == passes


def test_real_png_form_and_wrong_sizes(tmp_path):
    """The real PNGs: 160 wide, 210 high, 8-bit RGB (written here by Pillow, not OpenCV), members
    ``<trial-stem>/<frame_id>.png`` numbered from 1; anything else is refused in one line."""
    from PIL import Image

    stem, utid = "160_RZ_9166697_Feb-20-16-46-45", "RZ_9166697"
    frames = {n: drawn_frame(n) for n in (1, 2, 3)}

    def pil_png(rgb):
        buf = io.BytesIO()
        Image.fromarray(rgb, mode="RGB").save(buf, format="PNG")
        return buf.getvalue()

    def write(members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        (tmp_path / f"{stem}.tar.bz2").write_bytes(buf.getvalue())

    write({f"{stem}/{utid}_{n}.png": pil_png(frames[n]) for n in (2, 3, 1)})
    assert Image.open(io.BytesIO(pil_png(frames[1]))).size == (160, 210)
    (tmp_path / f"{stem}.txt").write_text(label_text(utid, 3))
    (tmp_path / "meta_data.csv").write_text("TrialNumber,NumberOfFrames,Game\n160,3,Breakout\n")
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    assert_frames(ds.frames(trial), frames)
    assert next(ds.frames(trial))[0, 0].tolist() == [1, 2, 3]  # RGB, not BGR
    write({f"{stem}/{utid}_{n}.png": pil_png(np.ascontiguousarray(frames[n].transpose(1, 0, 2))) for n in (1, 2, 3)})
    with pytest.raises(DatasetError, match=r"trial 160 .*frame 1 .* is a 210x160 image, expected a 160x210 RGB PNG$"):
        list(ds.frames(trial))
    write({f"{stem}/{utid}_{n}.png": pil_png(frames[n + 1]) for n in (0, 1, 2)})
    with pytest.raises(DatasetError, match="trial 160 .*numbered 0; numbering starts at 1"):
        list(ds.frames(trial))


# --- sizes read from headers before anything is decoded (issue 24, item 14) -------------------------------------


def declared_png(width: int, height: int, rows: int) -> bytes:
    """A grayscale PNG whose header declares ``width`` x ``height`` and whose data holds ``rows`` rows of zeros: a
    real image up to there, small on disk whatever it declares."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the row's pixels
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def trial_with_frame_two(tmp_path, data: bytes):
    stem, frames = write_release2_trial(tmp_path, 9, "AB_9", 3)
    (tmp_path / f"{stem}.tar.bz2").write_bytes(
        tar_bytes(stem, "AB_9", frames, [1, 3], extra={f"{stem}/AB_9_2.png": data}))
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    return ds, trial


def test_a_png_declaring_a_huge_image_is_refused_from_its_header(tmp_path):
    ds, trial = trial_with_frame_two(tmp_path, declared_png(30000, 30000, 4))
    assert (tmp_path / f"{trial.stem}.tar.bz2").stat().st_size < 10_000
    frames = ds.frames(trial)
    assert next(frames).shape == (210, 160, 3)
    with pytest.raises(DatasetError, match=r"trial 9 .*frame 2 in .* is a 30000x30000 image, expected a 160x210 RGB "
                                           r"PNG$"):
        next(frames)


def test_decoding_a_png_bomb_never_happens(tmp_path):
    import subprocess
    import sys

    # 8000x8000: 64 MB of zeros in a 1 KB archive; decoding it (as colour, as frames are) took 368 MB more.
    ds, trial = trial_with_frame_two(tmp_path, declared_png(8000, 8000, 8000))
    script = ("import resource, sys\n"
              "from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError\n"
              "ds = AtariHeadDataset(sys.argv[1]); (trial,) = ds.trials('Breakout')\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "try:\n    list(ds.frames(trial))\nexcept DatasetError as e:\n    print(e)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    root = Path(archive.__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    message, grown_kib = result.stdout.strip().splitlines()
    assert message.endswith("frame 2 in " + trial.frames_location() + " is a 8000x8000 image, expected a 160x210 RGB PNG")
    assert int(grown_kib) < 32 * 1024


def test_a_tar_member_far_larger_than_a_frame_is_refused_before_it_is_read(tmp_path):
    ds, trial = trial_with_frame_two(tmp_path, bytes(archive.MAX_PNG_BYTES + 1))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=rf"frame 2 in .* is a file of {archive.MAX_PNG_BYTES + 1:,} bytes, "
                                               r"expected a 160x210 RGB PNG$"):
            list(ds.frames(trial))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < archive.MAX_PNG_BYTES


@pytest.mark.parametrize("data", [b"GIF89a" + bytes(100), b"\x89PNG\r\n\x1a\n", b""])
def test_a_frame_that_is_not_a_png_is_named(tmp_path, data):
    ds, trial = trial_with_frame_two(tmp_path, data)
    with pytest.raises(DatasetError, match=r"frame 2 in .* is not a PNG, expected a 160x210 RGB PNG$"):
        list(ds.frames(trial))
