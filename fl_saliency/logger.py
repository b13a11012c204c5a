"""Training logs as Baselines writes them: monitor CSVs, progress.csv, log.txt (the console table), TensorBoard."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

from fl_saliency.io import atomic_write

MONITOR_COLUMNS = ("r", "l", "t")


class MonitorCSV:
    """``logs/0.<rank>.monitor.csv`` per environment: a ``#{json}`` header, then one ``r,l,t`` row per episode."""

    def __init__(self, log_dir: Path, env_id: str, num_envs: int, append: bool = False):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.files = []
        for rank in range(num_envs):
            path = log_dir / f"0.{rank}.monitor.csv"
            is_new = not (append and path.exists())
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
    """Baselines' HumanOutputFormat key/value table."""
    def fmt(v):
        return f"{v:<8.3g}" if isinstance(v, float) else str(v)

    cells = {key: fmt(value) for key, value in sorted(values.items())}
    key_width = max(map(len, cells))
    value_width = max(map(len, cells.values()))
    dashes = "-" * (key_width + value_width + 7)
    lines = [dashes] + [f"| {k:<{key_width}} | {v:<{value_width}} |" for k, v in cells.items()] + [dashes]
    return "\n".join(lines)


def truncate_progress(path: Path, key: str, last: int) -> None:
    """Drop the rows of progress.csv logged after update ``last`` (a resumed run logs them again)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fieldnames, rows = reader.fieldnames, [row for row in reader if int(row[key]) <= last]
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


class ProgressLogger:
    """One row per logged update into progress.csv, log.txt, TensorBoard and the console."""

    def __init__(self, output_dir: Path, keys: tuple[str, ...], step_key: str, append: bool = False,
                 echo: Callable[[str], None] = print):
        logs = output_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.keys = keys
        self.step_key = step_key
        self.echo = echo
        progress = logs / "progress.csv"
        resume = append and progress.exists()
        self.csv_file = open(progress, "a" if resume else "w", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=keys)
        if not resume:
            self.csv.writeheader()
        self.text = open(logs / "log.txt", "a" if append else "w")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(log_dir=str(output_dir / "tb"))

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
