"""Every command that writes an output folder: a folder that cannot be made is one line with nothing written, and a
folder another process writes into is refused in one line naming it."""

import os
import re

import pytest

from helpers import hold_lock, run_main

TINY = ["--num-env", "2", "--nsteps", "16", "--nminibatches", "2", "--noptepochs", "1", "--num-timesteps", "32",
        "--device", "cpu"]


def command(name, out, experiment):
    """The command line of each command that writes ``out`` (evaluate's model is real: it loads before the lock)."""
    return {
        "train": ["train", "--output-dir", str(out), *TINY],
        "train --force": ["train", "--output-dir", str(out), "--force", *TINY],
        "train --resume": ["train", "--output-dir", str(out), "--resume", "--device", "cpu"],
        "evaluate": ["evaluate", "--experiment-dir", str(experiment), "--output-dir", str(out), "--device", "cpu"],
        "saliency": ["saliency", "--experiment-dir", str(experiment), "--atari-head-dir", str(experiment),
                     "--output-dir", str(out)],
        "faithfulness": ["faithfulness", "--experiment-dir", str(experiment), "--atari-head-dir", str(experiment),
                         "--output-dir", str(out)],
        "make-sample-trial": ["make-sample-trial", "--out", str(out), "--frames", "2"],
    }[name]


COMMANDS = ["train", "train --force", "train --resume", "evaluate", "saliency", "faithfulness", "make-sample-trial"]


def tree(folder):
    return sorted((p.relative_to(folder).as_posix(), p.is_symlink()) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("target, message", [
    ("a" * 300, r"output folder /.{99}\.\.\. is too long for the file system \(a name of 300 bytes; it allows 255 "
                r"bytes a name, 4096 the path\)"),
    ("deep/" + "b/" * 2100, r"output folder /.{99}\.\.\. is too long for the file system \(\d{4} bytes in all; it "
                            r"allows 255 bytes a name, 4096 the path\)"),
    ("loop", r"output folder .*/loop is a symbolic link that leads nowhere \(a loop or a missing target\); name a "
             r"folder"),
    ("loop/sub", r"cannot write to output folder .*/loop/sub: Too many levels of symbolic links"),
    ("file/sub", r"output folder .*/file/sub is a file \(or lies under one\); name a folder"),
    ("/proc/fl-saliency-out", r"cannot write to output folder /proc/fl-saliency-out: \w.*"),  # read-only even for root
], ids=["long-name", "long-path", "symlink-loop", "under-a-loop", "under-a-file", "read-only"])
def test_an_output_folder_that_cannot_be_made_is_one_line_and_nothing_is_written(tmp_path, capsys, experiment, name,
                                                                                 target, message):
    work = tmp_path / "work"
    work.mkdir()
    (work / "loop").symlink_to("loop")
    (work / "file").write_text("x")
    before = tree(work)
    code, stderr = run_main(capsys, command(name, work / target, experiment))
    assert code == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith("fl-saliency: error: ")
    assert re.fullmatch(message, stderr.strip().removeprefix("fl-saliency: error: "))
    assert tree(work) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_a_folder_another_process_writes_is_refused_naming_it(tmp_path, capsys, experiment, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("the holder's")
    holder = hold_lock(out)
    try:
        code, stderr = run_main(capsys, command(name, out, experiment))
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and stderr == (f"fl-saliency: error: {out} is being written by process {holder.pid} (-c {out} -); "
                                    f"wait for it to end (or stop it), then run the command again\n")
    assert sorted(os.listdir(out)) == [".fl-saliency.lock.tmp", "results.json"]  # the killed holder's file, unlocked
    assert (out / "results.json").read_text() == "the holder's"
