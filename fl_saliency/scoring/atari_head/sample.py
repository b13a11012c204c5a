"""Write a SYNTHETIC Atari-HEAD trial in exactly the dataset's format, from real emulator frames.

This machine cannot download Atari-HEAD, so tests and demos use trials made here. The frames
are real: an ALE emulator (no sticky actions, one emulator frame per PNG) driven by a scripted
policy (Breakout: FIRE, then move the paddle under the ball; other games: random actions of the
minimal set, each held a few frames). Everything human is made up and marked as such: the
subject id is ``SY_<seed>``, release 2's meta file gets a ``Note`` column ``synthetic gaze`` and
release 4's ``subject_id`` is ``SYNTHETIC``. The gaze is a few samples per frame (2 decimals)
around a point that follows the ball in Breakout and makes a smooth random walk otherwise,
with some samples off the screen and some frames without samples (``null``).

Row ``n`` describes PNG ``n``, the screen *before* its action: ``score`` is the episode's score
shown on that screen, ``unclipped_reward`` the reward of the row's action, ``action`` its ALE
full-action-set index; after a game over the emulator is reset and ``episode_id`` increases.
The last row is ``null`` after the frame id, as in the dataset.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

from fl_saliency.scoring.atari_head.labels import HEADER
from fl_saliency.scoring.atari_head.meta import escaped
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import parse_game, rom_id
from fl_saliency.common.io import FileSet, atomic_files, locked_output_dir

LAYOUTS = ("release2", "release4")
TAR_ORDERS = ("numeric", "lexicographic", "shuffled")
RELEASE2_HEADER = ["TrialNumber", "NumberOfFrames", "Game", "Note"]
RELEASE4_HEADER = [
    "GameName", "trial_id", "subject_id", "load_trial", "highest_score", "total_frame", "total_game_play_time",
    "total_episode", "max_error", "avg_error", "low_sample_rate", "frame_averaging", "fps",
]
META_FILE = "meta_data.csv"
_MTIME = 1_550_000_000  # fixed member times: the same call writes the same bytes

# Breakout: the ball and the paddle share this colour, as do the top brick row (rows 57-62) and
# a marker in the right wall (columns 152-159); the playfield is columns 8..151.
_BREAKOUT_RED = (200, 72, 72)
_BREAKOUT_BALL_ROWS = np.r_[32:57, 63:189]
_BREAKOUT_PADDLE_ROWS = slice(189, 193)
_BREAKOUT_COLUMNS = slice(8, 152)

def utid_for(seed: int) -> str:
    return f"SY_{seed:07d}"


def stem_for(trial_number: int, seed: int) -> str:
    return f"{trial_number}_{utid_for(seed)}_Jan-01-12-00-00"


def release4_game_name(game: str, highscore: bool = False) -> str:
    """``GameName`` of release 4: snake case, ``mspacman`` but ``ms_pacman_highscore``."""
    name = rom_id(game)
    if highscore:
        return f"{name}_highscore"
    return "mspacman" if name == "ms_pacman" else name


def release2_game_name(game: str) -> str:
    return "Mspacman" if game == "MsPacman" else game


def _encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise FlSaliencyError("cv2.imencode failed to write a PNG")
    return buf.tobytes()


def _breakout_objects(screen: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """Ball centre (x, y) if visible, and the paddle's x centre (None if not found)."""
    field = screen[:, _BREAKOUT_COLUMNS]
    red = (field[..., 0] == _BREAKOUT_RED[0]) & (field[..., 1] == _BREAKOUT_RED[1]) & (field[..., 2] == _BREAKOUT_RED[2])
    ys, xs = np.nonzero(red[_BREAKOUT_BALL_ROWS])
    ball = None
    if len(xs):
        ball = np.array([xs.mean() + 0.5 + _BREAKOUT_COLUMNS.start, _BREAKOUT_BALL_ROWS[ys].mean() + 0.5])
    _, pxs = np.nonzero(red[_BREAKOUT_PADDLE_ROWS])
    paddle = pxs.mean() + 0.5 + _BREAKOUT_COLUMNS.start if len(pxs) else None
    return ball, paddle

def _fmt(value: float) -> str:
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def record_trial(game: str, n_frames: int, seed: int = 0) -> tuple[list[bytes], list[str]]:
    """PNG bytes of frames 1..N and the label rows (without the header), as ``make_sample_trial`` writes them."""
    import ale_py

    game = parse_game(game)
    if n_frames < 2:
        raise FlSaliencyError(f"a sample trial needs at least 2 frames, got {n_frames}")
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.loadROM(ale_py.roms.get_rom_path(rom_id(game)))
    minimal = [a.value for a in ale.getMinimalActionSet()]
    rng = np.random.default_rng(seed)
    utid = utid_for(seed)

    pngs: list[bytes] = []
    rows: list[str] = []
    episode, score = 0, 0
    centre = np.array([80.0, 105.0])  # where the eyes are
    walk_target = centre.copy()
    held_action, hold = 0, 0
    for n in range(1, n_frames + 1):
        screen = ale.getScreenRGB()
        pngs.append(_encode_png(screen))
        frame_id = f"{utid}_{n}"
        if n == n_frames:
            rows.append(frame_id + ",null" * 6)
            break
        # --- policy (full-action-set indices: NOOP 0, FIRE 1, RIGHT 3, LEFT 4) and gaze target
        if game == "Breakout":
            ball, paddle = _breakout_objects(screen)
            if ball is None:
                action = 1 if rng.random() < 0.3 else 0
                target = np.array([paddle if paddle is not None else 80.0, 180.0])
            else:
                target = ball
                dx = ball[0] - (paddle if paddle is not None else 80.0)
                action = 3 if dx > 4 else 4 if dx < -4 else 0
                if rng.random() < 0.1:
                    action = int(rng.choice(minimal))
        else:
            if hold <= 0:
                held_action, hold = int(rng.choice(minimal)), int(rng.integers(2, 9))
            action, hold = held_action, hold - 1
            if rng.random() < 0.05 or np.linalg.norm(walk_target - centre) < 3:
                walk_target = rng.uniform([10, 20], [150, 195])
            target = walk_target
        centre = centre + 0.35 * (target - centre) + rng.normal(0, 1.0, 2)
        # --- gaze samples
        if rng.random() < 0.06:
            gaze = "null"
        else:
            k = int(rng.integers(2, 10))
            xy = centre + rng.normal(0, 2.5, (k, 2))
            if rng.random() < 0.08:  # a glance off the screen
                xy[-1] = rng.choice([[-6.5, 100.0], [170.25, 50.0], [40.0, 215.75], [80.0, -3.5]])
            gaze = ",".join(f"{_fmt(x)},{_fmt(y)}" for x, y in xy)
        duration = int(rng.integers(40, 450))
        reward = ale.act(ale_py.Action(action))
        rows.append(f"{frame_id},{episode},{score},{duration},{reward},{action},{gaze}")
        score += reward
        if ale.game_over():
            ale.reset_game()
            episode, score = episode + 1, 0
    return pngs, rows


def _tar_bytes(stem: str, utid: str, pngs: list[bytes], order: str, seed: int) -> bytes:
    numbers = list(range(1, len(pngs) + 1))
    if order == "lexicographic":
        numbers.sort(key=str)
    elif order == "shuffled":
        np.random.default_rng(seed + 1).shuffle(numbers)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2", format=tarfile.GNU_FORMAT) as tf:
        folder = tarfile.TarInfo(stem)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, _MTIME
        tf.addfile(folder)
        for n in numbers:
            info = tarfile.TarInfo(f"{stem}/{utid}_{n}.png")
            info.size, info.mode, info.mtime = len(pngs[n - 1]), 0o644, _MTIME
            tf.addfile(info, io.BytesIO(pngs[n - 1]))
    return buf.getvalue()


def _meta_rows(path: Path, header: list[str]) -> list[list[str]]:
    """The data rows of the meta file at ``path`` ([] if there is none); refuses another layout's."""
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FlSaliencyError(f"cannot read {path}: {e}") from None
    if rows and [c.strip() for c in rows[0]] != header:
        raise FlSaliencyError(f"{path} has the columns {escaped(','.join(rows[0]))}, not this layout's "
                              f"{','.join(header)}: write the trial into another folder")
    return [r for r in rows[1:] if any(c.strip() for c in r)]


def _write_meta(files: FileSet, header: list[str], rows: list[list[str]]) -> None:
    with files.open(META_FILE) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _zip_names(zip_path: Path) -> list[str]:
    if not zip_path.exists():
        return []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise FlSaliencyError(f"cannot read {zip_path}: {e}") from None


def make_sample_trial(game: str, n_frames: int, out: str | os.PathLike, layout: str = "release2", seed: int = 0,
                      trial_number: int = 900, *, highscore: bool = False, tar_order: str = "lexicographic",
                      force: bool = False) -> Path:
    """Record ``n_frames`` emulator frames of ``game`` and write them as a synthetic trial into the dataset folder ``out``.

    ``layout``: ``release2`` (``<stem>.tar.bz2`` + ``<stem>.txt`` + ``meta_data.csv`` in ``out``) or
    ``release4`` (``<rom>.zip`` holding ``<rom>/[highscore/]<stem>.*``, ``meta_data.csv``,
    ``action_enums.txt``). Calls with other trial numbers add trials to the same folder (the meta
    file and the zip are rewritten with the new trial); a trial of the same number (whatever its
    seed) is refused before anything is written, or replaced, files and meta row, with ``force``.
    ``tar_order``: the order of the PNG members inside the tar: ``lexicographic`` (the default:
    ``1, 10, 11, ..., 2, ...``, as a tool that sorts names as text writes it; real archives are
    not in numeric order either), ``numeric`` or ``shuffled``. Returns ``out``, the dataset folder.
    """
    game = parse_game(game)
    if layout not in LAYOUTS:
        raise FlSaliencyError(f"unknown sample layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if tar_order not in TAR_ORDERS:
        raise FlSaliencyError(f"unknown tar order {tar_order!r}; choose one of {', '.join(TAR_ORDERS)}")
    if highscore and layout != "release4":
        raise FlSaliencyError("highscore trials exist in release 4 only")
    # Locked: two writers would each rewrite meta_data.csv (and the zip) without the other's trial.
    with locked_output_dir(out):
        return _write_trial(game, n_frames, Path(out), layout, seed, trial_number, highscore, tar_order, force)


def _write_trial(game: str, n_frames: int, out: Path, layout: str, seed: int, trial_number: int, highscore: bool,
                 tar_order: str, force: bool) -> Path:
    utid, stem = utid_for(seed), stem_for(trial_number, seed)
    header = RELEASE2_HEADER if layout == "release2" else RELEASE4_HEADER
    meta_rows = _meta_rows(out / META_FILE, header)
    if layout == "release2":
        same_row = lambda r: r[:1] == [str(trial_number)]
        old = sorted(p.name for p in out.glob(f"{trial_number}_*")
                     if p.is_file() and p.name.endswith((".txt", ".tar.bz2")))
    else:
        folder = rom_id(game)
        zip_path = out / f"{folder}.zip"
        inner = f"{folder}/highscore/" if highscore else f"{folder}/"
        game_name = release4_game_name(game, highscore)
        same_row = lambda r: r[:2] == [game_name, str(trial_number)]
        old = [name for name in _zip_names(zip_path)
               if name.startswith(f"{inner}{trial_number}_") and "/" not in name[len(inner):]]
    if (old or any(map(same_row, meta_rows))) and not force:
        raise FlSaliencyError(f"{out} already holds trial {trial_number}{' (highscore)' if highscore else ''} "
                              f"({', '.join(old) or 'its meta_data.csv row'}); pass --force to replace it")

    pngs, rows = record_trial(game, n_frames, seed)
    tar = _tar_bytes(stem, utid, pngs, tar_order, seed)
    labels = "\n".join([HEADER, *rows]) + "\n"
    meta_rows = [r for r in meta_rows if not same_row(r)]

    # One set, meta_data.csv last: a failure (a full disk) leaves no part of the trial, so nothing refuses a rerun.
    if layout == "release2":
        with atomic_files(out) as files:
            for name, data in ((f"{stem}.tar.bz2", tar), (f"{stem}.txt", labels.encode())):
                with files.open(name, "wb") as f:
                    f.write(data)
            _write_meta(files, header, [
                *meta_rows, [str(trial_number), str(n_frames), release2_game_name(game), "synthetic gaze"]])
        for name in old:  # the replaced trial's files under another seed's stem
            if not name.startswith(stem + "."):
                (out / name).unlink()
        return out

    new = {inner + f"{stem}.txt": labels.encode(), inner + f"{stem}.tar.bz2": tar}
    with atomic_files(out) as files:
        _write_release4(files, zip_path, new, old, folder, highscore)
        enums = out / "action_enums.txt"
        if not enums.exists():
            import ale_py

            with files.open(enums.name) as f:
                f.writelines(f"PLAYER_A_{a.name} = {a.value}\n" for a in ale_py.Action)
        scores = _episode_scores(rows)
        duration_ms = sum(int(r.split(",")[3]) for r in rows[:-1])
        _write_meta(files, header, [*meta_rows, [
            game_name, str(trial_number), "SYNTHETIC", "0", str(max(scores)), str(n_frames), str(duration_ms),
            str(len(scores)), "0.00", "0.00", "0.00%", "FALSE", "20",
        ]])
    return out


def _write_release4(files: FileSet, zip_path: Path, new: dict[str, bytes], old: list[str], folder: str,
                    highscore: bool) -> None:
    """The zip with the trial's files ``new`` added (``old``, those of the trial replaced, left out)."""
    with files.open(zip_path.name, "wb") as f, zipfile.ZipFile(f, "w") as zf:
        if zip_path.exists():
            with zipfile.ZipFile(zip_path) as previous:
                for info in previous.infolist():
                    if info.filename not in new and info.filename not in old:
                        zf.writestr(info, previous.read(info))
        for name in [f"{folder}/"] + ([f"{folder}/highscore/"] if highscore else []):
            if name not in zf.namelist():
                zf.writestr(zipfile.ZipInfo(name, date_time=(2019, 1, 1, 0, 0, 0)), b"")
        for name, data in new.items():
            info = zipfile.ZipInfo(name, date_time=(2019, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".txt") else zipfile.ZIP_STORED
            zf.writestr(info, data)


def _episode_scores(rows: list[str]) -> list[int]:
    """Final score of each episode in the label rows."""
    scores: dict[int, int] = {}
    for row in rows[:-1]:
        fields = row.split(",")
        episode, score, reward = int(fields[1]), int(fields[2]), int(fields[4])
        scores[episode] = score + reward
    return list(scores.values()) or [0]
