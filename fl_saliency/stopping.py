"""How a command stops when asked: Ctrl-C (SIGINT) and a scheduler's SIGTERM (SLURM, Kubernetes, Ray) alike."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handling(handler: Callable) -> Iterator[None]:
    # Python delivers signals to the main thread only; elsewhere (a thread of a Ray worker) the default stays.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class StopRequest:
    """The first SIGINT or SIGTERM asks to stop at the next safe point (``requested``); a second one aborts."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        with _handling(self):
            yield self


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_on_stop_signals() -> Iterator[None]:
    """SIGTERM interrupts as Ctrl-C does (KeyboardInterrupt), so every ``finally`` cleanup runs."""
    with _handling(_interrupt):
        yield
