"""Scoring an agent's saliency maps against Atari-HEAD gaze, trial by trial (protocol.md section 5).

The agent is one of this project's networks or any agent ``fl_saliency.agents.load_agent`` reads;
its game is its experiment's, or ``--env-name``. For each trial of the game: the trial's frames go
through the agent's preprocessing, each saliency method (fl_saliency.methods; default the network's
own attention) gives one map per observation the network acts on, explaining its highest-scoring
action (the policy's most probable one);
the maps are on 84x84 (attention rendered from its grid), divided by the trial's maximum
(resized to 210x160 for the raw resolution), and each is scored against the fixations of its
label rows with the original's NSS, KL and shuffled AUC and the MIT/Tuebingen set (AUC-Judd, CC,
SIM, MIT KL, information gain over the game's centre bias). The references of ``references.py``
are scored by the same code. Outputs: ``saliency.pkl`` (the original's records: NSS, KL, sAUC of
the attention maps; ``saliency.<method>.pkl`` for the other methods), ``saliency.json`` and
``saliency.csv`` (every metric of each method and each reference: mean, std, count and a 95%
bootstrap confidence interval of the mean over maps, per trial and overall).
"""

from __future__ import annotations

import csv
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from fl_saliency.common.rundir import (SALIENCY_CSV, SALIENCY_JSON, method_saliency_files, saliency_file,
                                       trial_video_file)
from fl_saliency.scoring import gaze_metrics as metrics, references
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError, Trial, check_frame_counts
from fl_saliency.scoring.atari_head.env import agent_observations
from fl_saliency.scoring.atari_head.gaze import (ALIGNMENTS, PROCESSED_SHAPE, RAW_SHAPE, fixation_map, num_maps,
                                        trial_gaze)
from fl_saliency.agents.attention_maps import RAW_HEIGHT, RAW_WIDTH, normalise_common_max, render_input, resize
from fl_saliency.agents.base import Agent
from fl_saliency.agents.choice import (ENV_NAME_HELP, AgentOptions, agent_label, agent_setting, chosen_path,
                                       experiment_dir_setting, load_chosen, scored_game)
from fl_saliency.common.device import device_setting, resolve_device
from fl_saliency.common.errors import FlSaliencyError, warn
from fl_saliency.common.io import atomic_files, locked_output_dir, read_ahead, remove_matching
from fl_saliency.common.progress import progress_bar
from fl_saliency.common.settings import check_settings, setting
from fl_saliency.envs.games import parse_game
from fl_saliency.methods import METHODS, check_agent_methods, check_methods, greedy_actions, parse_methods
from fl_saliency.scoring.gaze_metrics import METRICS, ORIGINAL_METRICS, SAUC_MODES, parse_metrics
from fl_saliency.scoring.references import REFERENCES

# What a killed run leaves: the temporaries of the files above, of saliency.<method>.pkl and of the trial videos.
LEFTOVERS = (".saliency.*.tmp", ".trial_*.mp4.tmp.mp4")
CONFIDENCE, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 0.95, 1000, 0
SIGMA = {"raw": 5.0, "processed": 2.0}


@dataclass
class SaliencySettings:
    """The original benchmark_atari_head.py flags, plus alignment, sAUC mode, trial subset and video."""

    experiment_dir: Path | None = experiment_dir_setting()
    atari_head_dir: Path = setting(help="Atari-HEAD as downloaded (release 2 or 4) or extracted")
    output_dir: Path = setting(help="where saliency.pkl, saliency.json and saliency.csv go")
    eval_seed: int = setting(1000, min=0, help="kept for the original's interface (affects nothing)")
    processed_obs: bool = setting(False, help="score at 84x84 instead of the raw 210x160")
    progress: bool = setting(False, help="show a progress bar over trials (without a terminal: a line every 30 s)")
    gaze_alignment: str = setting("original", choices=ALIGNMENTS,
                                  help="original: the paper's rows (one PNG early); displayed: the PNGs the stack shows")
    sauc_mode: str = setting("exact", choices=SAUC_MODES,
                             help="exact: count-weighted AUC; sampled: the original's 100 random draws, bit for bit")
    trials: list[int] | None = setting(None, min=0, metavar="N,N,...", help="score only these trials (comma-separated)")
    video: bool = setting(False, help="per trial, an MP4 of frames, a method's map and gaze")
    video_method: str | None = setting(None, metavar="M", help="the method whose maps --video shows "
                                                               "(one of --method; default: the first)")
    batch_size: int = setting(64, min=1, help="observations per forward pass of the network")
    device: str = device_setting()
    force: bool = setting(False, help="overwrite a saliency.pkl already in --output-dir")
    agent: Path | None = agent_setting()
    env_name: str | None = setting(None, help=ENV_NAME_HELP)
    agent_options: AgentOptions = field(default_factory=AgentOptions)
    method: list[str] = setting(default_factory=lambda: ["attention"], parse=parse_methods, metavar="M,M,...",
                                help="saliency methods, comma-separated, sharing one pass over the frames: "
                                     + ", ".join(METHODS))
    references: list[str] | None = setting(None, choices=REFERENCES, metavar="NAME,NAME,...",
                                           help="also score these reference maps (comma-separated): "
                                                + ", ".join(REFERENCES))
    metric: list[str] | None = setting(None, parse=parse_metrics, metavar="MODULE:FUNCTION,...",
                                       help="also score these gaze metrics, metric(saliency_map, gaze) -> float "
                                            "(fl_saliency.scoring.Gaze), beside the built-in ones")

    def __post_init__(self):
        check_settings(self)
        chosen_path(self.experiment_dir, self.agent)
        check_methods(self.method)
        if self.video_method is not None and self.video_method not in self.method:
            raise FlSaliencyError(f"--video-method {self.video_method} is not one of --method {','.join(self.method)}")
        if self.video_method is not None and not self.video:
            warn(f"--video-method {self.video_method} has no effect without --video")

    @property
    def resolution(self) -> str:
        return "processed" if self.processed_obs else "raw"


def trial_maps(model: Agent, frames, methods: Sequence[str], batch_size: int,
               device: torch.device) -> dict[str, torch.Tensor]:
    """Each method's maps for every observation of the trial the network acts on, from one pass over
    its frames: the grid attention (K, g, g) for ``attention`` (rendered when scored), (K, 84, 84) else."""
    maps, batch = {method: [] for method in methods}, []

    def flush():
        obs = torch.from_numpy(np.stack(batch)).to(device)
        with torch.no_grad():
            logits, _, attention = model(obs)
        for method in methods:
            m = attention if method == "attention" else METHODS[method](model, obs, greedy_actions(logits))
            maps[method].append(m.float().cpu())
        batch.clear()

    for obs in agent_observations(frames):
        batch.append(obs)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    empty = lambda method: (model.geometry.grid,) * 2 if method == "attention" else (84, 84)
    return {method: torch.cat(m) if m else torch.zeros(0, *empty(method)) for method, m in maps.items()}


def on_input(maps: torch.Tensor, model: Agent, on_grid: bool) -> torch.Tensor:
    return render_input(maps, model.geometry) if on_grid else maps


def trial_peak(maps: torch.Tensor, model: Agent, chunk: int = 256, on_grid: bool = True) -> float:
    """The maximum of all the trial's maps on 84x84 (grid maps rendered): the common scale of the trial."""
    return max((float(on_input(maps[i : i + chunk], model, on_grid).max())
                for i in range(0, len(maps), chunk)), default=0.0)


def saliency_maps(maps: torch.Tensor, model: Agent, peak: float, resolution: str, chunk: int = 256,
                  on_grid: bool = True):
    """Yield the trial's maps on 84x84 (grid maps rendered), divided by ``peak``, at the scoring resolution (float64)."""
    for i in range(0, len(maps), chunk):
        rendered = normalise_common_max(on_input(maps[i : i + chunk], model, on_grid), peak)
        if resolution == "raw":
            rendered = resize(rendered, RAW_HEIGHT, RAW_WIDTH)
        yield from rendered.double().numpy()


def score_trial(model: Agent, dataset: AtariHeadDataset, trial: Trial, settings: SaliencySettings,
                device: torch.device, baseline: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per method, per-map metrics (float64, NaN where undefined) for one trial; ``baseline`` the
    centre bias of the information gain.

    Memory stays small however long the trial: the grid maps and gaze samples are kept, while
    full-resolution saliency and fixation maps are made one at a time.
    """
    labels = dataset.labels(trial)
    n_frames = len(labels.gaze)
    counted = {"frames": 0}

    def frames():
        counted["frames"] = 0
        for frame in read_ahead(dataset.frames(trial)):
            counted["frames"] += 1
            yield frame

    maps = trial_maps(model, frames, settings.method, settings.batch_size, device)
    check_frame_counts(trial, counted["frames"], n_frames)
    k_maps = num_maps(n_frames)
    if len(maps[settings.method[0]]) != k_maps:
        raise DatasetError(f"trial {trial.number}: {len(maps[settings.method[0]])} observations for {k_maps} maps")

    gaze = [trial_gaze(labels.gaze, k, settings.gaze_alignment) for k in range(k_maps)]
    result = {}
    for method, m in maps.items():
        on_grid = method == "attention"
        peak = trial_peak(m, model, on_grid=on_grid)
        # A rendered map is finite exactly when its grid map and the trial's peak are.
        finite = torch.isfinite(m).flatten(1).all(1).numpy() & np.isfinite(peak)
        result[method] = score_maps(saliency_maps(m, model, peak, settings.resolution, on_grid=on_grid), gaze,
                                    settings.resolution, settings.sauc_mode, finite, baseline)
        if settings.video and method == (settings.video_method or settings.method[0]):
            write_trial_video(settings.output_dir / trial_video_file(trial.number), dataset, trial,
                              saliency_maps(m, model, peak, "raw", on_grid=on_grid), gaze)
    return result


def score_maps(smaps: Iterable[np.ndarray], gaze: list[np.ndarray], resolution: str,
               sauc_mode: str = "exact", finite: Sequence[bool] | None = None,
               baseline: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` for each of a trial's K saliency maps (float64, NaN where
    undefined). NSS, KL and sAUC as the original's benchmark: map k against the fixation map of
    its gaze samples ``gaze[k]``, its sAUC negatives the fixations of the 10 maps
    ``other_maps_for_sauc`` draws; the MIT/Tuebingen set against the same fixation map, the
    information gain over ``baseline`` (NaN without one). ``finite[k]`` False marks a map known
    to hold a non-finite value: it draws no other maps. The maps are consumed one at a time; a
    fixation map is built only when needed."""
    finite = np.ones(len(gaze), bool) if finite is None else finite
    counts = [int(fixation_map(g, resolution).sum()) if ok else 0 for g, ok in zip(gaze, finite)]
    return metrics.score_each(smaps, lambda k: fixation_map(gaze[k], resolution), counts, SIGMA[resolution],
                              baseline=baseline, sauc_mode=sauc_mode)


def write_trial_video(path: Path, dataset: AtariHeadDataset, trial: Trial, smaps, gaze: list[np.ndarray]) -> None:
    """One frame per scored map: the newest PNG of observation k, its saliency map as a heat map, the human gaze as dots."""
    import cv2

    from fl_saliency.evaluation.perception_video import VideoWriter, heat_overlay

    writer = VideoWriter(path, RAW_WIDTH, RAW_HEIGHT, "mp4", fps=15)
    try:
        smaps = iter(smaps)
        k = 0
        for n, frame in enumerate(dataset.frames(trial), start=1):
            if k >= len(gaze) or n != max(1, 4 * k + 1):
                continue
            shown = heat_overlay(frame[None], next(smaps)[None])[0]
            for x, y in gaze[k]:
                cv2.circle(shown, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
            writer.write(shown)
            k += 1
        writer.close()
    except BaseException:
        writer.abort()
        raise


def game_gaze_counts(dataset: AtariHeadDataset, trials: Sequence[Trial], resolution: str) -> dict[int, np.ndarray]:
    """Per trial of the game, the fixation counts of all its gaze samples: what the centre bias
    is made of. A trial whose labels cannot be read adds nothing (scoring it reports why)."""
    counts = {}
    for trial in trials:
        try:
            gaze = [g for g in dataset.labels(trial).gaze if len(g)]
        except DatasetError:
            continue
        counts[trial.number] = fixation_map(np.concatenate(gaze) if gaze else np.zeros((0, 2)), resolution)
    return counts


def leave_one_out_center_bias(game_counts: dict[int, np.ndarray], trial_number: int, resolution: str) -> np.ndarray:
    shape = RAW_SHAPE if resolution == "raw" else PROCESSED_SHAPE
    others = [c for number, c in game_counts.items() if number != trial_number]
    return references.center_bias(others, shape, SIGMA[resolution])


def score_references(dataset: AtariHeadDataset, trial: Trial, settings: SaliencySettings,
                     center_bias: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per reference of ``settings.references``, its per-map metrics on this trial (``score_maps``)."""
    gaze_per_row = dataset.labels(trial).gaze
    k_maps = num_maps(len(gaze_per_row))
    gaze = [trial_gaze(gaze_per_row, k, settings.gaze_alignment) for k in range(k_maps)]
    sigma = SIGMA[settings.resolution]
    maps = {
        "uniform": lambda: references.uniform_maps(k_maps, center_bias.shape, seed=trial.number),
        "center-bias": lambda: (center_bias for _ in range(k_maps)),
        "gaze-neighbour": lambda: references.gaze_neighbour_maps(gaze_per_row, k_maps, settings.gaze_alignment,
                                                                 settings.resolution, sigma),
    }
    return {name: score_maps(maps[name](), gaze, settings.resolution, settings.sauc_mode, baseline=center_bias)
            for name in settings.references or ()}


def metric_summary(records: list[dict], confidence_intervals: bool = False) -> dict:
    """Mean, std and count per metric (those the records hold, in ``METRICS`` order) for each trial
    and over all maps of all trials (NaN excluded); with ``confidence_intervals`` also the 95%
    percentile bootstrap interval of the mean over maps (``metrics.bootstrap_ci``, fixed seed)."""
    names = [m for m in METRICS if records and m in records[0]["metrics"]] or list(ORIGINAL_METRICS)

    def stats(values):
        mean, std, count = metrics.nanmean_std_count(values)
        # JSON has no NaN: a metric with no defined value has no mean (null), never 0.
        out = {"mean": mean if count else None, "std": std if count else None, "count": count}
        if confidence_intervals:
            low, high = metrics.bootstrap_ci(values, CONFIDENCE, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
            out.update(ci_low=None if np.isnan(low) else low, ci_high=None if np.isnan(high) else high)
        return out

    per_trial = {str(r["trial_number"]): {m: stats(r["metrics"][m]) for m in names} for r in records}
    overall = {m: stats(np.concatenate([r["metrics"][m] for r in records]) if records else np.zeros(0)) for m in names}
    return {"overall": overall, "trials": per_trial}


CSV_HEADER = ["trial", "resolution", "method", "metric", "mean", "std", "count", "ci_low", "ci_high"]


def summary_csv(summary: dict, resolution: str) -> str:
    """One row per (method, trial or ``overall``, metric): each method under its name, then each
    reference under its name."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    scored = [*summary["methods"].items(), *summary.get("references", {}).items()]
    for method, result in scored:
        for trial, values in [*result["trials"].items(), ("overall", result["overall"])]:
            for metric, v in values.items():
                writer.writerow([trial, resolution, method, metric, v["mean"], v["std"], v["count"],
                                 v.get("ci_low"), v.get("ci_high")])
    return out.getvalue()


def overall_line(overall: dict) -> str:
    return ", ".join(f"{m.upper()} {v['mean']:.3f} ± {v['std']:.3f} (n={v['count']})" if v["count"]
                     else f"{m.upper()} undefined (n=0)" for m, v in overall.items())


def run_benchmark(settings: SaliencySettings, echo=print) -> dict:
    """Score every trial of the experiment's game; writes saliency[.<method>].pkl, .json, .csv and returns the summary."""
    with locked_output_dir(settings.output_dir):
        return _score(settings, echo)


def _score(settings: SaliencySettings, echo) -> dict:
    out = settings.output_dir
    written = [*map(saliency_file, settings.method), SALIENCY_JSON, SALIENCY_CSV]
    finished = [name for name in written if (out / name).exists()]
    if finished and not settings.force:
        raise FlSaliencyError(f"{out} already holds {finished[0]}; pass --force to overwrite it")
    device = resolve_device(settings.device)
    model, _ = load_chosen(chosen_path(settings.experiment_dir, settings.agent), settings.agent_options)
    env_name = scored_game(model, settings.env_name)
    check_agent_methods(model, settings.method)
    model.to(device).eval()
    dataset = AtariHeadDataset(settings.atari_head_dir)
    game_trials = trials = dataset.trials(parse_game(env_name))
    if settings.trials:
        trials = [t for t in trials if t.number in settings.trials]
        if not trials:
            raise FlSaliencyError(f"none of trials {settings.trials} is a {env_name} trial in {settings.atari_head_dir}")
        absent = [n for n in dict.fromkeys(settings.trials) if n not in {t.number for t in trials}]
        if absent:
            warn(f"trials {','.join(map(str, absent))} are not {env_name} trials in "
                 f"{settings.atari_head_dir}: scoring {','.join(str(t.number) for t in trials)}")
    leftovers = remove_matching(out, LEFTOVERS)
    if leftovers:
        echo(f"removed the unfinished files of an interrupted run from {out}: {', '.join(leftovers)}")

    game_counts = game_gaze_counts(dataset, game_trials, settings.resolution)
    records, failures = {method: [] for method in settings.method}, {}
    reference_records = {name: [] for name in settings.references or ()}
    with progress_bar(len(trials), "trial", show=settings.progress) as bar:
        for trial in trials:
            try:
                center_bias = leave_one_out_center_bias(game_counts, trial.number, settings.resolution)
                scores = score_trial(model, dataset, trial, settings, device, center_bias)
                referenced = score_references(dataset, trial, settings, center_bias)
                for method, metrics_of_maps in scores.items():
                    records[method].append({"trial_number": trial.number, "metrics": metrics_of_maps})
                for name, result in referenced.items():
                    reference_records[name].append({"trial_number": trial.number, "metrics": result})
            except DatasetError as exc:
                failures[str(trial.number)] = str(exc)
                echo(f"skipped {exc}")  # the message starts with the trial
            bar.update()
    if not records[settings.method[0]]:  # each reason was echoed above: not repeated here
        raise FlSaliencyError(f"no trial could be scored: all {len(failures)} skipped")

    methods = {method: metric_summary(method_records, confidence_intervals=True)
               for method, method_records in records.items()}
    # The top level holds the first method's scores (attention's by default), as before methods existed.
    summary = {
        "experiment_dir": str(settings.experiment_dir) if settings.experiment_dir else None,
        "agent": model.describe(), "network": model.source.network, "env_name": env_name,
        "resolution": settings.resolution, "gaze_alignment": settings.gaze_alignment, "sauc_mode": settings.sauc_mode,
        "confidence_interval": {"level": CONFIDENCE, "method": "percentile bootstrap over maps",
                                "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
        "method": settings.method[0], **methods[settings.method[0]], "methods": methods,
        "references": {name: metric_summary(r, confidence_intervals=True) for name, r in reference_records.items()},
        "failed_trials": failures,
    }
    # One set: a failure (a full disk) leaves none of them, so that running the command again is not refused.
    with atomic_files(out) as files:
        files.write_json(SALIENCY_JSON, summary)
        with files.open(SALIENCY_CSV) as f:
            f.write(summary_csv(summary, settings.resolution))
        for method, method_records in records.items():  # last: the files a rerun is refused for
            original = [{"trial_number": r["trial_number"], "metrics": {m: r["metrics"][m] for m in ORIGINAL_METRICS}}
                        for r in method_records]
            with files.open(saliency_file(method), "wb") as f:
                pickle.dump(original, f)
    # Those of methods a replaced (--force) run scored, no longer in saliency.json.
    stale = [path for path in method_saliency_files(out)
             if path.is_file() and path.name not in written]
    for path in stale:
        path.unlink()
    if stale:
        echo(f"removed the scores of the replaced run: {', '.join(path.name for path in stale)}")
    for method, method_summary in methods.items():
        echo(f"{agent_label(model)} on {env_name}, {method}, {len(records[method])} trials "
             f"({settings.resolution}): " + overall_line(method_summary["overall"])
             + (f"; {len(failures)} trials failed" if failures else "") + f"; results in {out / saliency_file(method)}")
    for name, result in summary["references"].items():
        echo(f"reference {name}: " + overall_line(result["overall"]))
    return summary
