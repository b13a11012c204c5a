import contextlib
import os
import signal
import threading

import pytest

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import (LOCK_FILE, TEMPORARY_PATTERNS, atomic_files, atomic_write, atomic_write_json,
                            ensure_output_dir, locked_output_dir, read_ahead, remove_matching)
from helpers import hold_lock



def test_atomic_write_leaves_no_partial_file_on_error(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    atomic_write_json({"a": 1}, path)
    assert path.read_text() == '{\n  "a": 1\n}\n'


def test_atomic_files_appear_all_together_or_not_at_all(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text("old a")
    with pytest.raises(RuntimeError):
        with atomic_files(tmp_path) as files:
            files.write_json("a.json", [1])
            with files.open("b.bin", "wb") as f:
                f.write(b"whole")
            # Both written, neither in place yet: only their temporaries beside the old a.json.
            temporaries = sorted(n for n in os.listdir(tmp_path) if n != "a.json")
            assert [n[:7] for n in temporaries] == [".a.json", ".b.bin."] and all(n.endswith(".tmp") for n in temporaries)
            assert (tmp_path / "a.json").read_text() == "old a"
            raise RuntimeError("the third file cannot be made")
    assert os.listdir(tmp_path) == ["a.json"] and (tmp_path / "a.json").read_text() == "old a"

    renamed = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), replace(src, dst)))
    with atomic_files(tmp_path / "new") as files:
        with files.open("z.csv") as f:
            f.write("x,y\n")
        files.write_json("a.json", {"k": None})
    assert renamed == ["z.csv", "a.json"]  # in the order written
    assert sorted(os.listdir(tmp_path / "new")) == ["a.json", "z.csv"]
    assert (tmp_path / "new" / "a.json").read_text() == '{\n  "k": null\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new" / "z.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_read_ahead_keeps_order_and_runs_in_another_thread():
    threads = set()

    def items():
        for i in range(500):
            threads.add(threading.get_ident())
            yield i

    assert list(read_ahead(items(), depth=8)) == list(range(500))
    assert threads == {next(iter(threads))} and threading.get_ident() not in threads


def test_read_ahead_hands_over_the_producers_exception():
    def items():
        yield 1
        raise ValueError("truncated archive")

    got = []
    with pytest.raises(ValueError, match="truncated archive"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_read_ahead_stops_its_thread_when_the_consumer_stops_early():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    stream = read_ahead(items(), depth=4)
    assert next(stream) == 0
    stream.close()
    assert len(produced) < 100


def test_ensure_output_dir_creates_folders_and_refuses_files_in_one_line(tmp_path):
    assert ensure_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write test leaves nothing
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(FlSaliencyError, match=r"^output folder .* is a file \(or lies under one\); name a folder$"):
            ensure_output_dir(target)


def test_ensure_output_dir_refuses_a_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/fl-saliency-out"  # root may write anywhere else
    else:
        (tmp_path / "locked").mkdir(mode=0o500)
        target = tmp_path / "locked" / "out"
    with pytest.raises(FlSaliencyError, match=r"^cannot write to output folder .*: \w"):
        ensure_output_dir(target)


def test_remove_matching_removes_files_and_folders_and_names_them(tmp_path):
    for name in ("results.json", ".results.json.x1.tmp", ".perception.mkv.tmp.mkv", "keep.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".perception.ab.tmp").mkdir()
    (tmp_path / ".perception.ab.tmp" / "maps.f16").write_text("x")
    removed = remove_matching(tmp_path, ("results.json", *TEMPORARY_PATTERNS, "absent.*"))
    assert removed == [".perception.ab.tmp", ".perception.mkv.tmp.mkv", ".results.json.x1.tmp", "results.json"]
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_remove_matching_keeps_other_files_and_removes_only_the_folders_it_empties(tmp_path):
    for name in ("logs/progress.csv", "logs/mine.txt", "tb/events.out.tfevents.1", "eval/results.json", "eval/keep.txt",
                 "videos/a.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = remove_matching(tmp_path, ("logs/progress.csv", "tb/events.out.tfevents.*", "eval/results.json",
                                         "videos/b.mp4"))
    assert removed == ["eval/results.json", "logs/progress.csv", "tb/events.out.tfevents.1"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "eval", "eval/keep.txt", "logs", "logs/mine.txt", "videos", "videos/a.mp4"]


@pytest.mark.parametrize("fork", [False, True], ids=["alone", "with-a-forked-child"])
def test_lock_refuses_a_second_writer_naming_the_holder_and_dies_with_it(tmp_path, fork):
    out = tmp_path / "out"
    holder = hold_lock(out, fork)
    try:
        with pytest.raises(FlSaliencyError) as refused:
            with locked_output_dir(out):
                pass
        assert str(refused.value) == (f"{out} is being written by process {holder.pid} (-c {out} "
                                      f"{'fork' if fork else '-'}); wait for it to end (or stop it), then run the "
                                      f"command again")
        holder.kill()  # SIGKILL: no cleanup runs
        holder.wait()
        with locked_output_dir(out):  # at once, though the forked child still runs
            assert (out / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)  # the forked child
    assert os.listdir(out) == []  # the lock file goes with the lock


def test_lock_removes_the_folders_it_made_when_nothing_was_written(tmp_path):
    with pytest.raises(RuntimeError):
        with locked_output_dir(tmp_path / "a" / "b"):
            raise RuntimeError("the command failed before writing")
    assert os.listdir(tmp_path) == []
    with locked_output_dir(tmp_path / "a" / "b") as out:
        (out / "results.json").write_text("{}")
    assert os.listdir(tmp_path / "a" / "b") == ["results.json"]
