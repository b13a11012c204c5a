"""Training logs as Baselines writes them: monitor CSVs, progress.csv, log.txt (the console table), TensorBoard."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

from fl_saliency.common.rundir import (EVENTS_PATTERN, LOG_TEXT_FILE, LOGS_DIR, PROGRESS_FILE, TB_DIR,
                                       monitor_file)
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import atomic_write

MONITOR_COLUMNS = ("r", "l", "t")


def drop_partial_line(path: Path) -> None:
    """Cut a last line without its newline: what a process killed while writing it leaves."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


class MonitorCSV:
    """``logs/0.<rank>.monitor.csv`` per environment: a ``#{json}`` header, then one ``r,l,t`` row per episode."""

    def __init__(self, log_dir: Path, env_id: str, num_envs: int, append: bool = False):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.files = []
        for rank in range(num_envs):
            path = log_dir / monitor_file(rank)
            is_new = not (append and path.exists())
            if not is_new:
                drop_partial_line(path)
            f = open(path, "w" if is_new else "a", newline="")
            if is_new:
                f.write("#" + json.dumps({"t_start": time.time(), "env_id": env_id}) + "\n")
                f.write(",".join(MONITOR_COLUMNS) + "\n")
                f.flush()
            self.files.append(f)

    def write(self, rank: int, episode: dict) -> None:
        f = self.files[rank]
        f.write(",".join(str(episode[key]) for key in MONITOR_COLUMNS) + "\n")
        f.flush()

    def close(self) -> None:
        for f in self.files:
            f.close()


def read_monitor(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """The header and rows of a Baselines monitor CSV."""
    with open(path) as f:
        header = json.loads(f.readline().removeprefix("#"))
        rows = [{"r": float(row["r"]), "l": int(row["l"]), "t": float(row["t"])} for row in csv.DictReader(f)]
    return header, rows


def format_table(values: dict[str, float]) -> str:
    """Baselines' HumanOutputFormat key/value table (numbers as %-8.3g, ints too; keys and values cut at 30)."""
    def cut(text: str) -> str:
        return text[:27] + "..." if len(text) > 30 else text

    cells = {cut(key): cut(f"{value:<8.3g}" if hasattr(value, "__float__") else str(value))
             for key, value in sorted(values.items())}
    key_width = max(map(len, cells))
    value_width = max(map(len, cells.values()))
    dashes = "-" * (key_width + value_width + 7)
    lines = [dashes] + [f"| {k:<{key_width}} | {v:<{value_width}} |"
                        for k, v in sorted(cells.items(), key=lambda kv: kv[0].lower())] + [dashes]
    return "\n".join(lines)


def _truncate_progress(path: Path, step_key: str, last: int) -> int:
    """Drop the rows of progress.csv logged after step ``last``; returns how many rows are kept."""
    if not path.exists():
        return 0
    drop_partial_line(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fieldnames, rows = reader.fieldnames, [row for row in reader if int(row[step_key]) <= last]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise FlSaliencyError(f"{path} is not a progress.csv of fl-saliency (no readable {step_key} column)") from None
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def _truncate_tables(path: Path, count: int) -> None:
    """Keep the first ``count`` tables of log.txt: one was written with each row of progress.csv, whose exact
    values it does not hold (%-8.3g)."""
    if not path.exists():
        return
    kept, closed, table = [], 0, []
    for line in path.read_text().splitlines(keepends=True):
        if closed == count:
            break
        table.append(line)
        if line.startswith("-") and len(table) > 1:  # a table's closing dashes
            kept.extend(table)
            closed, table = closed + 1, []
    with atomic_write(path, "w") as f:
        f.writelines(kept)


def _carry_over_events(earlier: list[Path], writer, last: int) -> None:
    """Move the scalars up to step ``last`` of the ``earlier`` event files into ``writer``'s, and delete those files.

    TensorBoard then shows each step once, from one file (a resumed run would otherwise add a second file that
    repeats the steps logged after the checkpoint).
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event

    file_writer = writer._get_file_writer()
    for path in earlier:
        for record in RawEventFileLoader(str(path)).Load():
            event = Event.FromString(record)
            if event.HasField("summary") and event.step <= last:
                file_writer.add_event(event, step=event.step, walltime=event.wall_time)
    writer.flush()
    for path in earlier:
        path.unlink()


class ProgressLogger:
    """One row per logged update into progress.csv, log.txt, TensorBoard and the console.

    With ``resume_after`` (the step of the checkpoint a run resumes from), the rows logged after it are dropped
    from all three first: the resumed run logs those updates again, and each appears once.
    """

    def __init__(self, output_dir: Path, keys: tuple[str, ...], step_key: str, resume_after: int | None = None,
                 echo: Callable[[str], None] = print):
        logs = output_dir / LOGS_DIR
        logs.mkdir(parents=True, exist_ok=True)
        self.keys = keys
        self.step_key = step_key
        self.echo = echo
        progress, text = logs / PROGRESS_FILE, logs / LOG_TEXT_FILE
        resume = resume_after is not None
        if resume:
            _truncate_tables(text, _truncate_progress(progress, step_key, resume_after))
        append = resume and progress.exists()
        self.csv_file = open(progress, "a" if append else "w", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=keys)
        if not append:
            self.csv.writeheader()
        self.text = open(text, "a" if resume else "w")
        from torch.utils.tensorboard import SummaryWriter

        earlier_events = sorted((output_dir / TB_DIR).glob(EVENTS_PATTERN))
        self.tb = SummaryWriter(log_dir=str(output_dir / TB_DIR))
        if resume:
            _carry_over_events(earlier_events, self.tb, resume_after)

    def log(self, values: dict[str, float]) -> None:
        row = {key: values[key] for key in self.keys}
        self.csv.writerow(row)
        self.csv_file.flush()
        table = format_table(row)
        self.text.write(table + "\n")
        self.text.flush()
        self.echo(table)
        step = int(row[self.step_key])
        for key, value in row.items():
            if not (isinstance(value, float) and math.isnan(value)):
                self.tb.add_scalar(key, value, step)
        self.tb.flush()

    def close(self) -> None:
        self.csv_file.close()
        self.text.close()
        self.tb.close()
