"""Atari-HEAD as downloaded (``docs/spec/atari-head-format.md``), read without extracting.

``AtariHeadDataset(root)`` joins the three parts: the trials and where their files are
(``meta.py``, both releases and their partly extracted layouts), the labels (``labels.py``) and
the frames streamed out of the archives (``archive.py``). ``check_frame_counts`` is the one
check that a trial's meta file, label rows and PNGs agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from fl_saliency.scoring.atari_head import archive
from fl_saliency.scoring.atari_head.labels import HEADER, Labels, read_labels
from fl_saliency.scoring.atari_head.meta import DatasetError, TrialIndex, Trial
from fl_saliency.common.errors import FlSaliencyError

__all__ = ["AtariHeadDataset", "DatasetError", "HEADER", "Labels", "Trial", "check_frame_counts"]


def check_frame_counts(trial: Trial, n_pngs: int, n_rows: int) -> None:
    """meta's frame count (where it gives one) == number of label rows == number of PNGs."""
    if n_rows != n_pngs or (trial.n_frames is not None and trial.n_frames != n_rows):
        meta = "no frame count" if trial.n_frames is None else f"{trial.n_frames} frames"
        raise DatasetError(
            f"{trial.describe()}: frame counts disagree: meta_data.csv says {meta}, labels "
            f"{trial.labels_location()} have {n_rows} rows, frames {trial.frames_location()} hold {n_pngs} PNGs"
        )


class AtariHeadDataset:
    """An Atari-HEAD release 2 or 4 folder (see ``meta.py`` for the layouts)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"Atari-HEAD folder {self.root} does not exist")
        if not self.root.is_dir():
            raise DatasetError(f"Atari-HEAD folder {self.root} is not a folder")
        self._index = TrialIndex(self.root)
        self.release = self._index.release

    def games(self) -> list[str]:
        """CamelCase games that have at least one trial with files in this folder."""
        return sorted({row.game for row in self._index.rows.values() if self._index.trial(row) is not None})

    def trials(self, game: str) -> list[Trial]:
        """Trials of ``game`` (CamelCase or a gym id) whose files are present, by number (highscore last)."""
        from fl_saliency.envs.games import parse_game

        try:
            name = parse_game(game)
        except FlSaliencyError as e:
            raise DatasetError(str(e)) from None
        trials = [t for row in self._index.rows.values()
                  if row.game == name and (t := self._index.trial(row)) is not None]
        if not trials:
            raise DatasetError(
                f"no Atari-HEAD trials for game {name} in {self.root}; it has: {', '.join(self.games()) or 'none'}"
            )
        return sorted(trials, key=lambda t: (t.highscore, t.number))

    def labels(self, trial: Trial) -> Labels:
        return read_labels(trial)

    def frames(self, trial: Trial, *, buffer_bytes: int = archive.DEFAULT_BUFFER_BYTES) -> Iterator[np.ndarray]:
        """Frames 1..N as (210, 160, 3) uint8 RGB, streamed (``archive.frames``)."""
        return archive.frames(trial, buffer_bytes=buffer_bytes)

    def check(self, trial: Trial) -> None:
        """Read the trial's labels and count its PNGs without decoding them: DatasetError unless
        they and the meta file agree (``check_frame_counts``)."""
        rows = len(self.labels(trial))
        check_frame_counts(trial, archive.count_frames(trial), rows)
