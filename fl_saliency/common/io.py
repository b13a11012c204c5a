"""File I/O helpers: output folders and their lock, atomic writes (every file a command writes appears whole or
not at all, and the files of one set all or none), removing a run's files, reading ahead."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import queue
import re
import shlex
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Iterator, TypeVar

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.stopping import check_stop

T = TypeVar("T")

# The names of files (and working folders) while they are written: atomic_write's, the video's; left behind only
# by a killed process.
TEMPORARY_PATTERNS = (".*.tmp", ".*.tmp.*")
# An output folder's lock while a command writes into it. Named as a temporary, so that what skips those (storage
# uploads) skips it; the removal of temporaries leaves it alone.
LOCK_FILE = ".fl-saliency.lock.tmp"

_UMASK = os.umask(0)
os.umask(_UMASK)


class FileSet:
    """Files of one folder that belong together, each written under a temporary name (see ``atomic_files``)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.staged: list[tuple[str, Path]] = []  # (temporary, final) in the order written

    @contextlib.contextmanager
    def open(self, name: str, mode: str = "w") -> Iterator[IO]:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".tmp")
        self.staged.append((tmp, self.folder / name))
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would outlive the rename
        try:
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            if is_disk_full(exc) and exc.filename is None:  # a write names no file: name the one it was for
                exc.filename = str(self.folder / name)
            raise

    def write_json(self, name: str, obj) -> None:
        with self.open(name) as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike) -> Iterator[FileSet]:
    """Write several files of ``folder`` as one set: all appear, or (on any error) none and no temporary.

    They are renamed into place once the block has written them all, in the order written: a command that
    refuses to overwrite its outputs should write the file it looks for last.
    """
    files = FileSet(Path(folder))
    files.folder.mkdir(parents=True, exist_ok=True)
    try:
        yield files
        check_stop()  # an interrupted command publishes nothing more
        for tmp, path in files.staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in files.staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    with atomic_files(path.parent) as files, files.open(path.name, mode) as f:
        yield f


def output_dir_error(path: Path, exc: OSError) -> FlSaliencyError:
    """The one line for an output folder that cannot be made or written to."""
    if isinstance(exc, FileExistsError) and os.path.islink(path):
        return FlSaliencyError(f"output folder {path} is a symbolic link that leads nowhere (a loop or a missing "
                               f"target); name a folder")
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return FlSaliencyError(f"output folder {path} is a file (or lies under one); name a folder")
    if exc.errno == errno.ENAMETOOLONG:
        text = str(path)
        longest = max(len(os.fsencode(part)) for part in path.parts)
        size = f"a name of {longest} bytes" if longest > 255 else f"{len(os.fsencode(text))} bytes in all"
        return FlSaliencyError(f"output folder {text if len(text) <= 120 else text[:100] + '...'} is too long for the "
                               f"file system ({size}; it allows 255 bytes a name, 4096 the path)")
    return FlSaliencyError(f"cannot write to output folder {path}: {exc.strerror or exc}")


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if needed and check that files can be written in it (one line if not)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise output_dir_error(path, exc) from None
    return path


_held_locks: set[int] = set()


def _drop_inherited_locks() -> None:
    # A forked child (an env worker) would otherwise keep the lock after the command that took it is killed.
    for fd in _held_locks:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_locks.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def _lock_holder(fd: int) -> str:
    """'process <pid> (<command>)' as the holder wrote it into the lock file (it writes just after locking)."""
    for _ in range(20):
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if text:
            pid, _, command = text.partition(" ")
            return f"process {pid} ({command})"
        time.sleep(0.05)
    return "another process"


def _created_folders(path: Path) -> list[Path]:
    """The folders that creating ``path`` makes, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


@contextlib.contextmanager
def locked_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create the output folder ``path`` if needed and hold its lock for the block: another command that writes
    into it meanwhile (any process) is refused in one line naming this one.

    An OS lock (``flock``): the kernel releases it when the process ends, however it ends, so a killed command
    leaves no stale lock. Folders made here that stay empty (the command failed before writing) are removed again.
    """
    path = Path(path)
    try:
        created = _created_folders(path)
    except OSError as exc:
        raise output_dir_error(path, exc) from None
    ensure_output_dir(path)
    lock = path / LOCK_FILE
    try:
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(fd)
                os.close(fd)
                raise FlSaliencyError(f"{path} is being written by {holder}; wait for it to end (or stop it), "
                                      f"then run the command again") from None
            # Its last holder may have removed the file between our open and lock: lock the one in place.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    break
            os.close(fd)
    except OSError as exc:
        raise output_dir_error(path, exc) from None
    command = " ".join(shlex.quote(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]]).replace("\n", " ")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
    _held_locks.add(fd)
    try:
        yield path
    finally:
        _held_locks.discard(fd)
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still locked: the next command locks a file of its own
        os.close(fd)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def matching(folder: str | os.PathLike, patterns: Iterable[str]) -> list[Path]:
    """The paths in ``folder`` that match the glob ``patterns`` (which may name subfolders: ``logs/*.csv``), sorted;
    a held lock is not among them."""
    folder = Path(folder)
    return sorted({path for pattern in patterns for path in folder.glob(pattern) if path.name != LOCK_FILE})


def remove_matching(folder: str | os.PathLike, patterns: Iterable[str]) -> list[str]:
    """Delete the files (and temporary folders) in ``folder`` that match the glob ``patterns``, then the subfolders
    that this leaves empty; returns the paths removed, relative to ``folder``. Nothing else is touched."""
    folder = Path(folder)
    removed = []
    for path in matching(folder, patterns):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.relative_to(folder).as_posix())
        for parent in path.relative_to(folder).parents[:-1]:
            try:
                (folder / parent).rmdir()
            except OSError:  # not empty: it holds what is not ours
                break
    return removed


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    with atomic_files(path.parent) as files:
        files.write_json(path.name, obj)


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


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(location: str | os.PathLike) -> bool:
    return bool(_URI.match(str(location)))


def reject_uri(location: str | os.PathLike, flag: str) -> None:
    """One line for a URI where only a local folder is taken (Path would turn ``file:///x`` into ``file:/x``)."""
    if is_uri(location):
        raise FlSaliencyError(f"{flag} takes a local folder, not the URI {location} (storage URIs are for "
                              f"`fl-saliency sweep` and `fl-saliency report`)")
