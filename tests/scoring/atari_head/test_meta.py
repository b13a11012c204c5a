"""meta_data.csv of both releases and the layouts their files come in (fl_saliency/scoring/atari_head/meta.py)."""

from __future__ import annotations

import tarfile
import zipfile

import pytest

from atari_head_files import R4_HEADER, assert_frames, drawn_frame, label_text, tar_bytes, write_release2_trial
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError
from fl_saliency.scoring.atari_head.meta import MetaRow, read_meta
from fl_saliency.scoring.atari_head.sample import make_sample_trial


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
# release 4's meta_data.csv in the real file's exact form


REAL_GAMES = {  # release 4's spelling -> ALE's, written out by hand
    "alien": "Alien", "asterix": "Asterix", "bank_heist": "BankHeist", "berzerk": "Berzerk",
    "breakout": "Breakout", "centipede": "Centipede", "demon_attack": "DemonAttack", "enduro": "Enduro",
    "freeway": "Freeway", "frostbite": "Frostbite", "hero": "Hero", "montezuma_revenge": "MontezumaRevenge",
    "ms_pacman": "MsPacman", "name_this_game": "NameThisGame", "phoenix": "Phoenix", "riverraid": "Riverraid",
    "road_runner": "RoadRunner", "seaquest": "Seaquest", "space_invaders": "SpaceInvaders", "venture": "Venture",
}


def real_release4_meta() -> bytes:
    """471 rows as the real file: CRLF line ends, no newline after the last row, subject ids with a
    leading space, the 20 games in snake case, then one ``<game>_highscore`` row per game (the last
    one Breakout's, trial 1019)."""
    rows = [R4_HEADER]
    games = list(REAL_GAMES)
    for r in range(451):
        rows.append(f"{games[r % 20]},{100 + r}, {'RZ' if r % 2 else 'JAW'},0,{r * 10},{1000 + r},"
                    f"{60000 + r},{1 + r % 3},1.25,0.61,{r % 7}.35%,{'TRUE' if r < 100 else 'FALSE'},{20 if r < 100 else 30}")
    for i, game in enumerate(sorted(games, key=lambda g: g == "breakout")):
        rows.append(f"{game}_highscore,{1000 + i}, KM,0,99999,{500 + i},30000,1,1.00,0.50,0.00%,FALSE,20")
    return "\r\n".join(rows).encode()


def test_real_release4_meta_data_csv(tmp_path):
    data = real_release4_meta()
    assert data.count(b"\r\n") == 471 and not data.endswith(b"\n") and b", RZ," in data
    (tmp_path / "meta_data.csv").write_bytes(data)
    release, rows = read_meta(tmp_path / "meta_data.csv")
    assert release == 4 and len(rows) == 471
    assert {row.game for row in rows.values()} == set(REAL_GAMES.values())
    assert sum(row.highscore for row in rows.values()) == 20
    assert {row.subject for row in rows.values()} == {"RZ", "JAW", "KM"}  # the leading space is dropped
    assert rows[("Breakout", False, 104)] == MetaRow("Breakout", 104, 1004, False, "JAW")
    assert rows[("Breakout", True, 1019)] == MetaRow("Breakout", 1019, 519, True, "KM")  # the last row

    # with Breakout's zip beside it: a regular trial and the last row's highscore trial
    with zipfile.ZipFile(tmp_path / "breakout.zip", "w") as zf:
        for folder, number, utid, n in (("breakout/", 104, "JAW_4", 3), ("breakout/highscore/", 1019, "KM_19", 2)):
            stem = f"{number}_{utid}_Dec-14-11-00-00"
            frames = {i: drawn_frame(i) for i in range(1, n + 1)}
            zf.writestr(folder + f"{stem}.txt", label_text(utid, n))
            zf.writestr(folder + f"{stem}.tar.bz2", tar_bytes(stem, utid, frames, list(range(1, n + 1))))
    ds = AtariHeadDataset(tmp_path)
    assert ds.games() == ["Breakout"]
    assert [(t.number, t.highscore, t.subject) for t in ds.trials("BreakoutNoFrameskip-v4")] == [
        (104, False, "JAW"), (1019, True, "KM")]
    # the meta file's frame counts (1004, 519) disagree with these 3- and 2-frame trials: said so
    with pytest.raises(DatasetError, match="trial 104 .*1004 frames.*3 rows.*3 PNGs"):
        ds.check(ds.trials("Breakout")[0])


def test_garbage_meta_file_is_shown_escaped(tmp_path):
    (tmp_path / "meta_data.csv").write_bytes(b"\x1b[31mred\x07,\x00x" + b"y" * 200 + b"\n1,2\n")
    with pytest.raises(DatasetError) as e:
        AtariHeadDataset(tmp_path)
    message = str(e.value)
    assert "unknown Atari-HEAD layout" in message and "\\x1b[31mred\\x07" in message
    assert not any(c in message for c in "\x1b\x07\x00") and "..." in message and len(message) < 400
    (tmp_path / "meta_data.csv").write_bytes(b"GameName,trial_id,subject_id,total_frame\r\n\x1b]0;x\x07,1,A,2")
    with pytest.raises(DatasetError, match=r"line 2: GameName '\\x1b\]0;x\\x07'") as e:
        AtariHeadDataset(tmp_path)
    (tmp_path / "meta_data.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="cannot read .*meta_data.csv") as e:
        AtariHeadDataset(tmp_path)
    assert "\x00" not in str(e.value)
    (tmp_path / "meta_data.csv").write_bytes(b"TrialNumber,NumberOfFrames,Game\n\x1b" + b"9" * 5000 + b"x,3,Breakout\n")
    with pytest.raises(DatasetError, match=r"line 2: bad TrialNumber/NumberOfFrames: '\\x1b999.*\.\.\. is not a number") as e:
        AtariHeadDataset(tmp_path)
    assert len(str(e.value)) < 400
