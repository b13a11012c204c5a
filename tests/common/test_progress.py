"""progress_bar: the progress of train, evaluate and saliency on stderr."""

import io
import sys

from fl_saliency.common.progress import LOG_INTERVAL, progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_bar(monkeypatch, stderr, **kwargs):
    monkeypatch.setattr(sys, "stderr", stderr)
    bar = progress_bar(3, "trial", **kwargs)
    for _ in range(3):
        bar.update()
    bar.close()
    return bar, stderr.getvalue()


def test_without_a_terminal_each_report_is_a_line_of_its_own(monkeypatch):
    bar, text = run_bar(monkeypatch, io.StringIO())
    assert bar.mininterval == LOG_INTERVAL == 30.0  # a line every 30 s at most, not a redraw per update
    assert "\r" not in text and text.endswith("\n")
    first, last = text.splitlines()  # the start and the end: 3 quick updates come within 30 s
    assert first.startswith("  0%|") and " 0/3 [" in first and first.endswith("?trial/s]")
    assert last.startswith("100%|##########| 3/3 [") and last.endswith("trial/s]")


def test_on_a_terminal_the_bar_is_redrawn_in_place(monkeypatch):
    bar, text = run_bar(monkeypatch, Terminal())
    assert bar.mininterval == 0.1
    assert text.count("\n") == 1 and text.count("\r") >= 2  # redraws, one final newline


def test_not_shown_writes_nothing(monkeypatch):
    _, text = run_bar(monkeypatch, io.StringIO(), show=False)
    assert text == ""
