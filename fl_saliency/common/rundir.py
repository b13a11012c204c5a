"""The run folder: every file name a run's commands write, and the readers of what they wrote.

A run folder (``train``'s output, a sweep's ``<Game>.<network>/<seed>/``) holds ``config.json``,
``model.pkl`` (Baselines format), ``checkpoint.pt`` (what a resume needs), ``logs/0.<rank>.monitor.csv``,
``logs/progress.csv``, ``logs/log.txt``, ``tb/events.out.tfevents.*``; the evaluation (``results.json``,
``summary.json``, ``perception.<fmt>``, ``videos/``) and the saliency scores (``saliency[.<method>].pkl``,
``saliency.json``, ``saliency.csv``, ``trial_<n>.mp4``), ``faithfulness.json`` either beside them (a sweep's
layout) or in ``eval/`` (evaluate's default). The released runs of the paper hold ``eval.pkl`` and TensorBoard
event files at their top. No other module spells these names; the readers raise UnreadableFile, one line
naming the file, for a file that is not what its name says.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
from pathlib import Path

import numpy as np

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import TEMPORARY_PATTERNS

CONFIG_FILE = "config.json"
MODEL_FILE = "model.pkl"
CHECKPOINT_FILE = "checkpoint.pt"
LOGS_DIR = "logs"
PROGRESS_FILE = "progress.csv"
LOG_TEXT_FILE = "log.txt"
TB_DIR = "tb"
EVENTS_PATTERN = "events.out.tfevents.*"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.json"
PAPER_RESULTS_FILE = "eval.pkl"  # the paper's released runs
PERCEPTION_STEM = "perception"
VIDEOS_DIR = "videos"
EVAL_DIR = "eval"
SALIENCY_FILE = "saliency.pkl"
SALIENCY_JSON, SALIENCY_CSV = "saliency.json", "saliency.csv"
FAITHFULNESS_FILE = "faithfulness.json"
TRIAL_VIDEO_PATTERN = "trial_*.mp4"
# The original's three metrics: every saliency.pkl holds them.
SALIENCY_METRICS = ("nss", "kldiv", "sauc")


def monitor_file(rank: int) -> str:
    return f"0.{rank}.monitor.csv"


def perception_file(fmt: str) -> str:
    return f"{PERCEPTION_STEM}.{fmt}"


def saliency_file(method: str) -> str:
    return SALIENCY_FILE if method == "attention" else f"saliency.{method}.pkl"


METHOD_SALIENCY_PATTERN = "saliency.*.pkl"  # saliency_file() of every method but attention, a user's too


def method_saliency_files(folder: Path) -> list[Path]:
    """The saliency.pkl and saliency.<method>.pkl files in ``folder``."""
    return [folder / SALIENCY_FILE, *folder.glob(METHOD_SALIENCY_PATTERN)]


def trial_video_file(number: int) -> str:
    return f"trial_{number}.mp4"


def evaluation_outputs() -> tuple[str, ...]:
    """What an evaluation writes into its output folder, by name (train --force removes these and nothing else)."""
    from fl_saliency.evaluation.perception_video import CODECS

    return (RESULTS_FILE, SUMMARY_FILE, *(perception_file(fmt) for fmt in CODECS),
            *(f"{VIDEOS_DIR}/vecenv.video.*.video*{suffix}" for suffix in (".mp4", ".meta.json")))


def run_outputs() -> tuple[str, ...]:
    """What the commands write into a run folder, by name (the sweep's layout puts the evaluation and the saliency
    scores beside the model; evaluate's default output is eval/), and what killed writes leave: train --force
    removes these and the subfolders they leave empty; a user's own files stay."""
    logs = (f"{LOGS_DIR}/0.*.monitor.csv", f"{LOGS_DIR}/{PROGRESS_FILE}", f"{LOGS_DIR}/{LOG_TEXT_FILE}",
            f"{TB_DIR}/{EVENTS_PATTERN}")
    saliency = (SALIENCY_FILE, METHOD_SALIENCY_PATTERN, SALIENCY_JSON, SALIENCY_CSV, TRIAL_VIDEO_PATTERN)
    evaluation = evaluation_outputs()
    return (CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, *logs, *evaluation, *saliency,
            *(f"{EVAL_DIR}/{name}" for name in evaluation),
            *(f"{folder}{pattern}" for folder in ("", f"{LOGS_DIR}/", f"{TB_DIR}/", f"{EVAL_DIR}/", f"{VIDEOS_DIR}/",
                                                  f"{EVAL_DIR}/{VIDEOS_DIR}/")
              for pattern in TEMPORARY_PATTERNS))


def eval_folder(run: Path) -> Path:
    """A run folder's ``eval/``: evaluate's default output folder for it."""
    return run / EVAL_DIR


def evaluation_folders(run: Path) -> tuple[Path, Path]:
    """Where a run folder's evaluation, saliency and faithfulness summaries may be: the folder itself (a sweep's
    layout), then its ``eval/`` (evaluate's default output folder)."""
    return run, eval_folder(run)


class UnreadableFile(FlSaliencyError):
    """A run's file that is not what its name says (shown as missing in the report)."""


def value_statistics(values: list[float]) -> dict:
    """Count, mean, std, median, min and max of one results.json column."""
    r = np.asarray(values, np.float64)
    return {"n": int(r.size), "mean": float(r.mean()), "std": float(r.std()), "median": float(np.median(r)),
            "min": float(r.min()), "max": float(r.max())}


def _describe(value) -> str:
    if isinstance(value, (list, tuple)) and value:
        return f"a {type(value).__name__} of {type(value[0]).__name__}"
    return f"a {type(value).__name__}"


def _episode_rewards(values, path: Path) -> list[float]:
    """A 1-D list (or array) of finite numbers, at least one, else UnreadableFile naming what it is."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iuf":
        rewards = values.astype(np.float64).tolist()
    elif isinstance(values, (list, tuple)) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        rewards = [float(v) for v in values]
    else:
        raise UnreadableFile(f"{path}: its rewards are {_describe(values)}, not a list of episode rewards")
    if not rewards:
        raise UnreadableFile(f"{path}: holds no episode rewards (an evaluation plays at least one game)")
    if not np.isfinite(rewards).all():
        bad = sorted({str(r) for r in rewards if not np.isfinite(r)})
        raise UnreadableFile(f"{path}: its rewards include {', '.join(bad)}, not scores of played games")
    return rewards


def read_rewards(folder: Path) -> list[float] | None:
    """Episode rewards from ``results.json`` (ours and run_baselines.py's) or the released runs' ``eval.pkl``.

    No code of the original writes ``eval.pkl``; it is read as a dict with ``rewards`` (as
    results.json) or as the list of episode rewards itself.
    """
    results = folder / RESULTS_FILE
    if results.exists():
        try:
            data = json.loads(results.read_bytes())
        except (UnicodeDecodeError, ValueError) as exc:
            raise UnreadableFile(f"{results}: not JSON ({exc})") from None
        if not isinstance(data, dict) or "rewards" not in data:
            raise UnreadableFile(f"{results}: holds {_describe(data)}, not an evaluation result (an object with 'rewards')")
        return _episode_rewards(data["rewards"], results)
    pickled = folder / PAPER_RESULTS_FILE
    if pickled.exists():
        from fl_saliency.agents.checkpoint import CheckpointError, load_restricted

        try:
            data = load_restricted(pickled, "evaluation file")
        except CheckpointError as exc:
            raise UnreadableFile(str(exc)) from None
        if isinstance(data, dict):
            if "rewards" not in data:
                raise UnreadableFile(f"{pickled}: a dict without 'rewards' (keys: {', '.join(map(str, data))})")
            data = data["rewards"]
        return _episode_rewards(data, pickled)
    return None


def read_saliency(path: Path) -> list[dict]:
    """The records of a ``saliency.pkl`` as ``{trial_number, metrics}``, from either of the original's formats.

    benchmark_atari_head.py writes a list of ``{trial_number, metrics}``; its first version wrote
    ``{TrialNumber, Game, model, network, metrics}`` records. ``metrics`` maps nss, kldiv and sauc
    to per-map arrays (NaN where undefined).
    """
    from fl_saliency.agents.checkpoint import CheckpointError, load_restricted

    try:
        records = load_restricted(path, "saliency file")
    except CheckpointError as exc:
        raise UnreadableFile(str(exc)) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UnreadableFile(f"{path}: holds {_describe(records)}, not a list of per-trial saliency records")
    normalised = []
    for record in records:
        number = record.get("trial_number", record.get("TrialNumber"))
        metrics = record.get("metrics")
        if not isinstance(number, numbers.Integral) or not isinstance(metrics, dict) \
                or not all(m in metrics for m in SALIENCY_METRICS):
            raise UnreadableFile(f"{path}: a record without a trial number and {'/'.join(SALIENCY_METRICS)} metrics "
                                 f"(keys: {', '.join(map(str, record))})")
        try:
            arrays = {m: np.asarray(metrics[m], np.float64).reshape(-1) for m in SALIENCY_METRICS}
        except (TypeError, ValueError) as exc:
            raise UnreadableFile(f"{path}: trial {number}'s metrics are not numbers ({exc})") from None
        normalised.append({"trial_number": int(number), "metrics": arrays})
    return normalised


def _check_number(value, what: str) -> None:
    """A number or null (JSON's undefined), else TypeError naming ``what``."""
    if not isinstance(value, (numbers.Real, type(None))) or isinstance(value, bool):
        raise TypeError(f"a {what} that is {_describe(value)}")


def _check_stats(stats: dict) -> None:
    for key in ("mean", "ci_low", "ci_high"):
        _check_number(stats.get(key), key)


def read_benchmark(path: Path) -> dict[str, dict[str, dict]]:
    """The overall scores of each method and reference of a ``saliency.json`` (run_benchmark's layout;
    one written before methods existed holds its single method's scores at the top level)."""
    try:
        data = json.loads(path.read_bytes())
        methods = data.get("methods") or {data.get("method", "attention"): {"overall": data["overall"]}}
        scored = {kind: {name: result["overall"] for name, result in group.items()}
                  for kind, group in (("methods", methods), ("references", data.get("references") or {}))}
        for group in scored.values():
            for overall in group.values():
                for stats in overall.values():
                    _check_stats(stats)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableFile(f"{path}: not JSON ({exc})") from None
    except (AttributeError, KeyError, TypeError) as exc:
        raise UnreadableFile(f"{path}: not the saliency command's summary ({type(exc).__name__}: {exc})") from None
    return scored


def read_faithfulness(path: Path) -> dict:
    """What the report shows of a ``faithfulness.json`` (fl_saliency/scoring/faithfulness.py): {maps, threshold,
    methods: {name: {deletion_auc, insertion_auc (mean and CI), spearman (after every layer is
    randomised; None where undefined), flagged}}}."""
    try:
        data = json.loads(path.read_bytes())
        methods = {}
        for name, result in data["methods"].items():
            for key in ("deletion_auc", "insertion_auc"):
                _check_stats(result[key])
            # None: run with --no-randomisation
            randomisation = result["randomisation"] or {"spearman": [], "flagged": None}
            spearman = randomisation["spearman"][-1] if randomisation["spearman"] else None
            _check_number(spearman, "Spearman correlation")
            if not isinstance(randomisation["flagged"], bool) and result["randomisation"] is not None:
                raise TypeError(f"a flagged that is {_describe(randomisation['flagged'])}")
            methods[name] = {"deletion_auc": result["deletion_auc"], "insertion_auc": result["insertion_auc"],
                             "spearman": spearman, "flagged": randomisation["flagged"]}
        summary = {"maps": data["maps"], "threshold": data["randomisation_threshold"], "methods": methods}
        _check_number(summary["maps"], "maps")
        _check_number(summary["threshold"], "randomisation_threshold")
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableFile(f"{path}: not JSON ({exc})") from None
    except (AttributeError, KeyError, TypeError) as exc:
        raise UnreadableFile(f"{path}: not the faithfulness command's summary ({type(exc).__name__}: {exc})") from None
    return summary


def read_progress(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(total_timesteps, eprewmean) of every row of a Baselines ``progress.csv``; an empty eprewmean is NaN."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"{path}: not a CSV file ({exc})") from None
    if rows and not {"total_timesteps", "eprewmean"} <= rows[0].keys():
        raise UnreadableFile(f"{path}: no total_timesteps and eprewmean columns")

    def number(row: dict, key: str) -> float:
        cell = row[key]
        try:
            return math.nan if cell in (None, "") else float(cell)
        except ValueError:
            raise UnreadableFile(f"{path}: {key} {cell!r} is not a number") from None

    return (np.array([number(r, "total_timesteps") for r in rows], np.float64),
            np.array([number(r, "eprewmean") for r in rows], np.float64))


def _scalar(value) -> float:
    if value.HasField("tensor"):  # TF2-style summaries keep scalars as tensors
        from tensorboard.util import tensor_util

        return float(tensor_util.make_ndarray(value.tensor))
    return float(value.simple_value)


def read_events(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(total_timesteps, eprewmean) from TensorBoard event files, later files first where they overlap.

    The x-axis is the ``total_timesteps`` scalar logged with each row, not the event's step: the
    original's logger numbers its rows (the update), ours uses the agent steps.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    points: dict[float, float] = {}
    for path in paths:
        rows: dict[int, dict[str, float]] = {}
        try:
            for event in EventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    tag = value.tag.rsplit("/", 1)[-1]
                    if tag in ("total_timesteps", "eprewmean"):
                        rows.setdefault(event.step, {})[tag] = _scalar(value)
        except Exception as exc:  # a corrupt file of a run is reported, not raised
            raise UnreadableFile(f"{path}: not a TensorBoard event file ({type(exc).__name__}: {exc})") from None
        if any("eprewmean" in r for r in rows.values()) and not any("total_timesteps" in r for r in rows.values()):
            raise UnreadableFile(f"{path}: eprewmean without a total_timesteps scalar, so no agent-step axis")
        points.update((r["total_timesteps"], r["eprewmean"]) for r in rows.values() if len(r) == 2)
    steps = np.array(sorted(points), np.float64)
    return steps, np.array([points[s] for s in steps], np.float64)


def read_curve(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The run's learning curve (agent steps, eprewmean) without the rows before its first game, or None."""
    progress = folder / LOGS_DIR / PROGRESS_FILE
    if progress.exists():
        steps, values = read_progress(progress)
    else:
        events = sorted(folder.glob(EVENTS_PATTERN)) + sorted((folder / TB_DIR).glob(EVENTS_PATTERN))
        if not events:
            return None
        steps, values = read_events(events)
    played = ~np.isnan(values) & ~np.isnan(steps)
    return (steps[played], values[played]) if played.any() else None


def read_method_scores(path: Path, method: str | None = None) -> dict[str, dict]:
    """One method's overall scores ({metric: {mean, std, count, ci_low, ci_high, ...}}) from a ``saliency.json``:
    its entry under ``methods`` (the first method's when ``method`` is None), read with read_benchmark; {} if
    the file scored no such method."""
    methods = read_benchmark(path)["methods"]
    if method is None:
        return next(iter(methods.values()), {})
    return methods.get(method, {})


def read_evaluation_summary(eval_dir: Path) -> dict:
    """The evaluation's summary.json (evaluate writes it beside results.json), or {} where there is none
    to read (a sweep's or the paper's runs)."""
    try:
        summary = json.loads((eval_dir / SUMMARY_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}
