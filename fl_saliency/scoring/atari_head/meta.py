"""Which Atari-HEAD trials a folder holds and where their files are (docs/spec/atari-head-format.md).

``read_meta`` parses ``meta_data.csv`` of either release: release 2 (``TrialNumber,
NumberOfFrames,Game``, CamelCase games, ``Mspacman``, empty rows) or release 4 (``GameName,
trial_id,subject_id,...``, snake-case games with ``<game>_highscore`` rows, CRLF line ends, no
final newline, ``subject_id`` with a leading space). ``TrialIndex`` finds each trial's two files
(``<stem>.txt`` and ``<stem>.tar.bz2``) in the layouts the releases come in:

- release 2: a flat folder;
- release 4: one ``<game>.zip`` per game holding ``<game>/<stem>.*`` and
  ``<game>/highscore/<stem>.*`` (``mspacman.zip`` and ``ms_pacman.zip`` both accepted: names are
  compared without underscores);
- either partly extracted: a zip unpacked into a ``<game>/`` folder, a ``.tar.bz2`` unpacked into
  a folder named like the stem (directly, or one level further down in a folder of the same
  name, as ``tar x`` in a folder of that name gives). When a trial has both the ``.tar.bz2`` and
  its extracted folder, the archive is read.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fl_saliency.common.errors import FlSaliencyError

RELEASE2_COLUMNS = ("TrialNumber", "NumberOfFrames", "Game")
RELEASE4_COLUMNS = ("GameName", "trial_id", "subject_id", "total_frame")
TAR_SUFFIX = ".tar.bz2"
_STEM = re.compile(r"^(\d+)_([A-Za-z]+_\d+)_(.+)$")


class DatasetError(FlSaliencyError):
    """A missing, malformed or inconsistent Atari-HEAD file; the message names the trial and file."""


def escaped(text: str, limit: int = 60) -> str:
    """``text`` as a Python literal (control and odd bytes escaped), cut after ``limit`` characters."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


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
        return location(self.labels_zip, self.labels_file or f"{self.stem}.txt")

    def frames_location(self) -> str:
        return location(self.frames_zip, self.frames_file or f"{self.stem}{TAR_SUFFIX}")


def location(zip_path: str | None, name: str) -> str:
    return f"{zip_path}:{name}" if zip_path else name


# ---------------------------------------------------------------------------------------------
# meta_data.csv


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


_GAMES_BY_KEY: dict[str, str] | None = None


def game_of(name: str) -> str | None:
    """CamelCase ALE game for a meta file's spelling (``Mspacman``, ``space_invaders``, ``MsPacman``)."""
    global _GAMES_BY_KEY
    if _GAMES_BY_KEY is None:
        from fl_saliency.envs.games import rom_ids

        camel = lambda rom: "".join(part[:1].upper() + part[1:] for part in rom.split("_"))
        _GAMES_BY_KEY = {_norm(rom): camel(rom) for rom in rom_ids()}
    return _GAMES_BY_KEY.get(_norm(name))


def _int_cell(text: str) -> int | None:
    """``'160'`` or ``'160.0'`` (a spreadsheet's rendering) -> 160; ``''`` -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{escaped(text)} is not a number") from None
    if not value.is_integer():
        raise ValueError(f"{escaped(text)} is not an integer")
    return int(value)


@dataclass(frozen=True)
class MetaRow:
    game: str
    number: int
    n_frames: int | None
    highscore: bool
    subject: str | None


def _release2_row(row: dict[str, str], where: str) -> MetaRow | None:
    number_text, game_text = row.get("TrialNumber") or "", (row.get("Game") or "").strip()
    if not number_text.strip() and not game_text:
        return None  # a row with other columns only: nothing to read
    try:
        number = _int_cell(number_text)
        n_frames = _int_cell(row.get("NumberOfFrames") or "")
    except ValueError as e:
        raise DatasetError(f"{where}: bad TrialNumber/NumberOfFrames: {e}") from None
    game = game_of(game_text)
    if number is None or game is None:
        raise DatasetError(f"{where}: TrialNumber {escaped(number_text)} / Game {escaped(game_text)} not understood")
    return MetaRow(game, number, n_frames, False, None)


def _release4_row(row: dict[str, str], where: str) -> MetaRow:
    name = (row.get("GameName") or "").strip()
    highscore = name.lower().endswith("_highscore")
    game = game_of(name[: -len("_highscore")] if highscore else name)
    try:
        number = _int_cell(row.get("trial_id") or "")
        n_frames = _int_cell(row.get("total_frame") or "")
    except ValueError as e:
        raise DatasetError(f"{where}: bad trial_id/total_frame: {e}") from None
    if number is None or game is None:
        raise DatasetError(f"{where}: GameName {escaped(name)} / trial_id {escaped(row.get('trial_id') or '')} "
                           "not understood")
    return MetaRow(game, number, n_frames, highscore, (row.get("subject_id") or "").strip() or None)


def read_meta(path: Path) -> tuple[int, dict[tuple[str, bool, int], MetaRow]]:
    """(release, rows by (game, highscore, trial number)) of a ``meta_data.csv``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    lines = list(enumerate(csv.reader(io.StringIO(text)), start=1))
    if not lines:
        raise DatasetError(f"{path} is empty: expected an Atari-HEAD meta_data.csv")
    header = [c.strip() for c in lines[0][1]]
    if all(c in header for c in RELEASE2_COLUMNS):
        release, parse_row = 2, _release2_row
    elif all(c in header for c in RELEASE4_COLUMNS):
        release, parse_row = 4, _release4_row
    else:
        raise DatasetError(
            f"{path}: unknown Atari-HEAD layout, columns {escaped(','.join(header)) if header else 'none'}; "
            f"expected {', '.join(RELEASE2_COLUMNS)} (release 2) or {', '.join(RELEASE4_COLUMNS)}, ... (release 4)"
        )
    meta: dict[tuple[str, bool, int], MetaRow] = {}
    for line_no, cells in lines[1:]:
        if not any(c.strip() for c in cells):
            continue  # empty rows occur in release 2
        where = f"{path} line {line_no}"
        row = parse_row(dict(zip(header, cells)), where)
        if row is None:
            continue
        key = (row.game, row.highscore, row.number)
        if key in meta and meta[key] != row:
            raise DatasetError(f"{where}: trial {row.number} of {row.game} is listed twice with different values")
        meta[key] = row
    return release, meta


# ---------------------------------------------------------------------------------------------
# where the files are


@dataclass
class _Found:
    """Where one trial's files are, as found on disk or in a zip."""

    stem: str
    labels: tuple[str | None, str] | None = None  # (zip or None, path or member)
    tar: tuple[str | None, str] | None = None
    folder: str | None = None  # extracted PNGs


def _note(index: dict, key, stem: str, *, labels=None, tar=None, folder=None) -> None:
    entries = index.setdefault(key, [])
    entry = next((e for e in entries if e.stem == stem), None)
    if entry is None:
        entry = _Found(stem)
        entries.append(entry)
    entry.labels = entry.labels or labels
    entry.tar = entry.tar or tar
    entry.folder = entry.folder or folder


def _note_file(index: dict, key_of, zip_path: str | None, name: str, parts: list[str]) -> None:
    """Note ``name`` if it is a trial's labels or frames file; ``parts`` its path in the layout."""
    base = parts[-1]
    for suffix, kind in ((".txt", "labels"), (TAR_SUFFIX, "tar")):
        m = _STEM.match(base[: -len(suffix)]) if base.endswith(suffix) and not base.startswith("._") else None
        if m:
            _note(index, key_of(parts[:-1], int(m.group(1))), m.group(0), **{kind: (zip_path, name)})


def _highscore_key(folders: list[str], number: int) -> tuple[bool, int]:
    return any(p.lower() == "highscore" for p in folders), number


class TrialIndex:
    """The trials of an Atari-HEAD folder: its meta file's rows joined with the files found."""

    def __init__(self, root: Path):
        self.root = root
        meta = root / "meta_data.csv"
        if not meta.is_file():
            raise DatasetError(
                f"no meta_data.csv in {root}: not an Atari-HEAD folder (release 2: meta_data.csv "
                "with the trial .tar.bz2/.txt pairs; release 4: meta_data.csv with one <game>.zip per game)"
            )
        self.release, self.rows = read_meta(meta)
        self._found: dict[str, dict] = {}  # per game (release 4) or "" (release 2), lazily

    def _release2_files(self) -> dict[int, list[_Found]]:
        if "" not in self._found:
            index: dict[int, list[_Found]] = {}
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                if entry.is_dir():
                    if m := _STEM.match(entry.name):
                        _note(index, int(m.group(1)), entry.name, folder=entry.path)
                else:
                    _note_file(index, lambda _, number: number, None, entry.path, [entry.name])
            self._found[""] = index
        return self._found[""]

    def _release4_files(self, game: str) -> dict[tuple[bool, int], list[_Found]]:
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
                    _note_file(index, _highscore_key, entry.path, member, member.split("/"))
        for entry in entries:
            if entry.is_dir() and _norm(entry.name) == key:
                for dirpath, dirnames, filenames in os.walk(entry.path):
                    rel = list(Path(dirpath).relative_to(entry.path).parts)
                    for d in list(dirnames):
                        if m := _STEM.match(d):
                            _note(index, _highscore_key(rel, int(m.group(1))), d, folder=os.path.join(dirpath, d))
                            dirnames.remove(d)
                    for f in sorted(filenames):
                        _note_file(index, _highscore_key, None, os.path.join(dirpath, f), [*rel, f])
        self._found[game] = index
        return index

    def trial(self, row: MetaRow) -> Trial | None:
        """The trial of a meta row, or None when none of its files is there."""
        if self.release == 2:
            candidates = self._release2_files().get(row.number, [])
        else:
            candidates = self._release4_files(row.game).get((row.highscore, row.number), [])
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
