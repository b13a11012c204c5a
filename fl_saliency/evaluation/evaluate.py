"""Evaluation of a trained model: ``results.json``, ``summary.json`` and the perception video (docs/spec/protocol.md, section 4).

Every environment runs until it has finished ``evals_per_env`` full games (Monitor
semantics); environments that are done keep stepping (their extra games count only in
``done_per_env``) until all are, and all environments go through the network in one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fl_saliency.agents.base import Agent, check_action_count
from fl_saliency.agents.checkpoint import Experiment
from fl_saliency.agents.choice import (AgentOptions, agent_label, agent_setting, chosen_path, experiment_dir_setting,
                                       game_of, is_experiment, load_chosen)
from fl_saliency.agents.inference import autocast, inference_threads, precision_setting
from fl_saliency.common.device import device_setting, resolve_device
from fl_saliency.common.errors import FlSaliencyError, warn
from fl_saliency.common.rundir import (RESULTS_FILE, SUMMARY_FILE, VIDEOS_DIR, eval_folder, evaluation_outputs,
                                       perception_file, value_statistics)
from fl_saliency.common.io import TEMPORARY_PATTERNS, atomic_files, locked_output_dir, matching, remove_matching
from fl_saliency.common.progress import progress_bar
from fl_saliency.envs import backend_setting, make_pipelined_vec_env, workers_setting
from fl_saliency.methods import METHODS, check_agent_methods, check_methods, parse_method
from fl_saliency.ppo.algorithm import sample_actions
from fl_saliency.envs.protocol import (Protocol, full_action_space_setting, protocol_of, protocol_of_config,
                                  repeat_action_probability_setting)
from fl_saliency.common.settings import check_settings, setting
from fl_saliency.common.stopping import interrupt_on_stop_signals
from fl_saliency.evaluation.perception_video import CODECS



@dataclass
class EvalSettings:
    """The original run_baselines.py flags and defaults, plus device, backend, video and policy options."""

    experiment_dir: Path | None = experiment_dir_setting()
    output_dir: Path | None = setting(None, help="where results.json (and perception.mkv) go; default "
                                                 "EXPERIMENT_DIR/eval, or NAME_eval beside an agent file NAME.EXT")
    num_env: int = setting(4, min=1, help="parallel environments (paper: 16)")
    evals_per_env: int = setting(1, min=1, help="full games counted per environment (paper: 512)")
    eval_seed: int = setting(1000, min=0, help="env rank r is seeded eval_seed + r")
    max_eplen: int | None = setting(108_000, min=1, help="truncate a game after this many steps")
    raw_obs: bool = setting(False, help="video of the 210x160 screens with a saliency map (--video-method)")
    processed_obs: bool = setting(False, help="video of the 84x84 network input with a saliency map (--video-method)")
    video_method: str | None = setting(None, metavar="M", parse=parse_method,
                                       help="the saliency method the video overlays, explaining the actions taken: "
                                            f"{', '.join(METHODS)} or package.module:function (default: the "
                                            "network's own attention for this project's networks, gradient for any "
                                            "other agent)")
    progress: bool = setting(False, help="show a progress bar (without a terminal: a line every 30 s)")
    deterministic: bool = setting(False, help="argmax actions (the original samples from the policy's softmax; "
                                              "agents of Q-values or unnamed scores always act greedily)")
    video_format: str = setting("mkv", choices=tuple(CODECS), help="mkv: lossless FFV1; mp4: H.264")
    video_env: int | None = setting(None, min=0, help="record only this environment instead of all, tiled")
    breakout_infinite: bool = setting(False, help="BreakoutInfinite: bricks respawn after 864")
    env_name: str | None = setting(None, help="the game to play: required for an agent whose file does not record "
                                              "it; for an experiment, this environment id and its protocol instead "
                                              "of the run's (e.g. ALE/Breakout-v5 for a v4 model)")
    repeat_action_probability: float | None = repeat_action_probability_setting()
    full_action_space: bool = full_action_space_setting()
    env_backend: str = backend_setting()
    env_workers: int | None = workers_setting()
    precision: str = precision_setting()
    device: str = device_setting()
    force: bool = setting(False, help="overwrite results already in --output-dir")
    video_recorder: bool = setting(False, help="Baselines' VecVideoRecorder: plain gameplay MP4s of every step "
                                               "(all environments tiled) under OUTPUT_DIR/videos/, a new file every "
                                               "max_eplen + 1 frames")
    agent: Path | None = agent_setting()
    agent_options: AgentOptions = field(default_factory=AgentOptions)

    def __post_init__(self):
        check_settings(self)
        path = self.agent_path  # one line unless exactly one of --agent and --experiment-dir is given
        if self.output_dir is None:
            self.output_dir = default_eval_dir(path, self.experiment_dir is not None)
        if self.video_env is not None and self.video_env >= self.num_env:
            raise FlSaliencyError(f"--video-env {self.video_env} is not one of the {self.num_env} environments")
        if self.video_env is not None and not self.video:
            warn(f"--video-env {self.video_env} has no effect without a video (--raw-obs or --processed-obs)")
        if self.video_method is not None:
            check_methods([self.video_method])
            if not self.video:
                warn(f"--video-method {self.video_method} has no effect without a video (--raw-obs or --processed-obs)")

    @property
    def agent_path(self) -> Path:
        return chosen_path(self.experiment_dir, self.agent)

    @property
    def video(self) -> bool:
        return self.raw_obs or self.processed_obs

    def protocol(self, experiment: Experiment | None, agent: Agent | None = None) -> tuple[str, Protocol]:
        """The environment id and protocol to play: the run's (config.json), or ``env_name``'s (for an agent
        without an experiment, ``env_name`` or the game its file records); either with the sticky-action
        probability or full action set asked for here."""
        if self.env_name is None and experiment is not None:
            env_name, protocol = experiment.env_name, protocol_of_config(experiment.config)
        else:
            env_name = game_of(agent, self.env_name)
            protocol = protocol_of(env_name)
        return env_name, protocol.overridden(self.repeat_action_probability, self.full_action_space)


def default_eval_dir(path: Path, experiment_dir: bool = False) -> Path:
    """Where an agent's evaluation goes by default: EXPERIMENT_DIR/eval (``path`` given as --experiment-dir, or
    an experiment folder or its model.pkl given as --agent), or NAME_eval beside an agent file NAME.EXT."""
    if experiment_dir:
        return eval_folder(path)
    if is_experiment(path):
        return eval_folder(path if path.is_dir() else path.parent)
    return path.with_name(f"{path.stem}_eval")


def video_method_of(settings: EvalSettings, agent: Agent) -> str:
    """The method the perception video shows: the one asked for, else the network's own attention where it has
    the geometry to render it (all of this project's networks, ``cnn``'s all zero), else ``gradient``."""
    method = settings.video_method or ("attention" if agent.geometry is not None else "gradient")
    check_agent_methods(agent, [method])
    return method


@dataclass
class EpisodeLog:
    """The counted Monitor episodes of each environment, and how many each finished in all."""

    evals_per_env: int
    episodes: list[list[dict]] = field(default_factory=list)
    done_per_env: np.ndarray | None = None

    def add(self, rank: int, episode: dict) -> None:
        self.done_per_env[rank] += 1
        if len(self.episodes[rank]) < self.evals_per_env:
            self.episodes[rank].append(episode)

    @property
    def finished(self) -> np.ndarray:
        return self.done_per_env >= self.evals_per_env

    def results(self) -> dict:
        """results.json as the original: float32 values grouped by environment, then done_per_env."""
        flat = [episode for env_episodes in self.episodes for episode in env_episodes]
        column = lambda key: np.array([e[key] for e in flat], np.float32).tolist()
        return {"rewards": column("r"), "lengths": column("l"), "elapsed_time": column("t"),
                "done_per_env": self.done_per_env.tolist()}


def prepare_output_dir(settings: EvalSettings, echo=print) -> None:
    """Refuse to overwrite results unless told; remove what a killed evaluation left half-written."""
    out = settings.output_dir
    if (out / RESULTS_FILE).is_file() and not settings.force:
        raise FlSaliencyError(f"{out} already holds {RESULTS_FILE}; pass --force to overwrite it")
    leftovers = remove_matching(out, TEMPORARY_PATTERNS)
    if leftovers:
        echo(f"removed the unfinished files of an interrupted run from {out}: {', '.join(leftovers)}")


def evaluate(settings: EvalSettings, echo=print) -> dict:
    """Run the evaluation; writes results.json, summary.json (and the videos) and returns the summary."""
    device = resolve_device(settings.device)
    agent, experiment = load_chosen(settings.agent_path, settings.agent_options)
    agent.to(device).eval()
    env_name, protocol = settings.protocol(experiment, agent)
    check_action_count(agent.n_actions, env_name, f"the {'model' if experiment else 'agent'}",
                       protocol.full_action_space, name_the_set=False)
    video_method = video_method_of(settings, agent) if settings.video else None
    with locked_output_dir(settings.output_dir):
        prepare_output_dir(settings, echo)
        return _play(settings, agent, experiment, env_name, protocol, device, video_method, echo)


def _play(settings: EvalSettings, agent: Agent, experiment: Experiment | None, env_name: str, protocol: Protocol,
          device, video_method: str | None, echo) -> dict:
    screens = settings.raw_obs or settings.video_recorder
    backend = "baselines" if screens else settings.env_backend  # only that chain has RGB screens
    torch.manual_seed(settings.eval_seed)
    log = EpisodeLog(settings.evals_per_env, [[] for _ in range(settings.num_env)], np.zeros(settings.num_env, np.int64))
    total = settings.num_env * settings.evals_per_env

    def act(obs: np.ndarray) -> tuple[np.ndarray, torch.Tensor | None]:
        """The actions, and the video's maps of them: the network's attention on its grid, or another
        method's on 84x84 (None without a video)."""
        frames = torch.from_numpy(obs).to(device)
        with torch.no_grad(), autocast(device, settings.precision):
            scores, _, attention = agent(frames)
        scores = scores.float()
        sample = agent.scores_kind == "logits" and not settings.deterministic
        actions = sample_actions(scores)[0] if sample else scores.argmax(1)
        if video_method is None:
            maps = None
        elif video_method == "attention":
            maps = attention.float()
        else:  # the actions played do not depend on whether a video is made: the methods' noise has its own stream
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                maps = METHODS[video_method](agent, frames, actions).float()
        return actions.cpu().numpy(), maps

    steps, recorder, gameplay, video_path, gameplay_videos, video_error = 0, None, None, None, [], None
    with interrupt_on_stop_signals():
        envs = make_pipelined_vec_env(env_name, settings.num_env, settings.eval_seed, backend=backend,
                                      workers=settings.env_workers, max_eplen=settings.max_eplen,
                                      keep_rgb=screens, breakout_infinite=settings.breakout_infinite,
                                      protocol=protocol)
        bar = progress_bar(total, "episode", show=settings.progress)
        try:
            if settings.video:
                from fl_saliency.evaluation.perception_video import PerceptionRecorder

                shown = [settings.video_env] if settings.video_env is not None else list(range(settings.num_env))
                recorder = PerceptionRecorder(settings.output_dir / perception_file(settings.video_format),
                                              agent.geometry if video_method == "attention" else None, shown,
                                              settings.raw_obs, settings.processed_obs, settings.video_format)
            if settings.video_recorder:
                from fl_saliency.evaluation.gameplay_video import GameplayRecorder

                gameplay = GameplayRecorder(settings.output_dir / VIDEOS_DIR, settings.max_eplen)
            # The groups take turns: the network acts for one while the other's environments step.
            with inference_threads(device):
                obs = envs.reset()
                rgb = np.stack([info["rgb"] for info in envs.reset_infos]) if screens else None
                if gameplay:
                    gameplay.reset(rgb)
                groups = []
                for ranks in envs.turns:
                    actions, group_maps = act(obs[ranks])
                    groups.append(group_maps)
                    envs.step_async(actions)
                maps = torch.cat(groups) if recorder else None
                t_start = time.perf_counter()  # playing time, without starting the environments
                while True:
                    if recorder:
                        try:
                            recorder.add(maps, obs, rgb, log.finished)
                        except OSError as exc:  # a full disk: the games go on, their results matter more
                            recorder.abort()
                            recorder, video_error = None, exc
                    counted_before = int(np.minimum(log.done_per_env, settings.evals_per_env).sum())
                    for ranks in envs.turns:
                        obs[ranks], _, _, infos = envs.step_wait()
                        if screens:
                            rgb[ranks] = np.stack([info["rgb"] for info in infos])
                        for rank, info in enumerate(infos, start=ranks.start):
                            if "episode" in info:
                                log.add(rank, info["episode"])
                        actions, group_maps = act(obs[ranks])
                        if maps is not None:
                            maps[ranks] = group_maps
                        envs.step_async(actions)
                    steps += 1
                    if gameplay:
                        try:
                            gameplay.step(rgb)
                        except OSError as exc:
                            gameplay.abort()
                            gameplay, video_error = None, exc
                    bar.update(int(np.minimum(log.done_per_env, settings.evals_per_env).sum()) - counted_before)
                    if log.finished.all():
                        for _ in envs.turns:
                            envs.step_wait()  # the one step started beyond the end
                        break
            t_played = time.perf_counter() - t_start
        except BaseException:
            if recorder:
                recorder.abort()
            if gameplay:
                gameplay.abort()
            raise
        finally:
            bar.close()
            envs.close()

        # A video that fails (a full disk) must not cost the games: dropped, it frees its space for the results.
        results = log.results()
        try:
            video_path = recorder.finish() if recorder else None
            gameplay_videos = gameplay.close() if gameplay else []
        except OSError as exc:
            video_error = exc
            if gameplay:
                gameplay.abort()
        summary = {
            "experiment_dir": str(settings.experiment_dir) if settings.experiment_dir else None,
            "agent": agent.describe(),
            "network": agent.source.network,
            "env_name": env_name,
            "protocol": protocol.to_config(),
            "rewards": value_statistics(results["rewards"]),
            "lengths": value_statistics(results["lengths"]),
            "agent_steps": steps,
            "seconds": t_played,
            "settings": {
                "num_env": settings.num_env, "evals_per_env": settings.evals_per_env, "eval_seed": settings.eval_seed,
                "max_eplen": settings.max_eplen, "deterministic": settings.deterministic, "env_backend": backend,
                "breakout_infinite": settings.breakout_infinite, "precision": settings.precision,
            },
            "video": str(video_path) if video_path else None,
            "video_method": video_method,
            "gameplay_videos": [str(p) for p in gameplay_videos],
        }
        with atomic_files(settings.output_dir) as files:
            files.write_json(SUMMARY_FILE, summary)
            files.write_json(RESULTS_FILE, results)  # last: the file a rerun is refused for
    # The videos of results replaced (--force) would no longer show them; the user's own files stay.
    out = settings.output_dir
    kept = {out / RESULTS_FILE, out / SUMMARY_FILE, video_path, *gameplay_videos,
            *(path.with_suffix(".meta.json") for path in gameplay_videos)}
    stale = remove_matching(out, [path.relative_to(out).as_posix() for path in matching(out, evaluation_outputs())
                                  if path not in kept])
    if stale:
        echo(f"removed the video of the replaced results: {', '.join(stale)}")
    r = summary["rewards"]
    echo(f"{agent_label(agent)} on {env_name}: {r['n']} episodes, score mean {r['mean']:.1f} "
         f"(std {r['std']:.1f}, median {r['median']:.1f}, min {r['min']:.0f}, max {r['max']:.0f}); "
         f"results in {settings.output_dir / RESULTS_FILE}" + (f"; video {video_path}" if video_path else ""))
    if video_error is not None:
        raise FlSaliencyError(f"the results are written, but not the video: {video_error.strerror or video_error} "
                              f"(its temporary files are removed)")
    return summary
