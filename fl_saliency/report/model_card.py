"""``fl-saliency export``: an experiment as a folder in the layout of a Hugging Face Hub model repository.

README.md (the model card: YAML metadata with a ``model-index`` of the evaluation's mean reward and the
saliency metrics, then the text), model.pkl, config.json and replay.mp4 (the evaluation's perception video,
attention overlaid, as H.264). Nothing is uploaded: the folder is for the hub's own tools.
"""

from __future__ import annotations

import contextlib
import glob
import math
import shlex
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from fl_saliency.agents.checkpoint import CONFIG_FILE, MODEL_FILE, read_experiment
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import ensure_output_dir, is_disk_full, remove_matching
from fl_saliency.common.settings import check_settings, setting

CARD_FILE = "README.md"
REPLAY_FILE = "replay.mp4"
LIBRARY = "fl-saliency"
SALIENCY_JSON = "saliency.json"
SALIENCY_PICKLE = "saliency.pkl"
USAGE_COMMAND = "fl-saliency evaluate --experiment-dir . --raw-obs"


@dataclass
class ExportSettings:
    experiment_dir: Path = setting(flag="experiment_dir", help="folder with model.pkl and config.json, evaluated (results.json here or "
                                        "in its eval/ folder)")
    out: Path = setting(help="the folder to write: README.md, model.pkl, config.json, replay.mp4")
    replay_steps: int = setting(1000, min=1, help="agent steps of the replay played when the evaluation has no "
                                                  "perception video")
    force: bool = setting(False, help="replace a non-empty --out")

    def __post_init__(self):
        check_settings(self)
        self.experiment_dir, self.out = Path(self.experiment_dir), Path(self.out)


def evaluation_dir(experiment_dir: Path) -> Path:
    """Where the experiment's evaluation is: the folder itself (a sweep's runs) or ``eval/`` (evaluate's default)."""
    from fl_saliency.report.tables import read_rewards

    for folder in (experiment_dir, experiment_dir / "eval"):
        if read_rewards(folder) is not None:
            return folder
    raise FlSaliencyError(f"{experiment_dir} has no evaluation (results.json in it or in eval/); "
                          f"run `fl-saliency evaluate --experiment-dir {shlex.quote(str(experiment_dir))}` first")


def saliency_overall(folders: list[Path]) -> dict | None:
    """The saliency metrics over all maps ({metric: {mean, std, count, ...}}) from saliency.json (its first
    method's) or saliency.pkl; only those with a finite mean and std over at least one map."""
    from fl_saliency.scoring.benchmark import metric_summary
    from fl_saliency.report.tables import read_benchmark, read_saliency

    for folder in folders:
        if (folder / SALIENCY_JSON).is_file():
            overall = next(iter(read_benchmark(folder / SALIENCY_JSON)["methods"].values()), {})
        elif (folder / SALIENCY_PICKLE).is_file():
            overall = metric_summary(read_saliency(folder / SALIENCY_PICKLE))["overall"]
        else:
            continue
        finite = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return {metric: stats for metric, stats in overall.items()
                if finite(stats.get("count")) and stats["count"] >= 1 and finite(stats.get("mean"))
                and finite(stats.get("std"))}
    return None


def model_index(name: str, env_name: str, rewards: dict, saliency: dict | None) -> list[dict]:
    """The hub's ``model-index``: one result per task, each with its dataset and metrics (the mean reward as
    the RL libraries on the hub write it, "mean +/- std")."""
    from fl_saliency.envs.games import parse_game

    results = [{
        "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
        "dataset": {"name": env_name, "type": env_name},
        "metrics": [{"type": "mean_reward", "value": f"{rewards['mean']:.2f} +/- {rewards['std']:.2f}",
                     "name": "mean_reward", "verified": False}],
    }]
    scored = {metric: stats for metric, stats in (saliency or {}).items() if stats.get("count")}
    if scored:
        game = parse_game(env_name)
        results.append({
            "task": {"type": "saliency-prediction", "name": "attention vs human gaze"},
            "dataset": {"name": f"Atari-HEAD {game}", "type": "atari-head"},
            "metrics": [{"type": metric, "value": round(float(stats["mean"]), 4), "name": metric.upper(),
                         "verified": False} for metric, stats in scored.items()],
        })
    return [{"name": name, "results": results}]


def model_card(network: str, env_name: str, rewards: dict, saliency: dict | None) -> str:
    """README.md: YAML metadata between ``---`` lines, then the card's text."""
    name = f"{network}-{env_name.replace('/', '-')}"
    metadata = {
        "library_name": LIBRARY,
        "tags": ["reinforcement-learning", "deep-reinforcement-learning", "atari", "saliency", "attention", "ppo",
                 env_name, network],
        "model-index": model_index(name, env_name, rewards, saliency),
    }
    lines = [
        "---", yaml.safe_dump(metadata, sort_keys=False).rstrip(), "---", "",
        f"# {network} on {env_name}", "",
        f"A PPO agent with the `{network}` network of *Free-Lunch Saliency via Attention in Atari Agents* "
        "(Nikulin et al. 2019), trained with fl-saliency. `model.pkl` holds the weights in the Baselines "
        "format of the original code; `config.json` the training settings.", "",
        "## Evaluation", "",
        f"Mean reward {rewards['mean']:.2f} +/- {rewards['std']:.2f} (std) over {rewards['n']} episode{'s' if rewards['n'] != 1 else ''}.",
        "",
    ]
    if saliency:
        lines += ["| saliency metric (attention vs Atari-HEAD gaze) | mean | std | maps |", "|---|---|---|---|"]
        lines += [f"| {m.upper()} | {s['mean']:.4f} | {s['std']:.4f} | {s['count']} |"
                  for m, s in saliency.items() if s.get("count")]
        lines.append("")
    lines += [
        "## Replay", "",
        f'<video src="{REPLAY_FILE}" controls muted></video>', "",
        "The agent playing, its attention overlaid as a heat map.", "",
        "## Usage", "",
        "In this folder, to play the agent and record what it attends to (results.json and perception.mkv in eval/):",
        "", "```bash", USAGE_COMMAND, "```", "",
    ]
    return "\n".join(lines)


def write_replay(eval_dir: Path, settings: ExportSettings, target: Path) -> None:
    """The evaluation's perception video as H.264; without one, a short evaluation with --raw-obs makes it."""
    from fl_saliency.report.html import browser_copy

    videos = sorted(eval_dir.glob("perception.*"))
    if videos:
        browser_copy(videos[0], target)
        return
    from fl_saliency.evaluation.evaluate import EvalSettings, evaluate

    with tempfile.TemporaryDirectory(prefix="fl-saliency-replay-") as tmp:
        evaluate(EvalSettings(experiment_dir=settings.experiment_dir, output_dir=Path(tmp), num_env=1,
                              max_eplen=settings.replay_steps, raw_obs=True, device="cpu"), echo=lambda text: None)
        browser_copy(next(Path(tmp).glob("perception.*")), target)


def export(settings: ExportSettings, echo=print) -> Path:
    """Write the export folder whole: built beside ``out`` and renamed into place."""
    experiment_dir, out = settings.experiment_dir, settings.out
    if out.exists() and not out.is_dir():
        raise FlSaliencyError(f"--out {out} is a file; name a folder")
    if out.resolve() == experiment_dir.resolve() or out.resolve() in experiment_dir.resolve().parents:
        raise FlSaliencyError(f"--out {out} holds the experiment {experiment_dir}; name a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not settings.force:
        raise FlSaliencyError(f"{out} is not empty; pass --force to replace it")
    experiment, _, _ = read_experiment(experiment_dir)  # refuses a folder without a loadable model.pkl/config.json
    eval_dir = evaluation_dir(experiment_dir)
    from fl_saliency.evaluation.evaluate import value_statistics
    from fl_saliency.report.tables import read_rewards

    rewards = value_statistics(read_rewards(eval_dir))
    saliency = saliency_overall([eval_dir, experiment_dir])

    ensure_output_dir(out.parent)
    stage_prefix = f".{out.name}."
    leftovers = remove_matching(out.parent, [f"{glob.escape(stage_prefix)}*.tmp"])  # a killed export's
    if leftovers:
        echo(f"removed the unfinished folders of an interrupted export from {out.parent}: {', '.join(leftovers)}")
    stage = out.parent / f"{stage_prefix}{uuid.uuid4().hex}.tmp"  # mkdir, not mkdtemp: the umask's permissions
    try:
        stage.mkdir()
        shutil.copyfile(experiment_dir / MODEL_FILE, stage / MODEL_FILE)
        shutil.copyfile(experiment_dir / CONFIG_FILE, stage / CONFIG_FILE)
        write_replay(eval_dir, settings, stage / REPLAY_FILE)
        (stage / CARD_FILE).write_text(model_card(experiment.network, experiment.env_name, rewards, saliency))
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(stage)
        if is_disk_full(exc):  # shutil names the source file; the full device is the destination's
            raise FlSaliencyError(f"no space left on the device of {out.parent} while writing {out}; free space "
                                  f"and run the command again") from None
        raise
    echo(f"{experiment.network} on {experiment.env_name} exported to {out} "
         f"(mean reward {rewards['mean']:.2f} +/- {rewards['std']:.2f}), a model repository for the Hugging Face "
         f"Hub's own upload tools")
    return out
