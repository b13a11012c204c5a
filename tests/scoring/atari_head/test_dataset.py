"""The dataset facade (fl_saliency/scoring/atari_head/dataset.py): the one frame-count check."""

from __future__ import annotations


import pytest

from atari_head_files import label_text, write_release2_trial
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError


def test_frame_count_mismatch(tmp_path):
    stem, _ = write_release2_trial(tmp_path, 9, "AB_9", 6, meta_frames=7)
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    with pytest.raises(DatasetError) as e:
        ds.check(trial)
    msg = str(e.value)
    assert f"trial 9 ({stem})" in msg and "7 frames" in msg and "6 rows" in msg and "6 PNGs" in msg
    # fewer label rows than PNGs
    (tmp_path / f"{stem}.txt").write_text(label_text("AB_9", 5))
    (tmp_path / "meta_data.csv").write_text("TrialNumber,NumberOfFrames,Game\n9,6,Breakout\n")
    ds = AtariHeadDataset(tmp_path)
    with pytest.raises(DatasetError, match=r"trial 9 .*6 frames.*5 rows.*6 PNGs"):
        ds.check(ds.trials("Breakout")[0])
