import os
import threading

import pytest

from fl_saliency.io import atomic_write, atomic_write_json, read_ahead


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
