"""How a command stops when asked: Ctrl-C (SIGINT) and a scheduler's SIGTERM (SLURM, Kubernetes, Ray) alike."""

from __future__ import annotations

import contextlib
import signal
import sys
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


_requested = False
_in_command = False


def _interrupt(signum, frame):
    global _requested
    _requested = True
    raise KeyboardInterrupt


def check_stop() -> None:
    """KeyboardInterrupt if a stop signal came, also one whose KeyboardInterrupt Python dropped: raised inside a
    finaliser or a weakref callback, an exception is only printed ("Exception ignored in ...") and the work goes on."""
    if _requested:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_on_stop_signals() -> Iterator[None]:
    """SIGTERM interrupts as Ctrl-C does (KeyboardInterrupt), so every ``finally`` cleanup runs."""
    with _handling(_interrupt):
        yield


def _drop_swallowed_interrupt(previous_hook: Callable) -> Callable:
    def hook(unraisable) -> None:
        if not (_requested and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    return hook


@contextlib.contextmanager
def stoppable_command(last: bool = False) -> Iterator[None]:
    """Around a whole command (cli.main): SIGINT and SIGTERM interrupt it (KeyboardInterrupt). Should Python drop
    that exception (see check_stop), the command's next atomic write, or its end, raises it instead, and nothing
    is printed for the dropped one. With ``last`` (the command is what the process runs), both signals are ignored
    once it has ended: the exit status says what was done, and Python's exit (finalisers, C libraries' exit
    handlers) is not cut short; otherwise the handlers before it are restored."""
    global _requested, _in_command
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested, _in_command = False, True
    previous_hook, sys.unraisablehook = sys.unraisablehook, _drop_swallowed_interrupt(sys.unraisablehook)
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
    try:
        yield
        check_stop()
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # both at once: none lands between the two
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_IGN if last else old)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        sys.unraisablehook = previous_hook
        _requested = _in_command = False


def reclaim_stop_signals() -> None:
    """Within stoppable_command, put its handlers back in place of those a library installed over them (ray.init:
    a Python SIGTERM handler that exits with status 15 and no word, a C one that dumps a stack and aborts)."""
    if _in_command and threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _interrupt)
