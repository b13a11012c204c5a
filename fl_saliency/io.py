"""File I/O helpers: output folders, atomic writes (every file a command writes appears whole or not at all),
removing a run's files, reading ahead."""

from __future__ import annotations

import contextlib
import json
import errno
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterable, Iterator, TypeVar

from fl_saliency.errors import FlSaliencyError
from fl_saliency.stopping import check_stop

T = TypeVar("T")

# The names of files (and working folders) while they are written: atomic_write's, the video's; left behind only
# by a killed process.
TEMPORARY_PATTERNS = (".*.tmp", ".*.tmp.*")

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would outlive the rename
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        check_stop()  # an interrupted command publishes nothing more
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if needed and check that files can be written in it (one line if not)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise FlSaliencyError(f"output folder {path} is a file (or lies under one); name a folder") from None
    except OSError as exc:
        raise FlSaliencyError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def remove_matching(folder: str | os.PathLike, patterns: Iterable[str]) -> list[str]:
    """Delete the files and folders in ``folder`` whose names match the glob ``patterns``; returns their names."""
    folder = Path(folder)
    removed = []
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def read_ahead(items: Iterable[T], depth: int = 64) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` ahead of the consumer.

    For streams whose work releases the GIL (bz2, PNG decoding): they then run on another core
    while the consumer computes. Exceptions reach the consumer where the item would have been.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((done, None))
        except BaseException as exc:  # handed over to the consumer
            buffer.put((done, exc))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
