"""A command whose extra is not installed names the extra in one line, before doing anything (.ci/wheel-check runs
the commands in a venv of the core install and then the pip command that the line suggests)."""

import sys

import pytest

from helpers import run_main

MISSING = "needs {module}, which the core install leaves out: pip install 'fl-saliency[{extra}]'"


@pytest.mark.parametrize("command,module,extra,what", [
    (["report", "sweep"], "rliable", "report", "fl-saliency report"),
    (["report", "s3://bucket/sweep"], "pyarrow", "report", "fl-saliency report"),
    (["demo", "--output-dir", "demo"], "rliable", "report", "fl-saliency demo (it ends with the report)"),
    (["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir", "sweep"], "ray", "sweep", "fl-saliency sweep"),
])
def test_a_missing_extra_is_named_in_one_line(command, module, extra, what, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec gives None, import fails
    code, err = run_main(capsys, command)
    assert code == 2
    assert err.splitlines() == [f"fl-saliency: error: {what} {MISSING.format(module=module, extra=extra)}"]
    assert list(tmp_path.iterdir()) == []
