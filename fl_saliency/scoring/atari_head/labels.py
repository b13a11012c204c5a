"""A trial's labels file (``<stem>.txt``): one row per PNG, the player's action and gaze.

The header is exact; each row is ``frame_id,episode_id,score,duration(ms),unclipped_reward,
action,x0,y0,x1,y1,...`` with the gaze list unquoted (rows differ in length), the bare word
``null`` for a missing value and ``null`` as the whole gaze list of a frame without samples; the
last row is ``null`` after its frame id. Gaze is in 160x210 frame pixels and often off screen.
Line ends may be LF or CRLF, with or without a final newline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_saliency.scoring.atari_head.archive import ARCHIVE_ERRORS, open_trial_file
from fl_saliency.scoring.atari_head.meta import DatasetError, Trial, escaped

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
N_FULL_ACTIONS = 18
# The largest Atari-HEAD labels files are tens of MB (gaze at 1000 Hz); a bound keeps a small zip bomb out of memory.
MAX_LABELS_BYTES = 256 * 2**20


@dataclass
class Labels:
    """The rows of a trial's ``.txt``, row ``i`` (0-based) describing frame ``i + 1``; ``None`` = ``null``."""

    frame_numbers: np.ndarray  # (N,) int64, 1..N
    episode_ids: list[int | None]
    scores: list[int | float | None]
    durations: list[int | float | None]  # duration(ms)
    unclipped_rewards: list[int | float | None]
    actions: list[int | None]  # ALE full action set index 0..17
    gaze: list[np.ndarray]  # (k, 2) float64 (x, y); (0, 2) for null

    def __len__(self) -> int:
        return len(self.frame_numbers)


def _int_or_null(text: str) -> int | None:
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{escaped(text)} is not an integer") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{escaped(text)} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{escaped(text)} is not finite")
    return value


def _num_or_null(text: str) -> int | float | None:
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        return _float(text)


def _action(text: str) -> int | None:
    action = _int_or_null(text)
    if action is not None and not 0 <= action < N_FULL_ACTIONS:
        raise ValueError(f"{action} is not an ALE action index 0..{N_FULL_ACTIONS - 1}")
    return action


def _gaze(values: list[str]) -> np.ndarray:
    if values == ["null"]:
        return np.zeros((0, 2))
    if len(values) % 2:
        raise ValueError(f"{len(values)} values, not x,y pairs")
    return np.array([_float(v) for v in values], dtype=np.float64).reshape(-1, 2)


def parse_labels(text: str, utid: str, where: str) -> Labels:
    """Parse a labels file's text; ``where`` starts every error message (trial and file)."""
    lines = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()  # the final newline, trailing blank lines
    if not lines:
        raise DatasetError(f"{where} is empty: expected the header line {HEADER}")
    if lines[0] != HEADER:
        raise DatasetError(f"{where} line 1: header {escaped(lines[0], 200)}, expected {HEADER!r}")
    columns = {"episode_id": [], "score": [], "duration(ms)": [], "unclipped_reward": [], "action": [],
               "gaze_positions": []}
    parsers = (_int_or_null, _num_or_null, _num_or_null, _num_or_null, _action)
    for n, line in enumerate(lines[1:], start=1):
        fields = line.split(",")
        if len(fields) < 7:
            raise DatasetError(f"{where} line {n + 1}: {len(fields)} fields, expected at least 7 "
                               "(frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze...)")
        if fields[0] != f"{utid}_{n}":
            raise DatasetError(f"{where} line {n + 1}: frame id {escaped(fields[0])}, expected {utid}_{n} (row {n})")
        for (column, values), parse, text in zip(columns.items(), (*parsers, _gaze), (*fields[1:6], fields[6:])):
            try:
                values.append(parse(text))
            except ValueError as e:
                raise DatasetError(f"{where} line {n + 1} (frame {n}): bad {column}: {e}") from None
    return Labels(np.arange(1, len(lines), dtype=np.int64), *columns.values())


def read_labels(trial: Trial) -> Labels:
    """The trial's labels, read from its file or zip member."""
    where = trial.labels_location()
    with open_trial_file(trial, trial.labels_zip, trial.labels_file, "labels") as f:
        try:
            raw = f.read(MAX_LABELS_BYTES + 1)  # bounded: a small zip member can inflate to gigabytes
        except ARCHIVE_ERRORS as e:
            raise DatasetError(f"{trial.describe()}: cannot read labels {where}: {type(e).__name__}: {e}") from None
    if len(raw) > MAX_LABELS_BYTES:
        raise DatasetError(f"{trial.describe()}: labels {where} hold more than {MAX_LABELS_BYTES // 2**20} MiB, "
                           f"far more than any Atari-HEAD labels file: refused")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{trial.describe()}: labels {where} are not UTF-8 text: {e}") from None
    return parse_labels(text, trial.utid, f"{trial.describe()}: labels {where}")
