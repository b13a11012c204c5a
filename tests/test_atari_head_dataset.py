"""Atari-HEAD reader (fl_saliency/atari_head/dataset.py) and the synthetic trial writer (sample.py).

Expectations are independent of the reader: frames come from replaying the emulator with the
actions of the labels file (sample trials) or are drawn here and written with tarfile/zipfile
by hand; label values are read off hand-written text or split here from the raw file.
"""

from __future__ import annotations

import io
import os
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import ale_py
import cv2
import numpy as np
import pytest

from fl_saliency.atari_head.dataset import AtariHeadDataset, DatasetError
from fl_saliency.atari_head.sample import make_sample_trial

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
R4_HEADER = ("GameName,trial_id,subject_id,load_trial,highest_score,total_frame,total_game_play_time,"
             "total_episode,max_error,avg_error,low_sample_rate,frame_averaging,fps")
ROMS = {"Breakout": "breakout", "MsPacman": "ms_pacman"}  # written out by hand


# ---------------------------------------------------------------------------------------------
# hand-made trials


def drawn_frame(n: int) -> np.ndarray:
    """A small-PNG RGB frame that differs for every n."""
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[:, :, 0] = n % 251
    frame[(n * 7) % 200:(n * 7) % 200 + 10, (n * 3) % 150:(n * 3) % 150 + 10] = (255, 255 - n % 200, 17)
    frame[0, 0] = (1, 2, 3)  # channel order shows
    return frame


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))[1].tobytes()


def tar_bytes(stem: str, utid: str, frames: dict[int, np.ndarray], order: list[int], extra: dict[str, bytes] = {}) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        d = tarfile.TarInfo(stem)
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        items = [(f"{stem}/{utid}_{n}.png", png(frames[n])) for n in order] + list(extra.items())
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def label_text(utid: str, n: int) -> str:
    rows = [HEADER]
    for i in range(1, n):
        rows.append(f"{utid}_{i},0,{i},100,0,{i % 18},{i}.25,{i + 1}.50")
    rows.append(f"{utid}_{n}" + ",null" * 6)
    return "\n".join(rows) + "\n"


def write_release2_trial(root: Path, number: int, utid: str, n: int, order=None, game="Breakout",
                         meta_frames=None) -> tuple[str, dict[int, np.ndarray]]:
    stem = f"{number}_{utid}_Feb-20-16-46-45"
    frames = {i: drawn_frame(i + number) for i in range(1, n + 1)}
    (root / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, utid, frames, order or list(range(1, n + 1))))
    (root / f"{stem}.txt").write_text(label_text(utid, n))
    meta = root / "meta_data.csv"
    if not meta.exists():
        meta.write_text("TrialNumber,NumberOfFrames,Game\n")
    with open(meta, "a") as f:
        f.write(f"{number},{n if meta_frames is None else meta_frames},{game}\n")
    return stem, frames


def assert_frames(got, expected: dict[int, np.ndarray]) -> None:
    got = list(got)
    assert len(got) == len(expected)
    for n, frame in enumerate(got, start=1):
        assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, expected[n], err_msg=f"frame {n}")


# ---------------------------------------------------------------------------------------------
# round trip through make_sample_trial, checked against an emulator replay


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
    make_sample_trial("Breakout", 22, tmp_path, layout="release4", trial_number=6, seed=1)  # replaces trial 6
    ds = AtariHeadDataset(tmp_path)
    trials = ds.trials("Breakout")
    assert [(t.number, t.n_frames, t.highscore) for t in trials] == [(5, 20, False), (6, 22, False), (7, 30, True)]
    for t in trials:
        ds.check(t)


# ---------------------------------------------------------------------------------------------
# labels, by hand

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
# meta files and layouts


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


# ---------------------------------------------------------------------------------------------
# streaming


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


# ---------------------------------------------------------------------------------------------
# broken archives and counts


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
    original = AtariHeadDataset._tar
    monkeypatch.setattr(AtariHeadDataset, "_tar", lambda self, t: opened.append(t) or original(self, t))
    assert_frames(ds.frames(trial, **({} if buffer_bytes is None else {"buffer_bytes": buffer_bytes})), frames)
    assert len(opened) == passes
