"""Labels files (fl_saliency/scoring/atari_head/labels.py) against hand-written text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atari_head_files import HEADER
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError


TINY = """frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions
AB_123_1,0,0,250,0,1,10.50,20.25,-3.00,215.75,159.99,0.00
AB_123_2,null,0,120,0,0,null
AB_123_3,0,5,99,5,3,80.00,105.00
AB_123_4,1,0,300,0,12,170.10,-1.20
AB_123_5,null,null,null,null,null,null
"""


def labels_dataset(tmp_path: Path, text: str, n_meta: int = 5) -> tuple[AtariHeadDataset, str]:
    stem = "42_AB_123_Mar-01-10-00-00"
    (tmp_path / f"{stem}.txt").write_text(text)
    (tmp_path / "meta_data.csv").write_text(f"TrialNumber,NumberOfFrames,Game\n42,{n_meta},Enduro\n")
    return AtariHeadDataset(tmp_path), stem


def test_labels_by_hand(tmp_path):
    ds, stem = labels_dataset(tmp_path, TINY)
    (trial,) = ds.trials("Enduro")
    labels = ds.labels(trial)
    assert list(labels.frame_numbers) == [1, 2, 3, 4, 5]
    assert labels.episode_ids == [0, None, 0, 1, None]
    assert labels.scores == [0, 0, 5, 0, None]
    assert labels.durations == [250, 120, 99, 300, None]
    assert labels.unclipped_rewards == [0, 0, 5, 0, None]
    assert labels.actions == [1, 0, 3, 12, None]
    np.testing.assert_array_equal(labels.gaze[0], [[10.5, 20.25], [-3.0, 215.75], [159.99, 0.0]])
    assert labels.gaze[1].shape == (0, 2) and labels.gaze[4].shape == (0, 2)
    np.testing.assert_array_equal(labels.gaze[2], [[80.0, 105.0]])
    np.testing.assert_array_equal(labels.gaze[3], [[170.1, -1.2]])
    assert all(g.dtype == np.float64 for g in labels.gaze)
    # Windows line ends and a trailing blank line change nothing
    (tmp_path / "crlf").mkdir()
    ds2, _ = labels_dataset(tmp_path / "crlf", TINY.replace("\n", "\r\n") + "\r\n")
    again = ds2.labels(ds2.trials("Enduro")[0])
    assert again.actions == labels.actions and all((a == b).all() for a, b in zip(again.gaze, labels.gaze))


@pytest.mark.parametrize("line_no,bad,what", [
    (3, "AB_123_2,0,0,120,0,0,12.50,abc", "gaze"),
    (3, "AB_123_2,0,0,120,0,0,12.50,13.00,14.00", "gaze"),
    (3, "AB_123_7,0,0,120,0,0,null", "AB_123_2"),
    (3, "AB_123_3,0,0,120,0,0,null", "AB_123_2"),
    (4, "AB_123_3,0,5,99,5", "fields"),
    (4, "AB_123_3,x,5,99,5,3,80.00,105.00", "episode_id"),
    (4, "AB_123_3,0,5,99,5,18,80.00,105.00", "action"),
    (4, "AB_123_3,0,5,99,5,3,80.00,", "gaze"),
    (4, "AB_123_3,0,5,99,5,3,nan,1.00", "gaze"),
    (4, "", "fields"),
])
def test_malformed_label_rows(tmp_path, line_no, bad, what):
    lines = TINY.splitlines()
    lines[line_no - 1] = bad
    ds, stem = labels_dataset(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as e:
        ds.labels(ds.trials("Enduro")[0])
    msg = str(e.value)
    assert "trial 42" in msg and f"{stem}.txt" in msg and f"line {line_no}" in msg and what in msg


def test_label_header_must_be_exact(tmp_path):
    ds, stem = labels_dataset(tmp_path, TINY.replace("gaze_positions", "gaze"))
    with pytest.raises(DatasetError, match=rf"trial 42 .*{stem}\.txt line 1: header"):
        ds.labels(ds.trials("Enduro")[0])


# ---------------------------------------------------------------------------------------------
# the real files' forms


def real_label_rows(rng, utid: str, n: int, last: str) -> tuple[list[str], list[np.ndarray]]:
    """Rows as the real files: about one gaze sample per millisecond of duration(ms), floats with two
    decimals and often off screen (x -28..207, y -56..335), ``null`` for a frame without gaze and
    in missing cells, and a last row whose duration and gaze are ``null``."""
    rows, gaze = [], []
    for i in range(1, n):
        duration = int(rng.integers(40, 450))
        if i % 5 == 2:
            rows.append(f"{utid}_{i},{'null' if i == 2 else 0},{i * 10},{duration},0,{i % 18},null")
            gaze.append(np.zeros((0, 2)))
            continue
        k = duration + int(rng.integers(-3, 4))
        xy = np.c_[rng.uniform(-28, 207, k), rng.uniform(-56, 335, k)].round(2)
        xy[0] = (-28.0, 335.0)
        gaze.append(xy)
        rows.append(f"{utid}_{i},0,{i * 10},{duration},0,{i % 18}," + ",".join(f"{v:.2f}" for v in xy.ravel()))
    rows.append(f"{utid}_{n}," + last)
    gaze.append(np.zeros((0, 2)))
    return rows, gaze


@pytest.mark.parametrize("line_end,final_newline", [("\r\n", False), ("\r\n", True), ("\n", True), ("\n", False)])
@pytest.mark.parametrize("last", ["null,null,null,null,null,null", "2,850,null,0,0,null"])
def test_real_label_file_forms(tmp_path, line_end, final_newline, last):
    rng = np.random.default_rng(3)
    rows, gaze = real_label_rows(rng, "RZ_9166697", 12, last)
    data = line_end.join([HEADER, *rows]).encode() + (line_end.encode() if final_newline else b"")
    stem = "160_RZ_9166697_Feb-20-16-46-45"
    (tmp_path / f"{stem}.txt").write_bytes(data)
    (tmp_path / "meta_data.csv").write_bytes(b"TrialNumber,NumberOfFrames,Game\r\n160,12,Breakout")
    ds = AtariHeadDataset(tmp_path)
    labels = ds.labels(ds.trials("Breakout")[0])
    assert len(labels) == 12
    assert labels.durations[-1] is None and labels.durations[0] == int(rows[0].split(",")[3])
    assert labels.episode_ids[1] is None and labels.episode_ids[:3:2] == [0, 0]
    for got, expected, row in zip(labels.gaze, gaze, rows):
        np.testing.assert_array_equal(got, expected)  # the two-decimal values exactly, off screen kept
        assert got.shape == (0, 2) if row.endswith(",null") else len(got) >= int(row.split(",")[3]) - 3
    all_gaze = np.concatenate(labels.gaze)
    assert all_gaze[:, 0].min() == -28.0 and all_gaze[:, 1].max() == 335.0


def test_label_errors_show_odd_bytes_escaped(tmp_path):
    ds, stem = labels_dataset(tmp_path, TINY.replace("frame_id,", "\x1b[2Jframe_id,"))
    with pytest.raises(DatasetError) as e:
        ds.labels(ds.trials("Enduro")[0])
    assert "line 1: header '\\x1b[2Jframe_id," in str(e.value) and "\x1b" not in str(e.value)


def test_long_garbage_cells_are_cut_short(tmp_path):
    garbage = "\x00\x1b" + "z" * 5000
    for line_no, bad in ((2, f"AB_123_1,0,0,250,0,1,10.50,{garbage}"), (3, f"AB_123_2,{garbage},0,120,0,0,null"),
                         (4, f"AB_123_3,0,{garbage},99,5,3,80.00,105.00")):
        lines = TINY.splitlines()
        lines[line_no - 1] = bad
        ds, _ = labels_dataset(tmp_path, "\n".join(lines) + "\n")
        with pytest.raises(DatasetError, match=rf"line {line_no} .*'\\x00\\x1bzz.*\.\.\. is not") as e:
            ds.labels(ds.trials("Enduro")[0])
        assert len(str(e.value)) < 400 and "\x1b" not in str(e.value)


def test_a_labels_zip_member_inflating_past_the_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import tracemalloc
    import zipfile

    from fl_saliency.scoring.atari_head import labels as labels_module
    from fl_saliency.scoring.atari_head.sample import make_sample_trial

    root = make_sample_trial("Breakout", 5, tmp_path, layout="release4")
    with zipfile.ZipFile(root / "breakout.zip") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(root / "breakout.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            if not name.endswith(".txt"):
                zf.writestr(name, data)
                continue
            with zf.open(name, "w") as f:  # 64 MiB of zeros after the real rows, about 64 KB compressed
                f.write(data)
                for _ in range(64):
                    f.write(bytes(2**20))
    assert (root / "breakout.zip").stat().st_size < 1_000_000
    monkeypatch.setattr(labels_module, "MAX_LABELS_BYTES", 2**20)  # the real bound is 256 MiB; the logic is the same
    ds = AtariHeadDataset(root)
    (trial,) = ds.trials("Breakout")
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"trial 900 .*labels .*breakout\.zip:breakout/.*\.txt hold more than "
                                               r"1 MiB, far more than any Atari-HEAD labels file: refused$"):
            ds.labels(trial)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20
