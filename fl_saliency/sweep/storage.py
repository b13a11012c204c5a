"""Where a sweep's runs live: a local (or shared) folder, or any file system URI that ``pyarrow.fs`` opens.

``s3://bucket/prefix`` (``?endpoint_override=host:port&scheme=http`` for an S3-compatible server), ``gs://...``,
``file:///...``: the same file system layer as Ray Train's ``storage_path``. A job on a cluster node works in the
node's scratch folder and mirrors its run folder to the storage after every stage (``download`` before it starts,
``upload`` after each checkpoint, evaluation and scoring). Each file is written whole or not at all: a temporary
name and a rename on file systems that rename (local, shared), one PUT that publishes the object on close on
object stores; a job killed halfway leaves the storage with its last complete files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import TEMPORARY_PATTERNS, atomic_write, is_uri

SCRATCH_ENV = "FL_SALIENCY_SCRATCH"
COPY_BUFFER_BYTES = 1 << 20


def scratch_root() -> Path:
    """This node's working folder for jobs whose storage is a URI: $FL_SALIENCY_SCRATCH, else the temp folder."""
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "fl-saliency-scratch")


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _is_temporary(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in TEMPORARY_PATTERNS)


class Storage:
    """A sweep's root: ``location`` is a local path or a URI; paths below it are '/'-separated and relative."""

    def __init__(self, location: str | os.PathLike):
        import pyarrow.fs as pafs

        self.location = str(location).rstrip("/") if is_uri(location) else str(Path(location).absolute())
        if is_uri(location):
            try:
                self.fs, self.root = pafs.FileSystem.from_uri(self.location)
            except Exception as exc:  # pyarrow's ArrowInvalid / OSError; its message names the problem
                raise FlSaliencyError(f"storage {self.location}: {str(exc).splitlines()[0]}") from None
        else:
            self.fs, self.root = pafs.LocalFileSystem(), self.location
        self.root = self.root.rstrip("/")
        self._renames = self.fs.type_name == "local"
        self._uploaded: dict[str, tuple[int, int]] = {}

    @property
    def is_remote(self) -> bool:
        """Jobs work in a node's scratch folder and mirror to the storage (any URI; file:// included)."""
        return is_uri(self.location)

    def __repr__(self) -> str:
        return f"Storage({self.location!r})"

    def uri(self, relative: str = "") -> str:
        return f"{self.location}/{relative}" if relative else self.location

    def _path(self, relative: str) -> str:
        return _join(self.root, relative)

    def _io(self, what: str, relative: str, call, *args):
        try:
            return call(*args)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FlSaliencyError(f"cannot {what} {self.uri(relative)}: {str(exc).splitlines()[0]}") from None

    def files(self, relative: str = "") -> dict[str, int]:
        """The files under ``relative`` (paths relative to it, with sizes), temporaries left out; {} if none."""
        import pyarrow.fs as pafs

        base = self._path(relative).rstrip("/")
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        infos = self._io("list", relative, self.fs.get_file_info, selector)
        return {info.path[len(base) + 1:]: info.size for info in infos
                if info.type == pafs.FileType.File and not _is_temporary(info.base_name)}

    def exists(self, relative: str) -> bool:
        import pyarrow.fs as pafs

        return self._io("look up", relative, self.fs.get_file_info, self._path(relative)).type == pafs.FileType.File

    def read_bytes(self, relative: str) -> bytes:
        with self._io("read", relative, self.fs.open_input_stream, self._path(relative)) as stream:
            return stream.read()

    def write_bytes(self, relative: str, data: bytes) -> None:
        self._write(relative, lambda out: out.write(data))

    def _write(self, relative: str, fill) -> None:
        target = self._path(relative)
        parent = target.rsplit("/", 1)[0]
        self._io("create", relative, self.fs.create_dir, parent)
        staging = f"{parent}/.{target.rsplit('/', 1)[1]}.{uuid.uuid4().hex[:8]}.tmp" if self._renames else target
        try:
            with self._io("write", relative, self.fs.open_output_stream, staging) as out:
                fill(out)
            if self._renames:
                self._io("write", relative, self.fs.move, staging, target)
        except BaseException:
            if self._renames:
                try:
                    self.fs.delete_file(staging)
                except OSError:
                    pass
            raise

    def upload(self, local: Path, relative: str = "", last: tuple[str, ...] = (), mirror: bool = True) -> None:
        """Copy the folder ``local`` to ``relative``: new and changed files, then ``last`` (names written after
        everything they depend on, e.g. the checkpoint after its logs); with ``mirror``, then remove the files
        gone locally."""
        local = Path(local)
        present = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*"))
                   if p.is_file() and not _is_temporary(p.name)}
        order = sorted(present, key=lambda name: (Path(name).name in last, name))
        for name in order:
            path, key = present[name], _join(relative, name)
            stat = path.stat()
            if self._uploaded.get(key) == (stat.st_size, stat.st_mtime_ns):
                continue
            with open(path, "rb") as source:
                self._write(key, lambda out: shutil.copyfileobj(source, out, COPY_BUFFER_BYTES))
            self._uploaded[key] = (stat.st_size, stat.st_mtime_ns)
        if not mirror:
            return
        for name in set(self.files(relative)) - set(present):
            key = _join(relative, name)
            self._io("delete", key, self.fs.delete_file, self._path(key))
            self._uploaded.pop(key, None)

    def download(self, relative: str, local: Path, skip: tuple[str, ...] = ()) -> list[str]:
        """Copy the files under ``relative`` into the folder ``local`` (each atomically); returns their names.
        Names matching a pattern of ``skip`` stay behind."""
        names = [name for name in sorted(self.files(relative))
                 if not any(fnmatch.fnmatch(Path(name).name, pattern) for pattern in skip)]
        for name in names:
            key = _join(relative, name)
            with self._io("read", key, self.fs.open_input_stream, self._path(key)) as stream, \
                    atomic_write(Path(local) / name, "wb") as out:
                shutil.copyfileobj(stream, out, COPY_BUFFER_BYTES)
            stat = (Path(local) / name).stat()
            self._uploaded[key] = (stat.st_size, stat.st_mtime_ns)
        return names


def scratch_folder(location: str, relative: str) -> Path:
    """This node's working copy of ``relative`` in the storage at ``location``: one per storage, so sweeps never
    share one."""
    digest = hashlib.sha1(location.rstrip("/").encode()).hexdigest()[:12]
    return scratch_root() / digest / relative
