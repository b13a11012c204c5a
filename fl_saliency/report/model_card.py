"""``fl-saliency export``: an evaluated agent as a folder in the layout of a Hugging Face Hub model repository.

README.md (the model card: YAML metadata with a ``model-index`` of the evaluation's mean reward and the
saliency metrics, then the text), the agent (model.pkl and config.json for this project's networks, the
agent file itself for any other) and replay.mp4 (the evaluation's perception video, a saliency map
overlaid, as H.264). Nothing is uploaded: the folder is for the hub's own tools.
"""

from __future__ import annotations

import contextlib
import glob
import math
import shlex
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fl_saliency.agents.base import check_action_count
from fl_saliency.agents.checkpoint import read_experiment
from fl_saliency.agents.choice import AGENT_HELP, AgentOptions, chosen_path, is_experiment
from fl_saliency.common import rundir
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import ensure_output_dir, is_disk_full, remove_matching
from fl_saliency.common.settings import check_settings, setting

CARD_FILE = "README.md"
REPLAY_FILE = "replay.mp4"
LIBRARY = "fl-saliency"
USAGE_COMMAND = "fl-saliency evaluate --experiment-dir . --raw-obs"


@dataclass
class ExportSettings:
    experiment_dir: Path | None = setting(flag="experiment_dir", metavar="EXPERIMENT_DIR",
                                          help="folder with model.pkl and config.json, evaluated (results.json here "
                                               "or in its eval/ folder); or use --agent")
    out: Path = setting(help="the folder to write: README.md, the agent (model.pkl and config.json, or the agent "
                             "file), replay.mp4")
    replay_steps: int = setting(1000, min=1, help="agent steps of the replay played when the evaluation has no "
                                                  "perception video")
    force: bool = setting(False, help="replace a non-empty --out")
    agent: Path | None = setting(None, metavar="PATH", help=AGENT_HELP + "; a file evaluated into NAME_eval beside "
                                                                        "it (evaluate's default)")
    env_name: str | None = setting(None, help="the agent's game where neither its file nor its evaluation's "
                                              "summary.json records it")
    agent_options: AgentOptions = field(default_factory=AgentOptions)

    def __post_init__(self):
        check_settings(self)
        self.path = chosen_path(self.experiment_dir, self.agent)
        self.out = Path(self.out)


def evaluation_dir(path: Path, experiment: bool) -> Path:
    """Where an agent's evaluation is: an experiment folder itself (a sweep's runs) or its ``eval/`` (evaluate's
    default); for an agent file NAME.EXT, NAME_eval beside it (evaluate's default)."""
    from fl_saliency.evaluation.evaluate import default_eval_dir

    for folder in rundir.evaluation_folders(path) if experiment else (default_eval_dir(path),):
        if rundir.read_rewards(folder) is not None:
            return folder
    if experiment:
        raise FlSaliencyError(f"{path} has no evaluation (results.json in it or in eval/); "
                              f"run `fl-saliency evaluate --experiment-dir {shlex.quote(str(path))}` first")
    raise FlSaliencyError(f"{path} has no evaluation (results.json in {default_eval_dir(path)}); run "
                          f"`fl-saliency evaluate --agent {shlex.quote(str(path))} --env-name GAME` first")


def saliency_overall(folders: list[Path]) -> dict | None:
    """The saliency metrics over all maps ({metric: {mean, std, count, ...}}) from saliency.json (its first
    method's entry under ``methods``) or saliency.pkl; only those with a finite mean and std over at least one map."""
    from fl_saliency.scoring.benchmark import metric_summary

    for folder in folders:
        if (folder / rundir.SALIENCY_JSON).is_file():
            overall = rundir.read_method_scores(folder / rundir.SALIENCY_JSON)
        elif (folder / rundir.SALIENCY_FILE).is_file():
            overall = metric_summary(rundir.read_saliency(folder / rundir.SALIENCY_FILE))["overall"]
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


def model_card(network: str, env_name: str, rewards: dict, saliency: dict | None, agent: dict | None = None,
               video_method: str | None = None) -> str:
    """README.md: YAML metadata between ``---`` lines, then the card's text. ``agent`` (``Agent.describe()``)
    for an agent of another library, whose file the folder holds; ``video_method`` the replay's saliency method."""
    if agent is None:
        title, tags = network, ["attention", "ppo", env_name, network]
        about = (f"A PPO agent with the `{network}` network of *Free-Lunch Saliency via Attention in Atari Agents* "
                 "(Nikulin et al. 2019), trained with fl-saliency. `model.pkl` holds the weights in the Baselines "
                 "format of the original code; `config.json` the training settings.")
        usage = USAGE_COMMAND
    else:
        file = Path(agent["path"]).name
        title = f"{agent['library']}-{agent['algorithm']}"
        tags = [agent["library"], agent["algorithm"].lower(), env_name, *filter(None, [agent["network"]])]
        network = f" with the `{agent['network']}` network" if agent["network"] else " with its own network"
        about = (f"A {agent['algorithm']} agent{network} ({agent['library']}), its saliency scored with fl-saliency. "
                 f"`{file}` is the agent file as it was given to fl-saliency: {agent['n_actions']} actions "
                 f"({agent['scores_kind']}), observations {agent['observation']}.")
        usage = f"fl-saliency evaluate --agent {shlex.quote(file)} --env-name {shlex.quote(env_name)} --raw-obs"
    name = f"{title}-{env_name.replace('/', '-')}"
    metadata = {
        "library_name": LIBRARY,
        "tags": ["reinforcement-learning", "deep-reinforcement-learning", "atari", "saliency", *tags],
        "model-index": model_index(name, env_name, rewards, saliency),
    }
    shown = "attention" if video_method in (None, "attention") else f"{video_method} saliency"
    lines = [
        "---", yaml.safe_dump(metadata, sort_keys=False).rstrip(), "---", "",
        f"# {title} on {env_name}", "", about, "",
        "## Evaluation", "",
        f"Mean reward {rewards['mean']:.2f} +/- {rewards['std']:.2f} (std) over {rewards['n']} episode{'s' if rewards['n'] != 1 else ''}.",
        "",
    ]
    if saliency:
        compared = "attention" if agent is None else "saliency"
        lines += [f"| saliency metric ({compared} vs Atari-HEAD gaze) | mean | std | maps |", "|---|---|---|---|"]
        lines += [f"| {m.upper()} | {s['mean']:.4f} | {s['std']:.4f} | {s['count']} |"
                  for m, s in saliency.items() if s.get("count")]
        lines.append("")
    lines += [
        "## Replay", "",
        f'<video src="{REPLAY_FILE}" controls muted></video>', "",
        f"The agent playing, its {shown} overlaid as a heat map.", "",
        "## Usage", "",
        "In this folder, to play the agent and record what it sees (results.json and perception.mkv):",
        "", "```bash", usage, "```", "",
    ]
    return "\n".join(lines)


def videos_of(eval_dir: Path) -> list[Path]:
    return sorted(eval_dir.glob(rundir.perception_file("*")))


def write_replay(eval_dir: Path, settings: ExportSettings, target: Path, env_name: str | None = None) -> None:
    """The evaluation's perception video as H.264; without one, a short evaluation with --raw-obs makes it
    (of ``env_name``, for an agent whose file does not record its game)."""
    from fl_saliency.report.html import browser_copy

    videos = videos_of(eval_dir)
    if videos:
        browser_copy(videos[0], target)
        return
    from fl_saliency.evaluation.evaluate import EvalSettings, evaluate

    with tempfile.TemporaryDirectory(prefix="fl-saliency-replay-") as tmp:
        evaluate(EvalSettings(experiment_dir=settings.experiment_dir, agent=settings.agent, env_name=env_name,
                              agent_options=settings.agent_options, output_dir=Path(tmp), num_env=1, max_eplen=settings.replay_steps, raw_obs=True,
                              device="cpu"), echo=lambda text: None)
        browser_copy(next(Path(tmp).glob(rundir.perception_file("*"))), target)


def export(settings: ExportSettings, echo=print) -> Path:
    """Write the export folder whole: built beside ``out`` and renamed into place."""
    path, out = settings.path, settings.out
    experiment = is_experiment(path)
    experiment_dir = path if path.is_dir() or not experiment else path.parent
    if out.exists() and not out.is_dir():
        raise FlSaliencyError(f"--out {out} is a file; name a folder")
    if out.resolve() == experiment_dir.resolve() or out.resolve() in experiment_dir.resolve().parents:
        raise FlSaliencyError(f"--out {out} holds the {'experiment' if experiment else 'agent'} {experiment_dir}; "
                              "name a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not settings.force:
        raise FlSaliencyError(f"{out} is not empty; pass --force to replace it")
    if experiment:
        run, _, _ = read_experiment(experiment_dir)  # refuses a folder without a loadable model.pkl/config.json
        agent, network, env_name = None, run.network, run.env_name
    else:
        from fl_saliency.agents.loader import load_agent

        # refuses a file that is no agent, in one line
        agent, network = load_agent(path, **settings.agent_options.load_options()).describe(), None
    eval_dir = evaluation_dir(experiment_dir, experiment)
    rewards = rundir.value_statistics(rundir.read_rewards(eval_dir))
    saliency = saliency_overall([eval_dir, experiment_dir] if experiment else [eval_dir])
    evaluated = rundir.read_evaluation_summary(eval_dir)
    if agent is not None:
        env_name = settings.env_name or agent["env_name"] or evaluated.get("env_name")
        if not env_name:
            raise FlSaliencyError(f"neither {path} nor its evaluation's summary.json records its game; "
                                  "name it with --env-name")
        check_action_count(agent["n_actions"], env_name, str(path), agent["n_actions"] == 18)
        network = agent["network"]

    ensure_output_dir(out.parent)
    stage_prefix = f".{out.name}."
    leftovers = remove_matching(out.parent, [f"{glob.escape(stage_prefix)}*.tmp"])  # a killed export's
    if leftovers:
        echo(f"removed the unfinished folders of an interrupted export from {out.parent}: {', '.join(leftovers)}")
    stage = out.parent / f"{stage_prefix}{uuid.uuid4().hex}.tmp"  # mkdir, not mkdtemp: the umask's permissions
    try:
        stage.mkdir()
        if experiment:
            for name in (rundir.MODEL_FILE, rundir.CONFIG_FILE):
                shutil.copyfile(experiment_dir / name, stage / name)
        else:
            shutil.copyfile(path, stage / path.name)
        write_replay(eval_dir, settings, stage / REPLAY_FILE, None if experiment else env_name)
        # The evaluation's video, or the replay played here with evaluate's default method for the agent.
        shown = evaluated.get("video_method") if videos_of(eval_dir) else "attention" if experiment else "gradient"
        (stage / CARD_FILE).write_text(model_card(network, env_name, rewards, saliency, agent, shown))
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
    label = network if agent is None else f"{agent['library']} {agent['algorithm']}"
    echo(f"{label} on {env_name} exported to {out} "
         f"(mean reward {rewards['mean']:.2f} +/- {rewards['std']:.2f}), a model repository for the Hugging Face "
         f"Hub's own upload tools")
    return out
