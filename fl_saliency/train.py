"""A training run in an output folder: config, logs, checkpoints, resume (protocol.md section 3).

Layout of ``output_dir``: ``config.json``, ``model.pkl`` (Baselines format), ``checkpoint.pt``
(everything a resume needs), ``logs/0.<rank>.monitor.csv``, ``logs/progress.csv``,
``logs/log.txt``, ``tb/events.out.tfevents.*``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fl_saliency import __version__
from fl_saliency.checkpoint import CONFIG_FILE, MODEL_FILE, load_config, save_config, save_model
from fl_saliency.device import device_setting, resolve_device
from fl_saliency.envs import backend_setting, make_pipelined_vec_env, workers_setting
from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import num_actions, parse_game
from fl_saliency.io import atomic_write
from fl_saliency.logger import MonitorCSV, ProgressLogger, truncate_progress
from fl_saliency.networks import ActorCritic, check_network_name
from fl_saliency.ppo import (LOSS_NAMES, PPO, EpisodeStats, PPOConfig, explained_variance, learning_rate,
                             precision_setting)
from fl_saliency.protocol import (Protocol, full_action_space_setting, protocol_of, protocol_of_config,
                                  repeat_action_probability_setting)
from fl_saliency.settings import check_settings, setting

CHECKPOINT_FILE = "checkpoint.pt"
RUN_ENTRIES = (CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, "logs", "tb")
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

    def __post_init__(self):
        check_settings(self)
        check_num_timesteps(self.num_timesteps, self.ppo)
        if self.resume and self.force:
            raise FlSaliencyError("--resume and --force exclude each other")

    def protocol(self) -> Protocol:
        return protocol_of(self.env_name, self.repeat_action_probability, self.full_action_space)

    def config(self) -> dict:
        """What config.json records: enough to resume, evaluate, or compare runs."""
        return {
            "network": self.network,
            "env_name": self.env_name,
            "protocol": self.protocol().to_config(),
            "train_seed": self.train_seed,
            "num_timesteps": self.num_timesteps,
            "env_backend": self.env_backend,
            "precision": self.precision,
            "save_interval": self.save_interval,
            "log_interval": self.log_interval,
            "ppo": self.ppo.to_dict(),
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


def prepare_output_dir(settings: TrainSettings) -> TrainSettings:
    """Refuse to overwrite a run unless told; on --resume, the run's own settings win."""
    out = settings.output_dir
    existing = [name for name in RUN_ENTRIES if (out / name).exists()]
    if settings.resume:
        if not (out / CHECKPOINT_FILE).exists():
            raise FlSaliencyError(f"--resume: {out} holds no {CHECKPOINT_FILE} to continue from")
        config = load_config(out / CONFIG_FILE).config
        try:
            return TrainSettings.from_config(out, config, device=settings.device,
                                             env_workers=settings.env_workers, resume=True)
        except (KeyError, TypeError) as exc:
            raise FlSaliencyError(f"--resume: {out / CONFIG_FILE} is not a training config of fl-saliency ({exc})") from None
    if existing and not settings.force:
        raise FlSaliencyError(
            f"{out} already holds a run ({', '.join(existing)}); pass --resume to continue it or --force to start over"
        )
    for name in existing:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / ".write-test", "w"):
            pass
        (out / ".write-test").unlink()
    except OSError as exc:
        raise FlSaliencyError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return settings


def save_checkpoint(path: Path, ppo: PPO, update: int, stats: EpisodeStats, time_elapsed: float) -> None:
    with atomic_write(path, "wb") as f:
        torch.save({"update": update, "ppo": ppo.state_dict(), "episodes": stats.state_dict(),
                    "time_elapsed": time_elapsed}, f)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FlSaliencyError(f"{path} is not a readable training checkpoint ({type(exc).__name__})") from None


class _StopRequest:
    """The first Ctrl-C asks to stop after the current update (with a checkpoint); a second one aborts."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def train(settings: TrainSettings, echo=print) -> Path:
    """Train (or continue) a run; returns the path of its ``model.pkl``."""
    validate(settings)
    settings = prepare_output_dir(settings)
    out, c = settings.output_dir, settings.ppo
    device = resolve_device(settings.device)
    n_updates = settings.num_timesteps // c.batch_size

    checkpoint = load_checkpoint(out / CHECKPOINT_FILE) if settings.resume else None
    start_update = checkpoint["update"] if checkpoint else 0
    if start_update >= n_updates:
        raise FlSaliencyError(f"the run in {out} already finished all {n_updates} updates")
    if not settings.resume:
        save_config(settings.config(), out / CONFIG_FILE)

    torch.manual_seed(settings.train_seed)
    model = ActorCritic(settings.network, num_actions(settings.env_name, settings.full_action_space))
    ppo = PPO(model, c, seed=settings.train_seed, device=device, precision=settings.precision)
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
        elapsed_before = checkpoint["time_elapsed"]
        # New games on resume, from a seed no other rank of any run starts with.
        env_seed = int(np.random.SeedSequence([settings.train_seed, start_update]).generate_state(1)[0] >> 1)
        truncate_progress(out / "logs" / "progress.csv", "nupdates", start_update)

    env = make_pipelined_vec_env(settings.env_name, c.num_envs, env_seed, backend=settings.env_backend,
                                 workers=settings.env_workers, protocol=settings.protocol())
    monitor = MonitorCSV(out / "logs", settings.env_name, c.num_envs, append=settings.resume)
    bar = tqdm(total=n_updates * c.batch_size, initial=start_update * c.batch_size, unit="step", disable=None,
               dynamic_ncols=True)
    logger = ProgressLogger(out, PROGRESS_KEYS, step_key="total_timesteps", append=settings.resume,
                            echo=lambda text: bar.write(text) if not bar.disable else echo(text))
    t_first = time.perf_counter() - elapsed_before
    update = start_update
    try:
        with _StopRequest().installed() as stop:
            obs, dones = env.reset(), np.zeros(c.num_envs, bool)
            for update in range(start_update + 1, n_updates + 1):
                t_start = time.perf_counter()
                rollout, obs, dones = ppo.rollout(env, obs, dones)
                for rank, episode in rollout.episodes:
                    monitor.write(rank, episode)
                    stats.add(episode)
                losses = ppo.update(rollout, learning_rate(c, update, n_updates))
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
                    save_model(ppo.model, out / MODEL_FILE)
                    save_checkpoint(out / CHECKPOINT_FILE, ppo, update, stats, time.perf_counter() - t_first)
                if stop.requested and update < n_updates:
                    raise FlSaliencyError(
                        f"interrupted after update {update}/{n_updates}; checkpoint saved, continue with --resume"
                    )
    finally:
        bar.close()
        logger.close()
        monitor.close()
        env.close()
    return out / MODEL_FILE
