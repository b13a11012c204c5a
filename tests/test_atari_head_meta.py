"""meta_data.csv of both releases and the layouts their files come in (fl_saliency/atari_head/meta.py)."""

from __future__ import annotations

import tarfile
import zipfile

import numpy as np
import pytest

from atari_head_files import R4_HEADER, assert_frames, drawn_frame, label_text, png, tar_bytes, write_release2_trial
from fl_saliency.atari_head.dataset import AtariHeadDataset, DatasetError
from fl_saliency.atari_head.sample import make_sample_trial


def test_release2_meta_mspacman_empty_rows_and_missing_files(tmp_path):
    write_release2_trial(tmp_path, 7, "AB_1", 4)
    (tmp_path / "meta_data.csv").write_text(
        "TrialNumber,Subject,NumberOfFrames,Game\n"
        "7,AB,4.0,Breakout\n"
        ",,,\n"
        "\n"
        "5,CD,3,Mspacman\n"
        "99,EF,10,Enduro\n"  # no files for this one
        ",,,\n"
    )
    stem5, frames5 = "5_CD_22_Jan-02-03-04-05", {i: drawn_frame(100 + i) for i in (1, 2, 3)}
    (tmp_path / f"{stem5}.tar.bz2").write_bytes(tar_bytes(stem5, "CD_22", frames5, [3, 1, 2]))
    (tmp_path / f"{stem5}.txt").write_text(label_text("CD_22", 3))
    ds = AtariHeadDataset(tmp_path)
    assert ds.release == 2
    assert ds.games() == ["Breakout", "MsPacman"]
    (trial,) = ds.trials("MsPacmanNoFrameskip-v4")
    assert (trial.number, trial.stem, trial.n_frames, trial.game) == (5, stem5, 3, "MsPacman")
    assert_frames(ds.frames(trial), frames5)
    ds.check(trial)
    assert ds.trials("Breakout")[0].n_frames == 4
    with pytest.raises(DatasetError, match="no Atari-HEAD trials for game Enduro in .*; it has: Breakout, MsPacman"):
        ds.trials("Enduro")
    with pytest.raises(DatasetError, match="unknown Atari game"):
        ds.trials("NoSuchGame")


@pytest.mark.parametrize("zip_name,inner", [("ms_pacman", "ms_pacman"), ("mspacman", "mspacman"), ("mspacman", "ms_pacman")])
def test_release4_meta_and_zips(tmp_path, zip_name, inner):
    trials = {  # number: (zip, folder in zip, utid, n frames)
        10: ("breakout", "breakout/", "AB_10", 3), 11: ("breakout", "breakout/highscore/", "HS_11", 4),
        12: (zip_name, f"{inner}/", "CD_12", 5), 13: (zip_name, f"{inner}/highscore/", "HS_13", 2),
    }
    expected = {}
    zips: dict[str, zipfile.ZipFile] = {}
    for number, (zname, folder, utid, n) in trials.items():
        stem = f"{number}_{utid}_Sep-01-01-01-01"
        frames = {i: drawn_frame(number * 10 + i) for i in range(1, n + 1)}
        expected[number] = (stem, frames)
        if zname not in zips:
            zips[zname] = zipfile.ZipFile(tmp_path / f"{zname}.zip", "w")
        zf = zips[zname]
        zf.writestr(folder + f"{stem}.txt", label_text(utid, n))
        zf.writestr(folder + f"{stem}.tar.bz2", tar_bytes(stem, utid, frames, list(range(n, 0, -1))))
    for zf in zips.values():
        zf.close()
    (tmp_path / "action_enums.txt").write_text("PLAYER_A_NOOP = 0\n")
    (tmp_path / "meta_data.csv").write_text(
        R4_HEADER + "\n"
        "breakout,10, AB,0,5,3,100,1,1.2,0.5,1.00%,FALSE,20\n"
        "breakout_highscore,11, HS,0,9,4,100,1,1.2,0.5,1.00%,FALSE,20\n"
        "mspacman,12, CD,0,5,5,100,1,1.2,0.5,1.00%,TRUE,30\n"
        "ms_pacman_highscore,13, HS,0,5,2,100,1,1.2,0.5,1.00%,FALSE,20\n"
        "space_invaders,14, XY,0,5,2,100,1,1.2,0.5,1.00%,FALSE,20\n"  # its zip was not downloaded
    )
    ds = AtariHeadDataset(tmp_path)
    assert ds.release == 4
    assert ds.games() == ["Breakout", "MsPacman"]
    got = ds.trials("MsPacman") + ds.trials("Breakout")
    assert [(t.number, t.highscore, t.subject, t.game) for t in got] == [
        (12, False, "CD", "MsPacman"), (13, True, "HS", "MsPacman"), (10, False, "AB", "Breakout"), (11, True, "HS", "Breakout"),
    ]
    for t in got:
        stem, frames = expected[t.number]
        assert t.stem == stem and t.n_frames == len(frames)
        assert_frames(ds.frames(t), frames)
        assert len(ds.labels(t)) == len(frames)
        ds.check(t)
    with pytest.raises(DatasetError, match="no Atari-HEAD trials for game SpaceInvaders"):
        ds.trials("SpaceInvaders")


def test_dataset_root_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        AtariHeadDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no meta_data.csv"):
        AtariHeadDataset(tmp_path)
    (tmp_path / "meta_data.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DatasetError, match="unknown Atari-HEAD layout"):
        AtariHeadDataset(tmp_path)
    (tmp_path / "meta_data.csv").write_text("TrialNumber,NumberOfFrames,Game\n3,10,NotAGame\n")
    with pytest.raises(DatasetError, match="line 2"):
        AtariHeadDataset(tmp_path)


@pytest.mark.parametrize("nested", [False, True])
def test_release2_extracted_tar_folder(tmp_path, nested):
    stem, frames = write_release2_trial(tmp_path, 8, "AB_8", 12, order=[12, *range(1, 12)])
    target = tmp_path / stem if nested else tmp_path
    with tarfile.open(tmp_path / f"{stem}.tar.bz2") as tf:
        tf.extractall(target, filter="data")  # gives <stem>/<PNGs> under target
    (tmp_path / f"{stem}.tar.bz2").unlink()
    ds = AtariHeadDataset(tmp_path)
    (trial,) = ds.trials("Breakout")
    assert trial.frames_extracted
    assert_frames(ds.frames(trial), frames)
    ds.check(trial)
    (tmp_path / stem / (f"{stem}/" if nested else "") / "AB_8_5.png").unlink()
    with pytest.raises(DatasetError, match="trial 8 .*no frame 5"):
        list(ds.frames(trial))


def test_release4_extracted_zip_folder(tmp_path):
    make_sample_trial("Breakout", 15, tmp_path, layout="release4", trial_number=3)
    make_sample_trial("Breakout", 12, tmp_path, layout="release4", trial_number=4, seed=2, highscore=True)
    zipped = AtariHeadDataset(tmp_path)
    expected = {t.number: list(zipped.frames(t)) for t in zipped.trials("Breakout")}
    with zipfile.ZipFile(tmp_path / "breakout.zip") as zf:
        zf.extractall(tmp_path)
    (tmp_path / "breakout.zip").unlink()
    hs = tmp_path / "breakout" / "highscore"
    (tar_path,) = hs.glob("*.tar.bz2")
    with tarfile.open(tar_path) as tf:
        tf.extractall(hs, filter="data")
    tar_path.unlink()
    ds = AtariHeadDataset(tmp_path)
    trials = ds.trials("Breakout")
    assert [(t.number, t.highscore, t.frames_extracted, t.frames_zip) for t in trials] == [(3, False, False, None), (4, True, True, None)]
    for t in trials:
        assert_frames(ds.frames(t), dict(enumerate(expected[t.number], start=1)))
        ds.check(t)
