"""make-sample-trial (fl_saliency/scoring/atari_head/sample.py): the files it writes, read back by the
reader and checked against an emulator replay of their actions."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import ale_py
import numpy as np
import pytest

from atari_head_files import HEADER, R4_HEADER
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.cli import main
from fl_saliency.common.errors import FlSaliencyError


ROMS = {"Breakout": "breakout", "MsPacman": "ms_pacman"}  # written out by hand


def raw_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    assert lines[0] == HEADER
    return [line.split(",") for line in lines[1:]]


@pytest.mark.parametrize("layout,game,highscore", [
    ("release2", "Breakout", False), ("release4", "Breakout", False), ("release4", "MsPacman", True),
])
def test_sample_round_trip_matches_emulator_replay(tmp_path, layout, game, highscore):
    n, seed = 60, 3
    root = make_sample_trial(game, n, tmp_path / "ds", layout=layout, seed=seed, trial_number=901,
                             **({"highscore": True} if highscore else {}))
    ds = AtariHeadDataset(root)
    assert ds.release == int(layout[-1])
    assert ds.games() == [game]
    (trial,) = ds.trials(f"{game}NoFrameskip-v4")
    stem = f"901_SY_{seed:07d}_Jan-01-12-00-00"
    assert (trial.number, trial.stem, trial.game, trial.n_frames, trial.highscore) == (901, stem, game, n, highscore)

    # the files, as written
    if layout == "release2":
        assert sorted(os.listdir(root)) == sorted([f"{stem}.tar.bz2", f"{stem}.txt", "meta_data.csv"])
        text = (root / f"{stem}.txt").read_text()
        tar_data = (root / f"{stem}.tar.bz2").read_bytes()
        meta = (root / "meta_data.csv").read_text().splitlines()
        assert meta == ["TrialNumber,NumberOfFrames,Game,Note", f"901,{n},{game},synthetic gaze"]
    else:
        assert sorted(os.listdir(root)) == sorted([f"{ROMS[game]}.zip", "action_enums.txt", "meta_data.csv"])
        inner = f"{ROMS[game]}/highscore/" if highscore else f"{ROMS[game]}/"
        with zipfile.ZipFile(root / f"{ROMS[game]}.zip") as zf:
            text = zf.read(f"{inner}{stem}.txt").decode()
            tar_data = zf.read(f"{inner}{stem}.tar.bz2")
        meta = (root / "meta_data.csv").read_text().splitlines()
        assert meta[0] == R4_HEADER
        game_name = {"Breakout": "breakout", "MsPacman": "mspacman"}[game] + ("_highscore" if highscore else "")
        if game_name == "mspacman_highscore":
            game_name = "ms_pacman_highscore"
        assert meta[1].split(",")[:3] == [game_name, "901", "SYNTHETIC"] and meta[1].split(",")[5] == str(n)
        assert "PLAYER_A_FIRE = 1" in (root / "action_enums.txt").read_text()
    with tarfile.open(fileobj=io.BytesIO(tar_data), mode="r:bz2") as tf:
        names = [m.name for m in tf.getmembers()]
    assert names[0] == stem
    assert sorted(names[1:]) == sorted(f"{stem}/SY_{seed:07d}_{i}.png" for i in range(1, n + 1))
    assert names[1:4] == [f"{stem}/SY_{seed:07d}_{i}.png" for i in (1, 10, 11)]  # sorted as text by default

    # labels: the reader's values are the raw text's
    rows = raw_rows(text)
    labels = ds.labels(trial)
    assert len(labels) == n and list(labels.frame_numbers) == list(range(1, n + 1))
    assert rows[-1] == [f"SY_{seed:07d}_{n}"] + ["null"] * 6
    assert labels.actions[-1] is None and labels.episode_ids[-1] is None and len(labels.gaze[-1]) == 0
    for i, row in enumerate(rows):
        assert row[0] == f"SY_{seed:07d}_{i + 1}"
        if i < n - 1:
            assert labels.episode_ids[i] == int(row[1]) and labels.scores[i] == int(row[2])
            assert labels.durations[i] == int(row[3]) and labels.unclipped_rewards[i] == int(row[4])
            assert labels.actions[i] == int(row[5])
        values = row[6:]
        if values == ["null"]:
            assert labels.gaze[i].shape == (0, 2)
        else:
            assert all(len(v.split(".")[1]) == 2 for v in values)
            np.testing.assert_array_equal(labels.gaze[i], np.array(values, float).reshape(-1, 2))
    gaze = np.concatenate(labels.gaze)
    assert len(gaze) > 2 * n
    assert sum(len(g) == 0 for g in labels.gaze) >= 1  # some frames are null (at least the last)

    # frames: replay the labels' actions on a fresh emulator
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(ale_py.roms.get_rom_path(ROMS[game]))
    minimal = {a.value for a in ale.getMinimalActionSet()}
    score, episode = 0, 0
    frames = ds.frames(trial)
    for i in range(n):
        np.testing.assert_array_equal(next(frames), ale.getScreenRGB(), err_msg=f"frame {i + 1}")
        if i == n - 1:
            break
        assert labels.actions[i] in minimal
        assert (labels.episode_ids[i], labels.scores[i]) == (episode, score)
        reward = ale.act(ale_py.Action(labels.actions[i]))
        assert labels.unclipped_rewards[i] == reward
        score += reward
        if ale.game_over():
            ale.reset_game()
            score, episode = 0, episode + 1
    assert next(frames, None) is None
    ds.check(trial)


def test_sample_breakout_gaze_follows_the_ball(tmp_path):
    root = make_sample_trial("Breakout", 200, tmp_path, seed=1)
    ds = AtariHeadDataset(root)
    (trial,) = ds.trials("Breakout")
    labels = ds.labels(trial)
    distances = []
    for i, frame in enumerate(ds.frames(trial)):
        red = (frame[63:189, 8:152] == (200, 72, 72)).all(-1)
        ys, xs = np.nonzero(red)
        g = labels.gaze[i]
        inside = g[(g[:, 0] >= 0) & (g[:, 0] < 160) & (g[:, 1] >= 0) & (g[:, 1] < 210)]
        if len(xs) and len(inside):
            distances.append(np.hypot(*(inside.mean(0) - (xs.mean() + 8.5, ys.mean() + 63.5))))
    assert len(distances) > 50
    assert np.median(distances) < 15
    gaze = np.concatenate(labels.gaze)
    assert ((gaze[:, 0] < 0) | (gaze[:, 0] >= 160) | (gaze[:, 1] < 0) | (gaze[:, 1] >= 210)).any()


def test_sample_trials_accumulate_in_one_folder(tmp_path):
    make_sample_trial("Breakout", 20, tmp_path, layout="release4", trial_number=5)
    make_sample_trial("Breakout", 25, tmp_path, layout="release4", trial_number=6, seed=1)
    make_sample_trial("Breakout", 30, tmp_path, layout="release4", trial_number=7, highscore=True)
    make_sample_trial("Breakout", 22, tmp_path, layout="release4", trial_number=6, seed=1, force=True)  # replaces trial 6
    ds = AtariHeadDataset(tmp_path)
    trials = ds.trials("Breakout")
    assert [(t.number, t.n_frames, t.highscore) for t in trials] == [(5, 20, False), (6, 22, False), (7, 30, True)]
    for t in trials:
        ds.check(t)


# ---------------------------------------------------------------------------------------------
# refusing before writing anything; --force


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_trial_number_is_refused_untouched_or_replaced_with_force(tmp_path):
    make_sample_trial("Breakout", 10, tmp_path, seed=0, trial_number=900)
    make_sample_trial("Breakout", 9, tmp_path, seed=0, trial_number=901)
    before = snapshot(tmp_path)
    for seed in (0, 1):  # the same stem, or another seed's that would make trial 900 ambiguous
        with pytest.raises(FlSaliencyError, match="already holds trial 900 .*900_SY_0000000.*pass --force"):
            make_sample_trial("Breakout", 12, tmp_path, seed=seed, trial_number=900)
        assert snapshot(tmp_path) == before
    make_sample_trial("Breakout", 12, tmp_path, seed=1, trial_number=900, force=True)
    assert sorted(os.listdir(tmp_path)) == sorted([
        "meta_data.csv", *(f"{n}_SY_{s}_Jan-01-12-00-00.{ext}" for n, s in ((900, "0000001"), (901, "0000000"))
                           for ext in ("txt", "tar.bz2"))])
    assert (tmp_path / "meta_data.csv").read_text().splitlines()[1:] == [
        "901,9,Breakout,synthetic gaze", "900,12,Breakout,synthetic gaze"]
    ds = AtariHeadDataset(tmp_path)
    trials = ds.trials("Breakout")
    assert [(t.number, t.stem, t.n_frames) for t in trials] == [
        (900, "900_SY_0000001_Jan-01-12-00-00", 12), (901, "901_SY_0000000_Jan-01-12-00-00", 9)]
    for t in trials:
        ds.check(t)


def test_release4_same_number_refused_or_replaced_inside_the_zip(tmp_path):
    make_sample_trial("Breakout", 10, tmp_path, layout="release4", trial_number=5)
    before = snapshot(tmp_path)
    with pytest.raises(FlSaliencyError, match="already holds trial 5 .*breakout/5_SY_0000000"):
        make_sample_trial("Breakout", 10, tmp_path, layout="release4", trial_number=5, seed=3)
    assert snapshot(tmp_path) == before
    make_sample_trial("Breakout", 8, tmp_path, layout="release4", trial_number=5, highscore=True)  # another trial
    make_sample_trial("Breakout", 11, tmp_path, layout="release4", trial_number=5, seed=3, force=True)
    with zipfile.ZipFile(tmp_path / "breakout.zip") as zf:
        trial_members = sorted(n for n in zf.namelist() if n.endswith((".txt", ".tar.bz2")))
    assert trial_members == [f"breakout/{d}5_SY_{s}_Jan-01-12-00-00.{ext}" for d, s in (("", "0000003"), ("highscore/", "0000000"))
                             for ext in ("tar.bz2", "txt")]
    ds = AtariHeadDataset(tmp_path)
    assert [(t.number, t.highscore, t.n_frames) for t in ds.trials("Breakout")] == [(5, False, 11), (5, True, 8)]


@pytest.mark.parametrize("first,second", [("release2", "release4"), ("release4", "release2")])
def test_another_layout_is_refused_before_writing(tmp_path, first, second):
    make_sample_trial("Breakout", 10, tmp_path, layout=first, trial_number=1)
    before = snapshot(tmp_path)
    with pytest.raises(FlSaliencyError, match="meta_data.csv has the columns .*not this layout's"):
        make_sample_trial("Breakout", 10, tmp_path, layout=second, trial_number=2)
    assert snapshot(tmp_path) == before  # no breakout.zip, no action_enums.txt, no trial 2


def test_command_refuses_in_one_line_and_replaces_with_force(tmp_path, capsys):
    args = ["make-sample-trial", "--frames", "10", "--out", str(tmp_path)]
    assert main(args) == 0
    before = snapshot(tmp_path)
    assert main([*args, "--seed", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds trial 900" in err[0] and "--force" in err[0]
    assert snapshot(tmp_path) == before
    assert main([*args, "--seed", "4", "--force"]) == 0
    assert [t.stem for t in AtariHeadDataset(tmp_path).trials("Breakout")] == ["900_SY_0000004_Jan-01-12-00-00"]


@pytest.mark.parametrize("layout, failing", [("release2", "900_SY_0000000_Jan-01-12-00-00.txt"),
                                             ("release4", "action_enums.txt")])
def test_a_full_disk_leaves_no_part_of_the_trial_and_the_advice_works(tmp_path, small_disk, capsys, layout, failing):
    args = ["make-sample-trial", "--frames", "30", "--layout", layout, "--out"]
    assert main([*args, str(tmp_path / "whole")]) == 0
    whole = snapshot(tmp_path / "whole")
    first = max(whole.values(), key=len)  # the tar (release 2) or the zip (release 4), written first
    stat = os.statvfs(small_disk)
    filler = small_disk / "filler"
    # room for it alone, and a page for the folder's lock file
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - -(-len(first) // 4096) * 4096 - 4096))
    out = small_disk / "ah"
    assert main([*args, str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"fl-saliency: error: no space left on the device of {out / failing}; free space and run the command again"]
    assert not out.exists()  # nothing written: the folder made for it is removed too
    filler.unlink()
    assert main([*args, str(out)]) == 0
    assert snapshot(out) == whole
