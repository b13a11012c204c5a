"""Read Atari-HEAD trials as downloaded (``shared/spec/atari-head-format.md``), without extracting.

Layouts that ``AtariHeadDataset(root)`` recognises from ``root/meta_data.csv``:

- release 2: a flat folder, ``meta_data.csv`` with ``TrialNumber,NumberOfFrames,Game`` and the
  trial pairs ``<stem>.txt`` + ``<stem>.tar.bz2`` beside it;
- release 4: ``meta_data.csv`` with ``GameName,trial_id,...`` and one ``<game>.zip`` per game
  holding ``<game>/<stem>.*`` and ``<game>/highscore/<stem>.*`` (``mspacman.zip`` and
  ``ms_pacman.zip`` are both accepted: zip and folder names are compared without underscores);
- either of them partly extracted: a release 4 zip unpacked into a ``<game>/`` folder, and a
  ``.tar.bz2`` unpacked into a folder named like the stem holding the PNGs (directly, or one
  level further down in a folder of the same name, as ``tar x`` in a folder of that name gives).
  When a trial has both the ``.tar.bz2`` and its extracted folder, the archive is read.

Frames are streamed: the ``.tar.bz2`` (inside the zip for release 4) is read front to back with
tarfile's streaming mode, one member at a time, nothing written to disk.

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
import csv
import heapq
import io
import os
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import cv2
import numpy as np

from fl_saliency.errors import FlSaliencyError

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
FRAME_SHAPE = (210, 160, 3)
DEFAULT_BUFFER_BYTES = 64 * 2**20
N_FULL_ACTIONS = 18

RELEASE2_COLUMNS = ("TrialNumber", "NumberOfFrames", "Game")
RELEASE4_COLUMNS = ("GameName", "trial_id", "subject_id", "total_frame")

_STEM = re.compile(r"^(\d+)_([A-Za-z]+_\d+)_(.+)$")
_TAR_SUFFIX = ".tar.bz2"
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile, zlib.error, ValueError)


class DatasetError(FlSaliencyError):
    """A missing, malformed or inconsistent Atari-HEAD file; the message names the trial and file."""


@dataclass(frozen=True)
class Trial:
    """One trial: its number, stem, game (CamelCase ALE name) and where its two files are.

    ``labels_file`` / ``frames_file`` are file-system paths, or member names inside the zip
    ``labels_zip`` / ``frames_zip`` when those are set; ``frames_file`` may also be a folder of
    extracted PNGs (``frames_extracted``). ``None`` means the file was not found.
    """

    number: int
    stem: str
    game: str
    n_frames: int | None
    labels_file: str | None = None
    frames_file: str | None = None
    labels_zip: str | None = None
    frames_zip: str | None = None
    frames_extracted: bool = False
    highscore: bool = False
    subject: str | None = None

    @property
    def utid(self) -> str:
        """The subject's id as in the frame ids, ``RZ_9166697``."""
        return _STEM.match(self.stem).group(2)

    def describe(self) -> str:
        return f"trial {self.number} ({self.stem}{', highscore' if self.highscore else ''})"

    def labels_location(self) -> str:
        return _location(self.labels_zip, self.labels_file or f"{self.stem}.txt")

    def frames_location(self) -> str:
        return _location(self.frames_zip, self.frames_file or f"{self.stem}{_TAR_SUFFIX}")


def _location(zip_path: str | None, name: str) -> str:
    return f"{zip_path}:{name}" if zip_path else name


@dataclass
class Labels:
    """The rows of a trial's ``.txt``, row ``i`` (0-based) describing frame ``i + 1``; ``None`` = ``null``."""

    frame_numbers: np.ndarray  # (N,) int64, 1..N
    episode_ids: list[int | None]
    scores: list[int | float | None]
    durations: list[int | float | None]  # duration(ms)
    unclipped_rewards: list[int | float | None]
    actions: list[int | None]  # ALE full action set index 0..17
    gaze: list[np.ndarray]  # (k, 2) float64 (x, y); (0, 2) for null

    def __len__(self) -> int:
        return len(self.frame_numbers)


# ---------------------------------------------------------------------------------------------
# game names


def _camel(rom: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in rom.split("_"))


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


_GAMES_BY_KEY: dict[str, str] | None = None


def _game_of(name: str) -> str | None:
    """CamelCase ALE game for a meta file's spelling (``Mspacman``, ``space_invaders``, ``MsPacman``)."""
    global _GAMES_BY_KEY
    if _GAMES_BY_KEY is None:
        from fl_saliency.games import rom_ids

        _GAMES_BY_KEY = {_norm(rom): _camel(rom) for rom in rom_ids()}
    return _GAMES_BY_KEY.get(_norm(name))


# ---------------------------------------------------------------------------------------------
# small parsers


def _int_cell(text: str) -> int | None:
    """``'160'`` or ``'160.0'`` (a spreadsheet's rendering) -> 160; ``''`` -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        value = float(text)  # ValueError propagates
        if not value.is_integer():
            raise ValueError(f"{text!r} is not an integer") from None
        return int(value)


def _int_or_null(text: str) -> int | None:
    if text == "null":
        return None
    return int(text)


def _num_or_null(text: str) -> int | float | None:
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not np.isfinite(value):
            raise ValueError(f"{text!r} is not finite") from None
        return value


def _read_meta(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows = []
    for line_no, cells in enumerate(reader, start=1):
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if not any(c.strip() for c in cells):
            continue  # empty rows occur in release 2
        rows.append((line_no, dict(zip(header, cells))))
    if header is None:
        raise DatasetError(f"{path} is empty: expected an Atari-HEAD meta_data.csv")
    return header, rows


@dataclass(frozen=True)
class _MetaRow:
    game: str
    number: int
    n_frames: int | None
    highscore: bool
    subject: str | None


@dataclass
class _Found:
    """Where one trial's files are, as found on disk or in a zip."""

    stem: str
    labels: tuple[str | None, str] | None = None  # (zip or None, path or member)
    tar: tuple[str | None, str] | None = None
    folder: str | None = None  # extracted PNGs


# ---------------------------------------------------------------------------------------------


class AtariHeadDataset:
    """An Atari-HEAD release 2 or 4 folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"Atari-HEAD folder {self.root} does not exist")
        if not self.root.is_dir():
            raise DatasetError(f"Atari-HEAD folder {self.root} is not a folder")
        meta = self.root / "meta_data.csv"
        if not meta.is_file():
            raise DatasetError(
                f"no meta_data.csv in {self.root}: not an Atari-HEAD folder (release 2: meta_data.csv "
                "with the trial .tar.bz2/.txt pairs; release 4: meta_data.csv with one <game>.zip per game)"
            )
        header, rows = _read_meta(meta)
        if all(c in header for c in RELEASE2_COLUMNS):
            self.release = 2
            self._meta = self._parse_release2(meta, rows)
        elif all(c in header for c in RELEASE4_COLUMNS):
            self.release = 4
            self._meta = self._parse_release4(meta, rows)
        else:
            raise DatasetError(
                f"{meta}: unknown Atari-HEAD layout, columns {', '.join(header) or 'none'}; expected "
                f"{', '.join(RELEASE2_COLUMNS)} (release 2) or {', '.join(RELEASE4_COLUMNS)}, ... (release 4)"
            )
        self._found: dict[str, dict[tuple[bool, int], list[_Found]]] = {}  # per game, lazily
        self._release2_index: dict[int, list[_Found]] | None = None

    # ---- meta ----------------------------------------------------------------------------

    @staticmethod
    def _add(meta: dict, row: _MetaRow, where: str) -> None:
        key = (row.game, row.highscore, row.number)
        if key in meta and meta[key] != row:
            raise DatasetError(f"{where}: trial {row.number} of {row.game} is listed twice with different values")
        meta[key] = row

    def _parse_release2(self, path: Path, rows) -> dict:
        meta: dict = {}
        for line_no, row in rows:
            where = f"{path} line {line_no}"
            number_text, game_text = row.get("TrialNumber") or "", (row.get("Game") or "").strip()
            if not number_text.strip() and not game_text:
                continue  # a row with other columns only: nothing to read
            try:
                number = _int_cell(number_text)
                n_frames = _int_cell(row.get("NumberOfFrames") or "")
            except ValueError as e:
                raise DatasetError(f"{where}: bad TrialNumber/NumberOfFrames: {e}") from None
            game = _game_of(game_text)
            if number is None or game is None:
                raise DatasetError(f"{where}: TrialNumber {number_text!r} / Game {game_text!r} not understood")
            self._add(meta, _MetaRow(game, number, n_frames, False, None), where)
        return meta

    def _parse_release4(self, path: Path, rows) -> dict:
        meta: dict = {}
        for line_no, row in rows:
            where = f"{path} line {line_no}"
            name = (row.get("GameName") or "").strip()
            highscore = name.lower().endswith("_highscore")
            game = _game_of(name[: -len("_highscore")] if highscore else name)
            try:
                number = _int_cell(row.get("trial_id") or "")
                n_frames = _int_cell(row.get("total_frame") or "")
            except ValueError as e:
                raise DatasetError(f"{where}: bad trial_id/total_frame: {e}") from None
            if number is None or game is None:
                raise DatasetError(f"{where}: GameName {name!r} / trial_id {row.get('trial_id')!r} not understood")
            subject = (row.get("subject_id") or "").strip() or None
            self._add(meta, _MetaRow(game, number, n_frames, highscore, subject), where)
        return meta

    # ---- locating files ------------------------------------------------------------------

    @staticmethod
    def _note(index: dict, key, stem: str, *, labels=None, tar=None, folder=None) -> None:
        entries = index.setdefault(key, [])
        entry = next((e for e in entries if e.stem == stem), None)
        if entry is None:
            entry = _Found(stem)
            entries.append(entry)
        if labels and entry.labels is None:
            entry.labels = labels
        if tar and entry.tar is None:
            entry.tar = tar
        if folder and entry.folder is None:
            entry.folder = folder

    def _index_release2(self) -> dict[int, list[_Found]]:
        if self._release2_index is None:
            index: dict[int, list[_Found]] = {}
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                name = entry.name
                if entry.is_dir():
                    m = _STEM.match(name)
                    if m:
                        self._note(index, int(m.group(1)), name, folder=entry.path)
                    continue
                for suffix, kind in ((".txt", "labels"), (_TAR_SUFFIX, "tar")):
                    m = _STEM.match(name[: -len(suffix)]) if name.endswith(suffix) else None
                    if m:
                        self._note(index, int(m.group(1)), m.group(0), **{kind: (None, entry.path)})
            self._release2_index = index
        return self._release2_index

    def _index_release4(self, game: str) -> dict[tuple[bool, int], list[_Found]]:
        if game in self._found:
            return self._found[game]
        key = _norm(game)
        index: dict[tuple[bool, int], list[_Found]] = {}
        entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        for entry in entries:  # zips first: they are what the release ships
            if entry.is_file() and entry.name.lower().endswith(".zip") and _norm(entry.name[:-4]) == key:
                try:
                    with zipfile.ZipFile(entry.path) as zf:
                        names = zf.namelist()
                except (zipfile.BadZipFile, OSError) as e:
                    raise DatasetError(f"cannot read {entry.path} (the {game} trials): {e}") from None
                for member in names:
                    self._note_file(index, entry.path, member, member.split("/"))
        for entry in entries:
            if entry.is_dir() and _norm(entry.name) == key:
                for dirpath, dirnames, filenames in os.walk(entry.path):
                    rel = Path(dirpath).relative_to(entry.path).parts
                    for d in list(dirnames):
                        m = _STEM.match(d)
                        if m:
                            highscore = any(p.lower() == "highscore" for p in rel)
                            self._note(index, (highscore, int(m.group(1))), d, folder=os.path.join(dirpath, d))
                            dirnames.remove(d)
                    for f in sorted(filenames):
                        self._note_file(index, None, os.path.join(dirpath, f), [*rel, f])
        self._found[game] = index
        return index

    def _note_file(self, index, zip_path: str | None, name: str, parts: list[str]) -> None:
        base = parts[-1]
        highscore = any(p.lower() == "highscore" for p in parts[:-1])
        for suffix, kind in ((".txt", "labels"), (_TAR_SUFFIX, "tar")):
            m = _STEM.match(base[: -len(suffix)]) if base.endswith(suffix) else None
            if m and not base.startswith("._"):
                self._note(index, (highscore, int(m.group(1))), m.group(0), **{kind: (zip_path, name)})

    def _trial(self, row: _MetaRow) -> Trial | None:
        if self.release == 2:
            candidates = self._index_release2().get(row.number, [])
        else:
            index = self._index_release4(row.game)
            candidates = index.get((row.highscore, row.number), [])
        if not candidates:
            return None
        if len(candidates) > 1:
            raise DatasetError(
                f"trial {row.number} of {row.game} is ambiguous in {self.root}: several stems "
                f"{', '.join(c.stem for c in candidates)}"
            )
        found = candidates[0]
        labels_zip, labels_file = found.labels or (None, None)
        if found.tar:
            frames_zip, frames_file, extracted = found.tar[0], found.tar[1], False
        elif found.folder:
            frames_zip, frames_file, extracted = None, found.folder, True
        else:
            frames_zip, frames_file, extracted = None, None, False
        return Trial(
            number=row.number, stem=found.stem, game=row.game, n_frames=row.n_frames,
            labels_file=labels_file, frames_file=frames_file, labels_zip=labels_zip, frames_zip=frames_zip,
            frames_extracted=extracted, highscore=row.highscore, subject=row.subject,
        )

    # ---- public --------------------------------------------------------------------------

    def games(self) -> list[str]:
        """CamelCase games that have at least one trial with files in this folder."""
        return sorted({row.game for row in self._meta.values() if self._trial(row) is not None})

    def trials(self, game: str) -> list[Trial]:
        """Trials of ``game`` (CamelCase or a gym id) whose files are present, by number (highscore last)."""
        from fl_saliency.games import parse_game

        try:
            name = parse_game(game)
        except FlSaliencyError as e:
            raise DatasetError(str(e)) from None
        trials = [t for row in self._meta.values() if row.game == name and (t := self._trial(row)) is not None]
        if not trials:
            raise DatasetError(
                f"no Atari-HEAD trials for game {name} in {self.root}; it has: {', '.join(self.games()) or 'none'}"
            )
        return sorted(trials, key=lambda t: (t.highscore, t.number))

    # ---- labels --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open(self, trial: Trial, zip_path: str | None, name: str | None, what: str) -> Iterator[IO[bytes]]:
        if name is None:
            raise DatasetError(f"{trial.describe()}: its {what} file is missing from {self.root}")
        where = _location(zip_path, name)
        stack = contextlib.ExitStack()
        try:
            if zip_path:
                zf = stack.enter_context(zipfile.ZipFile(zip_path))
                f = stack.enter_context(zf.open(name))
            else:
                f = stack.enter_context(open(name, "rb"))
        except (*_ARCHIVE_ERRORS, KeyError) as e:
            stack.close()
            raise DatasetError(f"{trial.describe()}: cannot open {what} {where}: {type(e).__name__}: {e}") from None
        with stack:
            yield f

    def labels(self, trial: Trial) -> Labels:
        where = trial.labels_location()
        with self._open(trial, trial.labels_zip, trial.labels_file, "labels") as f:
            try:
                raw = f.read()
            except _ARCHIVE_ERRORS as e:
                raise DatasetError(f"{trial.describe()}: cannot read labels {where}: {type(e).__name__}: {e}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise DatasetError(f"{trial.describe()}: labels {where} are not UTF-8 text: {e}") from None
        return parse_labels(text, trial.utid, f"{trial.describe()}: labels {where}")

    # ---- frames --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tar(self, trial: Trial) -> Iterator[tuple[tarfile.TarFile, IO[bytes]]]:
        with self._open(trial, trial.frames_zip, trial.frames_file, "frames") as raw:
            with bz2.BZ2File(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
                yield tf, stream

    def _members(self, trial: Trial, tf: tarfile.TarFile, stream: IO[bytes]) -> Iterator[tuple[int, tarfile.TarInfo]]:
        """(frame number, member) for each PNG of the archive, in archive order; then drains the stream."""
        pattern = re.compile(rf"^{re.escape(trial.utid)}_(\d+)\.png$")
        while (member := tf.next()) is not None:
            tf.members.clear()  # tarfile keeps every header it read; we never look back
            base = member.name.rstrip("/").rsplit("/", 1)[-1]
            if not member.isfile() or base.startswith("._") or not base.lower().endswith(".png"):
                continue  # the folder itself, macOS AppleDouble files, stray non-PNG files
            m = pattern.match(base)
            if not m:
                raise DatasetError(
                    f"{trial.describe()}: frames {trial.frames_location()} holds {member.name!r}, "
                    f"expected PNGs named {trial.utid}_<n>.png"
                )
            yield int(m.group(1)), member
        while stream.read(1 << 16):  # to the bz2 end-of-stream marker: raises if truncated
            pass

    def _decode(self, trial: Trial, data: bytes, n: int) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape != FRAME_SHAPE:
            got = "undecodable" if image is None else f"of shape {image.shape}"
            raise DatasetError(
                f"{trial.describe()}: frame {n} in {trial.frames_location()} is {got}, expected a 160x210 RGB PNG"
            )
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _check_numbers(self, trial: Trial, numbers: set[int], count: int) -> int:
        if count != len(numbers):
            raise DatasetError(f"{trial.describe()}: frames {trial.frames_location()} has duplicate PNGs")
        if not numbers:
            raise DatasetError(f"{trial.describe()}: frames {trial.frames_location()} holds no PNG")
        if 0 in numbers:
            raise DatasetError(
                f"{trial.describe()}: frames {trial.frames_location()} has a PNG numbered 0; numbering starts at 1"
            )
        missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
        if missing:
            raise DatasetError(
                f"{trial.describe()}: frames {trial.frames_location()} has PNGs up to {max(numbers)} but "
                f"no frame {missing[0]} ({len(missing)} missing)"
            )
        return len(numbers)

    def _wrap(self, trial: Trial, e: Exception) -> DatasetError:
        return DatasetError(
            f"{trial.describe()}: frames archive {trial.frames_location()} is truncated or corrupt: "
            f"{type(e).__name__}: {e}"
        )

    def frames(self, trial: Trial, *, buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> Iterator[np.ndarray]:
        """Frames 1..N as (210, 160, 3) uint8 RGB, streamed; see the module docstring for the memory bound."""
        if trial.frames_extracted:
            yield from self._frames_folder(trial)
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
                with self._tar(trial) as (tf, stream):
                    for n, member in self._members(trial, tf, stream):
                        count += 1
                        if seen is not None:
                            seen.add(n)
                        if n < next_n or n in buffer:
                            continue
                        if n == next_n:
                            data = tf.extractfile(member).read()
                            yield self._decode(trial, data, n)
                            next_n += 1
                            while next_n in buffer:
                                data = buffer.pop(next_n)
                                buffered -= len(data)
                                yield self._decode(trial, data, next_n)
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
            except _ARCHIVE_ERRORS as e:
                raise self._wrap(trial, e) from None
            if seen is not None:
                total = self._check_numbers(trial, seen, count)
            if next_n == start and next_n <= total:
                raise DatasetError(
                    f"{trial.describe()}: frame {next_n} of {trial.frames_location()} vanished between passes"
                )

    def _png_folder(self, trial: Trial) -> tuple[Path, dict[int, Path]]:
        folder = Path(trial.frames_file)
        if (folder / trial.stem).is_dir():
            folder = folder / trial.stem
        pattern = re.compile(rf"^{re.escape(trial.utid)}_(\d+)\.png$")
        files: dict[int, Path] = {}
        count = 0
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            raise DatasetError(f"{trial.describe()}: cannot list frames folder {folder}: {e}") from None
        for entry in entries:
            if entry.name.startswith("._") or not entry.name.lower().endswith(".png"):
                continue
            m = pattern.match(entry.name)
            if not m:
                raise DatasetError(
                    f"{trial.describe()}: frames folder {folder} holds {entry.name!r}, "
                    f"expected PNGs named {trial.utid}_<n>.png"
                )
            files[int(m.group(1))] = Path(entry.path)
            count += 1
        self._check_numbers(trial, set(files), count)
        return folder, files

    def _frames_folder(self, trial: Trial) -> Iterator[np.ndarray]:
        _, files = self._png_folder(trial)
        for n in range(1, len(files) + 1):
            try:
                data = files[n].read_bytes()
            except OSError as e:
                raise DatasetError(f"{trial.describe()}: cannot read {files[n]}: {e}") from None
            yield self._decode(trial, data, n)

    def count_frames(self, trial: Trial) -> int:
        """Number of PNGs of the trial (one streaming pass, nothing decoded); checks they are 1..N."""
        if trial.frames_extracted:
            return len(self._png_folder(trial)[1])
        numbers: set[int] = set()
        count = 0
        try:
            with self._tar(trial) as (tf, stream):
                for n, _ in self._members(trial, tf, stream):
                    numbers.add(n)
                    count += 1
        except _ARCHIVE_ERRORS as e:
            raise self._wrap(trial, e) from None
        return self._check_numbers(trial, numbers, count)

    def check(self, trial: Trial) -> None:
        """meta's frame count == number of label rows == number of PNGs, else DatasetError."""
        rows = len(self.labels(trial))
        pngs = self.count_frames(trial)
        if rows != pngs or (trial.n_frames is not None and trial.n_frames != rows):
            meta = "no frame count" if trial.n_frames is None else f"{trial.n_frames} frames"
            raise DatasetError(
                f"{trial.describe()}: frame counts disagree: meta_data.csv says {meta}, labels "
                f"{trial.labels_location()} have {rows} rows, frames {trial.frames_location()} hold {pngs} PNGs"
            )


# ---------------------------------------------------------------------------------------------


def parse_labels(text: str, utid: str, where: str) -> Labels:
    """Parse a labels file's text; ``where`` starts every error message (trial and file)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines
    if not lines:
        raise DatasetError(f"{where} is empty: expected the header line {HEADER}")
    if lines[0] != HEADER:
        raise DatasetError(f"{where} line 1: header {lines[0][:200]!r}, expected {HEADER!r}")
    n_rows = len(lines) - 1
    episode_ids, scores, durations, rewards, actions, gaze = [], [], [], [], [], []
    for n in range(1, n_rows + 1):
        line_no = n + 1
        fields = lines[n].split(",")
        if len(fields) < 7:
            raise DatasetError(
                f"{where} line {line_no}: {len(fields)} fields, expected at least 7 "
                "(frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze...)"
            )
        if fields[0] != f"{utid}_{n}":
            raise DatasetError(f"{where} line {line_no}: frame id {fields[0]!r}, expected {utid}_{n} (row {n})")
        try:
            column = "episode_id"
            episode_ids.append(_int_or_null(fields[1]))
            column = "score"
            scores.append(_num_or_null(fields[2]))
            column = "duration(ms)"
            durations.append(_num_or_null(fields[3]))
            column = "unclipped_reward"
            rewards.append(_num_or_null(fields[4]))
            column = "action"
            action = _int_or_null(fields[5])
            if action is not None and not 0 <= action < N_FULL_ACTIONS:
                raise ValueError(f"{action} is not an ALE action index 0..{N_FULL_ACTIONS - 1}")
            actions.append(action)
            column = "gaze_positions"
            values = fields[6:]
            if values == ["null"]:
                gaze.append(np.zeros((0, 2)))
            else:
                if len(values) % 2:
                    raise ValueError(f"{len(values)} values, not x,y pairs")
                xy = np.array([float(v) for v in values], dtype=np.float64)
                if not np.isfinite(xy).all():
                    raise ValueError("non-finite value")
                gaze.append(xy.reshape(-1, 2))
        except ValueError as e:
            raise DatasetError(f"{where} line {line_no} (frame {n}): bad {column}: {e}") from None
    return Labels(
        frame_numbers=np.arange(1, n_rows + 1, dtype=np.int64),
        episode_ids=episode_ids, scores=scores, durations=durations, unclipped_rewards=rewards,
        actions=actions, gaze=gaze,
    )
