"""Reading a trial's files where they lie (a file, a zip member), and streaming its frames.

Frames are streamed: the ``.tar.bz2`` (inside the zip for release 4) is read front to back with
tarfile's streaming mode, one member at a time, nothing written to disk; an extracted folder of
PNGs is read file by file.

Member order. PNG ``n`` must come out as frame ``n``, but a tar lists its members in whatever
order the program that wrote it walked the folder: ``tar -c`` follows the file system's
directory order (hash order on ext4 and APFS, sorted-as-text on HFS+), Python's tarfile sorts as
text (``1, 10, 100, 1000, 1001, ...``). Atari-HEAD's own tools re-sort frame ids numerically
after reading a tar, which says the archives are not in numeric order. A stream cannot seek, so
``frames`` makes as many passes over the archive as it needs, each one yielding every frame it
can in order and keeping the *compressed* PNG bytes (2-10 KB each, not 100 KB decoded frames)
of out-of-order members in a buffer of at most ``buffer_bytes`` (64 MiB by default), dropping
the highest-numbered ones first when it is full. Memory is thus bounded by ``buffer_bytes``
plus one decoded frame and the bz2 decompressor, whatever the trial's length or order; a
numerically ordered archive takes one pass with an empty buffer, and a shuffled one of up to
``buffer_bytes`` of PNGs (about 10,000-30,000 Atari frames) also takes one pass, a bigger one a
few (each pass is one more bz2 decompression of the archive). The first pass also checks that
the PNGs are numbered 1..N without gaps or duplicates.

Truncation. ``tarfile``'s own ``'r|bz2'`` stops silently when a truncated bz2 stream happens to
end inside a tar header, so the stream is read as ``'r|'`` over ``bz2.BZ2File`` (the same
streaming decompression, which raises on a missing end-of-stream marker), drained to its end.
"""

from __future__ import annotations

import bz2
import contextlib
import heapq
import os
import re
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterator

import cv2
import numpy as np

from fl_saliency.scoring.atari_head.meta import DatasetError, Trial, location

FRAME_SHAPE = (210, 160, 3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A 160x210 RGB frame is 100 KB uncompressed (Atari-HEAD's PNGs are 2-10 KB): a file far larger is no frame.
MAX_PNG_BYTES = 4 * 2**20
DEFAULT_BUFFER_BYTES = 64 * 2**20
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile, zlib.error, ValueError)


@contextlib.contextmanager
def open_trial_file(trial: Trial, zip_path: str | None, name: str | None, what: str) -> Iterator[IO[bytes]]:
    """One of the trial's files (``what``: labels or frames) opened for reading bytes."""
    if name is None:
        raise DatasetError(f"{trial.describe()}: its {what} file is missing")
    stack = contextlib.ExitStack()
    try:
        if zip_path:
            zf = stack.enter_context(zipfile.ZipFile(zip_path))
            f = stack.enter_context(zf.open(name))
        else:
            f = stack.enter_context(open(name, "rb"))
    except (*ARCHIVE_ERRORS, KeyError) as e:
        stack.close()
        raise DatasetError(f"{trial.describe()}: cannot open {what} {location(zip_path, name)}: "
                           f"{type(e).__name__}: {e}") from None
    with stack:
        yield f


@contextlib.contextmanager
def _open_tar(trial: Trial) -> Iterator[tuple[tarfile.TarFile, IO[bytes]]]:
    with open_trial_file(trial, trial.frames_zip, trial.frames_file, "frames") as raw:
        with bz2.BZ2File(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
            yield tf, stream


def _png_pattern(trial: Trial) -> re.Pattern:
    return re.compile(rf"^{re.escape(trial.utid)}_(\d+)\.png$")


def _members(trial: Trial, tf: tarfile.TarFile, stream: IO[bytes]) -> Iterator[tuple[int, tarfile.TarInfo]]:
    """(frame number, member) for each PNG of the archive, in archive order; then drains the stream."""
    pattern = _png_pattern(trial)
    while (member := tf.next()) is not None:
        tf.members.clear()  # tarfile keeps every header it read; we never look back
        base = member.name.rstrip("/").rsplit("/", 1)[-1]
        if not member.isfile() or base.startswith("._") or not base.lower().endswith(".png"):
            continue  # the folder itself, macOS AppleDouble files, stray non-PNG files
        m = pattern.match(base)
        if not m:
            raise DatasetError(f"{trial.describe()}: frames {trial.frames_location()} holds {member.name!r}, "
                               f"expected PNGs named {trial.utid}_<n>.png")
        yield int(m.group(1)), member
    while stream.read(1 << 16):  # to the bz2 end-of-stream marker: raises if truncated
        pass


def _bad_frame(trial: Trial, n: int, what: str) -> DatasetError:
    return DatasetError(f"{trial.describe()}: frame {n} in {trial.frames_location()} is {what}, expected a 160x210 RGB PNG")


def _check_png_size(trial: Trial, n: int, nbytes: int) -> None:
    if nbytes > MAX_PNG_BYTES:
        raise _bad_frame(trial, n, f"a file of {nbytes:,} bytes")


def _decode(trial: Trial, data: bytes, n: int) -> np.ndarray:
    # The size from the PNG's header (IHDR, the first chunk) before decoding: a small file can declare a huge image.
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        raise _bad_frame(trial, n, "not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    if (height, width) != FRAME_SHAPE[:2]:
        raise _bad_frame(trial, n, f"a {width}x{height} image")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise _bad_frame(trial, n, "undecodable")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_numbers(trial: Trial, numbers: set[int], count: int) -> int:
    """The number of PNGs, after checking they are numbered 1..N once each."""
    where = f"{trial.describe()}: frames {trial.frames_location()}"
    if count != len(numbers):
        raise DatasetError(f"{where} has duplicate PNGs")
    if not numbers:
        raise DatasetError(f"{where} holds no PNG")
    if 0 in numbers:
        raise DatasetError(f"{where} has a PNG numbered 0; numbering starts at 1")
    missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
    if missing:
        raise DatasetError(f"{where} has PNGs up to {max(numbers)} but no frame {missing[0]} ({len(missing)} missing)")
    return len(numbers)


def _corrupt(trial: Trial, e: Exception) -> DatasetError:
    return DatasetError(f"{trial.describe()}: frames archive {trial.frames_location()} is truncated or corrupt: "
                        f"{type(e).__name__}: {e}")


def frames(trial: Trial, *, buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> Iterator[np.ndarray]:
    """Frames 1..N as (210, 160, 3) uint8 RGB, streamed; see the module docstring for the memory bound."""
    if trial.frames_extracted:
        yield from _folder_frames(trial)
        return
    next_n = 1  # the next frame to yield
    total: int | None = None  # number of PNGs, known after the first pass
    buffer: dict[int, bytes] = {}
    buffered = 0
    while total is None or next_n <= total:
        start = next_n
        heap = [-n for n in buffer]  # max-heap of buffered frame numbers, cleaned lazily
        heapq.heapify(heap)
        seen: set[int] | None = set() if total is None else None
        count = 0
        try:
            with _open_tar(trial) as (tf, stream):
                for n, member in _members(trial, tf, stream):
                    count += 1
                    _check_png_size(trial, n, member.size)
                    if seen is not None:
                        seen.add(n)
                    if n < next_n or n in buffer:
                        continue
                    if n == next_n:
                        yield _decode(trial, tf.extractfile(member).read(), n)
                        next_n += 1
                        while next_n in buffer:
                            data = buffer.pop(next_n)
                            buffered -= len(data)
                            yield _decode(trial, data, next_n)
                            next_n += 1
                        continue
                    # out of order: keep it if it fits, evicting higher-numbered frames first
                    while buffered + member.size > buffer_bytes and heap:
                        while heap and -heap[0] not in buffer:
                            heapq.heappop(heap)
                        if not heap or -heap[0] < n:
                            break
                        buffered -= len(buffer.pop(-heapq.heappop(heap)))
                    if buffered + member.size <= buffer_bytes:
                        buffer[n] = tf.extractfile(member).read()
                        buffered += len(buffer[n])
                        heapq.heappush(heap, -n)
        except ARCHIVE_ERRORS as e:
            raise _corrupt(trial, e) from None
        if seen is not None:
            total = _check_numbers(trial, seen, count)
        if next_n == start and next_n <= total:
            raise DatasetError(f"{trial.describe()}: frame {next_n} of {trial.frames_location()} vanished between passes")


def _png_folder(trial: Trial) -> dict[int, Path]:
    """The extracted PNGs by frame number, checked to be 1..N."""
    folder = Path(trial.frames_file)
    if (folder / trial.stem).is_dir():
        folder = folder / trial.stem
    pattern = _png_pattern(trial)
    files: dict[int, Path] = {}
    count = 0  # more than len(files) when two names give one number (AB_1_05.png, AB_1_5.png)
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise DatasetError(f"{trial.describe()}: cannot list frames folder {folder}: {e}") from None
    for entry in entries:
        if entry.name.startswith("._") or not entry.name.lower().endswith(".png"):
            continue
        m = pattern.match(entry.name)
        if not m:
            raise DatasetError(f"{trial.describe()}: frames folder {folder} holds {entry.name!r}, "
                               f"expected PNGs named {trial.utid}_<n>.png")
        files[int(m.group(1))] = Path(entry.path)
        count += 1
    _check_numbers(trial, set(files), count)
    return files


def _folder_frames(trial: Trial) -> Iterator[np.ndarray]:
    files = _png_folder(trial)
    for n in range(1, len(files) + 1):
        try:
            _check_png_size(trial, n, files[n].stat().st_size)
            data = files[n].read_bytes()
        except OSError as e:
            raise DatasetError(f"{trial.describe()}: cannot read {files[n]}: {e}") from None
        yield _decode(trial, data, n)


def count_frames(trial: Trial) -> int:
    """Number of PNGs of the trial (one streaming pass, nothing decoded); checks they are 1..N."""
    if trial.frames_extracted:
        return len(_png_folder(trial))
    numbers: set[int] = set()
    count = 0
    try:
        with _open_tar(trial) as (tf, stream):
            for n, _ in _members(trial, tf, stream):
                numbers.add(n)
                count += 1
    except ARCHIVE_ERRORS as e:
        raise _corrupt(trial, e) from None
    return _check_numbers(trial, numbers, count)
