"""A training run in an output folder: config, logs, checkpoints, resume (docs/spec/protocol.md, section 3).

Layout of ``output_dir``: ``config.json``, ``model.pkl`` (Baselines format), ``checkpoint.pt``
(everything a resume needs), ``logs/0.<rank>.monitor.csv``, ``logs/progress.csv``,
``logs/log.txt``, ``tb/events.out.tfevents.*``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from fl_saliency import __version__
from fl_saliency.agents.checkpoint import (adam_from_baselines, load_config, read_experiment,
                                   save_config, save_model)
from fl_saliency.common.device import device_setting, resolve_device
from fl_saliency.envs import backend_setting, make_pipelined_vec_env, workers_setting
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import num_actions, parse_game
from fl_saliency.common.rundir import CHECKPOINT_FILE, CONFIG_FILE, LOGS_DIR, MODEL_FILE, run_outputs
from fl_saliency.common.io import TEMPORARY_PATTERNS, atomic_write, is_disk_full, locked_output_dir, matching, remove_matching
from fl_saliency.ppo.logger import MonitorCSV, ProgressLogger
from fl_saliency.agents.networks import ActorCritic, check_network_name
from fl_saliency.agents.base import check_action_count
from fl_saliency.agents.checkpoint import AdamState
from fl_saliency.agents.inference import first_nonfinite_parameter, precision_setting
from fl_saliency.ppo.algorithm import (LOSS_NAMES, PPO, EpisodeStats, NonFiniteError, PPOConfig, explained_variance,
                                       learning_rate)
from fl_saliency.common.progress import progress_bar
from fl_saliency.envs.protocol import (Protocol, full_action_space_setting, protocol_of, protocol_of_config,
                                  repeat_action_probability_setting)
from fl_saliency.common.settings import check_settings, setting
from fl_saliency.common.stopping import StopRequest

PROGRESS_KEYS = (
    "nupdates", "total_timesteps", "serial_timesteps", "fps", "time_elapsed", "eprewmean", "eplenmean",
    *LOSS_NAMES, "explained_variance",
)


@dataclass
class TrainSettings:
    """The original train_baselines.py flags and defaults, plus the PPO2 settings and run control."""

    output_dir: Path = setting(help="run folder (logs/, tb/, model.pkl, config.json)")
    network: str = setting("cnn_sparse_fls", help="one of `fl-saliency networks`")
    env_name: str = setting("BreakoutNoFrameskip-v4", help="gym id (ALE/<Game>-v5 for the v5 protocol) or game name")
    repeat_action_probability: float | None = repeat_action_probability_setting()
    full_action_space: bool = full_action_space_setting()
    train_seed: int = setting(1, min=0, help="env rank r is seeded train_seed + r")
    num_timesteps: int = setting(50_000_000, min=1, help="agent steps (4 emulator frames each)")
    ppo: PPOConfig = field(default_factory=PPOConfig)
    env_backend: str = backend_setting()
    env_workers: int | None = workers_setting()
    precision: str = precision_setting()
    device: str = device_setting()
    save_interval: int = setting(50, min=1, help="updates between checkpoints (and at the end)")
    log_interval: int = setting(1, min=1, help="updates between log rows (the first and last are logged too)")
    resume: bool = setting(False, help="continue the run in --output-dir from its checkpoint")
    force: bool = setting(False, help="delete the run in --output-dir and start over")
    init_from: Path | None = setting(None, metavar="EXPERIMENT_DIR",
                                     help="start from this folder's model.pkl (the paper's or ours; its config.json must "
                                          "name the same --network): its weights and, when it holds them, its Adam "
                                          "moments and step count")

    def __post_init__(self):
        check_settings(self)
        check_num_timesteps(self.num_timesteps, self.ppo)
        if self.resume and self.force:
            raise FlSaliencyError("--resume and --force exclude each other")
        if self.init_from is not None and self.resume:
            raise FlSaliencyError("--init-from starts a new run and --resume continues one: pass one of them")

    @property
    def n_updates(self) -> int:
        """Whole updates only, as Baselines (num_timesteps // batch)."""
        return self.num_timesteps // self.ppo.batch_size

    def protocol(self) -> Protocol:
        return protocol_of(self.env_name, self.repeat_action_probability, self.full_action_space)

    def config(self) -> dict:
        """What config.json records: enough to resume, evaluate, or compare runs; the steps that run."""
        return {
            "network": self.network,
            "env_name": self.env_name,
            "protocol": self.protocol().to_config(),
            "train_seed": self.train_seed,
            "num_timesteps": self.n_updates * self.ppo.batch_size,
            "env_backend": self.env_backend,
            "precision": self.precision,
            "save_interval": self.save_interval,
            "log_interval": self.log_interval,
            "ppo": self.ppo.to_dict(),
            "init_from": None if self.init_from is None else str(Path(self.init_from).resolve()),
            "fl_saliency_version": __version__,
        }

    @classmethod
    def from_config(cls, output_dir: Path, config: dict, **overrides) -> "TrainSettings":
        protocol = protocol_of_config(config)
        return cls(output_dir=output_dir, network=config["network"], env_name=config["env_name"],
                   repeat_action_probability=protocol.repeat_action_probability,
                   full_action_space=protocol.full_action_space,
                   train_seed=config["train_seed"], num_timesteps=config["num_timesteps"],
                   ppo=PPOConfig(**config["ppo"]), env_backend=config["env_backend"],
                   precision=config.get("precision", "fp32"),
                   save_interval=config["save_interval"], log_interval=config["log_interval"], **overrides)


def check_num_timesteps(num_timesteps: int, ppo: PPOConfig) -> None:
    if num_timesteps < ppo.batch_size:
        raise FlSaliencyError(
            f"--num-timesteps {num_timesteps} is below one update of num_env x nsteps = {ppo.batch_size} steps"
        )


def validate(settings: TrainSettings) -> None:
    check_network_name(settings.network)
    parse_game(settings.env_name)


def read_initialisation(settings: TrainSettings) -> tuple[dict[str, torch.Tensor], AdamState | None]:
    """The weights and Adam state (None if the file has none) the run starts from, read from ``--init-from``."""
    source = settings.init_from
    experiment, params, model = read_experiment(source)
    if experiment.network != settings.network:
        raise FlSaliencyError(f"--init-from {source} holds a {experiment.network} model, "
                              f"not the --network {settings.network} of this run")
    check_action_count(model.n_actions, settings.env_name, f"--init-from {source} (trained on {experiment.env_name})",
                       settings.full_action_space, name_the_set=False)
    return model.state_dict(), adam_from_baselines(params, model, str(source / MODEL_FILE))


def _flat(config: dict) -> dict:
    """config.json's settings as flags name them (``ppo.num_envs`` is --num-env)."""
    flat = {key: value for key, value in config.items() if key not in ("ppo", "fl_saliency_version")}
    flat.update(config["ppo"])
    flat["num_env"] = flat.pop("num_envs")
    return flat


def check_config_types(config: dict, path: Path) -> None:
    """Every setting config.json records has the type of its default (an int also serves as a float)."""
    defaults = _flat(TrainSettings(output_dir=path.parent).config())
    for key, value in _flat(config).items():
        if key not in defaults or defaults[key] is None:
            continue
        expected = type(defaults[key])
        fits = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            fits = True
        if not fits:
            raise FlSaliencyError(f"--resume: {path} is not a training config of fl-saliency: {key} is {value!r}, "
                                  f"not a{'n' if expected is int else ''} {expected.__name__}")


def resumed_settings(settings: TrainSettings) -> TrainSettings:
    """The run's own settings from its config.json; a flag given with another value than the run's is refused."""
    out = settings.output_dir
    if not (out / CHECKPOINT_FILE).exists():
        existing = run_files(out)
        advice = (f"start over instead: the same command with --force in place of --resume (it deletes "
                  f"{', '.join(existing)})" if existing else "start a new run: the same command without --resume")
        raise FlSaliencyError(f"--resume: {out} holds no {CHECKPOINT_FILE} to continue from; {advice}")
    config = load_config(out / CONFIG_FILE).config
    try:
        check_config_types(config, out / CONFIG_FILE)
        recorded = TrainSettings.from_config(out, config, device=settings.device, env_workers=settings.env_workers,
                                             resume=True)
    except (KeyError, TypeError) as exc:
        raise FlSaliencyError(f"--resume: {out / CONFIG_FILE} is not a training config of fl-saliency ({exc})") from None
    # Flags left at their defaults are not compared: the command line cannot tell them from unset ones.
    default = TrainSettings(output_dir=out)
    given, kept, defaults = _flat(settings.config()), _flat(recorded.config()), _flat(default.config())
    given_flags = {**given, "num_timesteps": settings.num_timesteps}
    defaults["num_timesteps"] = default.num_timesteps
    conflicts = [f"--{key.replace('_', '-')} {given_flags[key]} (the run's is {kept[key]})" for key in given
                 if given[key] != kept.get(key) and given_flags[key] != defaults[key]]
    if conflicts:
        raise FlSaliencyError(f"--resume continues the run in {out} with the settings of its {CONFIG_FILE}; "
                              f"drop {', '.join(conflicts)}, or start a new run")
    return recorded


def run_files(out: Path) -> list[str]:
    """The files and folders of ``out`` that hold what a run wrote (rundir.run_outputs)."""
    return sorted({path.relative_to(out).parts[0] for path in matching(out, run_outputs())})


def prepare_output_dir(settings: TrainSettings, echo=print) -> TrainSettings:
    """Refuse to overwrite a run unless told; on --resume, the run's own settings win. The caller holds the
    folder's lock."""
    out = settings.output_dir
    if settings.resume:
        settings = resumed_settings(settings)
        leftovers = remove_matching(out, TEMPORARY_PATTERNS) + remove_matching(out / LOGS_DIR, TEMPORARY_PATTERNS)
        if leftovers:
            echo(f"removed the unfinished files of the interrupted run from {out}: {', '.join(leftovers)}")
        return settings
    existing = run_files(out)
    if existing and not settings.force:
        if not (out / CHECKPOINT_FILE).exists():  # killed before its first checkpoint: nothing to continue
            raise FlSaliencyError(f"{out} already holds a run without a {CHECKPOINT_FILE} to continue from "
                                  f"({', '.join(existing)}); pass --force to start over (it deletes them)")
        raise FlSaliencyError(
            f"{out} already holds a run ({', '.join(existing)}); pass --resume to continue it or --force to start over"
        )
    if existing:
        echo(f"--force: removed {', '.join(remove_matching(out, run_outputs()))} from {out}")
    return settings


def save_checkpoint(path: Path, ppo: PPO, update: int, stats: EpisodeStats, time_elapsed: float) -> None:
    # Serialised in memory first: torch.save's own writes turn a full disk into "unexpected pos" RuntimeErrors.
    buffer = io.BytesIO()
    torch.save({"update": update, "ppo": ppo.state_dict(), "episodes": stats.state_dict(),
                "time_elapsed": time_elapsed}, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getbuffer())


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FlSaliencyError(f"{path} is not a readable training checkpoint ({type(exc).__name__})") from None


def _above(bar: tqdm, echo, text: str) -> None:
    with bar.external_write_mode():
        echo(text)


def train(settings: TrainSettings, echo=print, on_checkpoint: Callable[[int], None] | None = None) -> Path:
    """Train (or continue) a run; returns the path of its ``model.pkl``.

    ``on_checkpoint(update)`` runs after each checkpoint is saved, its logs written (a sweep job uploads the run).
    """
    validate(settings)
    initialisation = read_initialisation(settings) if settings.init_from is not None else None
    if settings.num_timesteps % settings.ppo.batch_size and not settings.resume:
        runs = settings.n_updates * settings.ppo.batch_size
        echo(f"--num-timesteps {settings.num_timesteps} is not a multiple of num_env x nsteps = "
             f"{settings.ppo.batch_size}: training {runs} steps ({settings.n_updates} updates), as Baselines does; "
             f"{CONFIG_FILE} records {runs}")
    with locked_output_dir(settings.output_dir):
        return _train(prepare_output_dir(settings, echo), initialisation, echo, on_checkpoint)


def _train(settings: TrainSettings, initialisation: tuple[dict, AdamState | None] | None, echo,
           on_checkpoint: Callable[[int], None] | None) -> Path:
    out, c = settings.output_dir, settings.ppo
    device = resolve_device(settings.device)
    n_updates = settings.n_updates

    checkpoint = load_checkpoint(out / CHECKPOINT_FILE) if settings.resume else None
    start_update = checkpoint["update"] if checkpoint else 0
    if start_update >= n_updates:
        raise FlSaliencyError(f"the run in {out} already finished all {n_updates} updates")
    if not settings.resume:
        save_config(settings.config(), out / CONFIG_FILE)

    torch.manual_seed(settings.train_seed)
    model = ActorCritic(settings.network, num_actions(settings.env_name, settings.full_action_space))
    ppo = PPO(model, c, seed=settings.train_seed, device=device, precision=settings.precision)
    if initialisation:
        weights, adam = initialisation
        ppo.model.load_state_dict(weights)
        if adam is not None:
            ppo.load_adam_state(adam)
    stats = EpisodeStats()
    elapsed_before = 0.0
    env_seed = settings.train_seed
    if checkpoint:
        try:
            ppo.load_state_dict(checkpoint["ppo"])
            stats.load_state_dict(checkpoint["episodes"])
        except (KeyError, RuntimeError, ValueError) as exc:
            # load_state_dict's message starts with a header line; the first mismatch follows it.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = (lines[1:] or lines or [type(exc).__name__])[0]
            raise FlSaliencyError(f"{out / CHECKPOINT_FILE} does not fit a {settings.network} run of this version: "
                                  f"{detail}") from None
        nonfinite = first_nonfinite_parameter(ppo.model)
        if nonfinite is not None:
            raise FlSaliencyError(f"{out / CHECKPOINT_FILE} holds NaN or infinite values in {nonfinite}: it cannot be "
                                  f"continued; start over with --force")
        elapsed_before = checkpoint["time_elapsed"]
        # New games on resume, from a seed no other rank of any run starts with.
        env_seed = int(np.random.SeedSequence([settings.train_seed, start_update]).generate_state(1)[0] >> 1)

    env = make_pipelined_vec_env(settings.env_name, c.num_envs, env_seed, backend=settings.env_backend,
                                 workers=settings.env_workers, protocol=settings.protocol())
    monitor = MonitorCSV(out / LOGS_DIR, settings.env_name, c.num_envs, append=settings.resume)
    bar = progress_bar(n_updates * c.batch_size, "step", initial=start_update * c.batch_size)
    logger = ProgressLogger(out, PROGRESS_KEYS, step_key="total_timesteps",
                            resume_after=start_update * c.batch_size if settings.resume else None,
                            echo=lambda text: _above(bar, echo, text))
    t_first = time.perf_counter() - elapsed_before
    update = saved = start_update
    try:
        with StopRequest().installed() as stop:
            obs, dones = env.reset(), np.zeros(c.num_envs, bool)
            for update in range(start_update + 1, n_updates + 1):
                t_start = time.perf_counter()
                rollout, obs, dones = ppo.rollout(env, obs, dones)
                for rank, episode in rollout.episodes:
                    monitor.write(rank, episode)
                    stats.add(episode)
                try:
                    losses = ppo.update(rollout, learning_rate(c, update, n_updates))
                except NonFiniteError as exc:
                    kept = (f"the checkpoint of update {saved} is kept" if saved else "no checkpoint was written")
                    raise FlSaliencyError(f"training diverged at update {update}/{n_updates}: {exc.quantity} became "
                                          f"NaN or infinite; {kept}; lower --lr and start over with --force") from None
                bar.update(c.batch_size)
                t_now = time.perf_counter()
                if update % settings.log_interval == 0 or update in (1, n_updates):
                    logger.log({
                        "nupdates": update,
                        "total_timesteps": update * c.batch_size,
                        "serial_timesteps": update * c.nsteps,
                        "fps": int(c.batch_size / (t_now - t_start)),
                        "time_elapsed": t_now - t_first,
                        **stats.means(),
                        **losses,
                        "explained_variance": explained_variance(rollout.values.ravel(), rollout.returns.ravel()),
                    })
                if update % settings.save_interval == 0 or update == n_updates or stop.requested:
                    save_model(ppo.model, out / MODEL_FILE, ppo.adam_state())
                    save_checkpoint(out / CHECKPOINT_FILE, ppo, update, stats, time.perf_counter() - t_first)
                    saved = update
                    if on_checkpoint is not None:
                        on_checkpoint(update)
                if stop.requested and update < n_updates:
                    raise FlSaliencyError(
                        f"interrupted after update {update}/{n_updates}; checkpoint saved, continue with --resume"
                    )
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        kept = f"the checkpoint of update {saved} is intact" if saved else "no checkpoint was written yet"
        raise FlSaliencyError(f"no space left on the device of {out} at update {update}/{n_updates}; {kept}: "
                              f"free space and continue with --resume") from None
    finally:
        bar.close()
        logger.close()
        monitor.close()
        env.close()
    return out / MODEL_FILE
