"""Progress bars of the long commands on stderr: redrawn in place on a terminal; without one (a batch job's log
file) a line of its own every 30 s."""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between the lines written without a terminal


class _Lines:
    """What tqdm writes, with each redraw (``\\r``) turned into a line of its own, its padding dropped."""

    def __init__(self, file: IO):
        self.file, self.open = file, False

    def write(self, text: str) -> None:
        for i, part in enumerate(text.split("\r")):
            if i and self.open:
                self.file.write("\n")
                self.open = False
            part = part if part.endswith("\n") else part.rstrip(" ")
            if part:
                self.file.write(part)
                self.open = not part.endswith("\n")

    def flush(self) -> None:
        self.file.flush()


def progress_bar(total: int, unit: str, show: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar over ``total`` ``unit``s on stderr; ``show`` False: nothing is shown."""
    terminal = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit=unit, disable=not show, dynamic_ncols=True,
                mininterval=0.1 if terminal else LOG_INTERVAL, file=sys.stderr if terminal else _Lines(sys.stderr))
