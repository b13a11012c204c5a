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
from fl_saliency.checkpoint import (CONFIG_FILE, MODEL_FILE, adam_from_baselines, load_config, read_experiment,
                                   save_config, save_model)
from fl_saliency.envs import EnvGroups
from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import num_actions, parse_game
from fl_saliency.io import atomic_write
from fl_saliency.logger import MonitorCSV, ProgressLogger, truncate_progress
from fl_saliency.networks import ActorCritic, check_network_name
from fl_saliency.ppo import (LOSS_NAMES, PPO, AdamState, EpisodeStats, PPOConfig, check_precision, explained_variance,
                             learning_rate)

CHECKPOINT_FILE = "checkpoint.pt"
RUN_ENTRIES = (CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, "logs", "tb")
PROGRESS_KEYS = (
    "nupdates", "total_timesteps", "serial_timesteps", "fps", "time_elapsed", "eprewmean", "eplenmean",
    *LOSS_NAMES, "explained_variance",
)


@dataclass
class TrainSettings:
    output_dir: Path
    network: str = "cnn_sparse_fls"
    env_name: str = "BreakoutNoFrameskip-v4"
    train_seed: int = 1
    num_timesteps: int = 50_000_000
    ppo: PPOConfig = field(default_factory=PPOConfig)
    env_backend: str = "baselines"
    env_workers: int | None = None  # env processes; default: the CPU cores
    precision: str = "fp32"  # or bf16: mixed precision (ppo.autocast)
    save_interval: int = 50  # updates between checkpoints (and at the end)
    log_interval: int = 1  # updates between log rows (and the first and the last)
    device: str = "auto"
    resume: bool = False
    force: bool = False
    init_from: Path | None = None  # an experiment folder whose model.pkl (weights + Adam state) the run starts from

    def config(self) -> dict:
        """What config.json records: enough to resume, evaluate, or compare runs."""
        return {
            "network": self.network,
            "env_name": self.env_name,
            "train_seed": self.train_seed,
            "num_timesteps": self.num_timesteps,
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
        return cls(output_dir=output_dir, network=config["network"], env_name=config["env_name"],
                   train_seed=config["train_seed"], num_timesteps=config["num_timesteps"],
                   ppo=PPOConfig(**config["ppo"]), env_backend=config["env_backend"],
                   precision=config.get("precision", "fp32"),
                   save_interval=config["save_interval"], log_interval=config["log_interval"], **overrides)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FlSaliencyError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FlSaliencyError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None


def validate(settings: TrainSettings) -> None:
    check_network_name(settings.network)
    parse_game(settings.env_name)
    check_precision(settings.precision)
    c = settings.ppo
    if settings.num_timesteps < c.batch_size:
        raise FlSaliencyError(
            f"--num-timesteps {settings.num_timesteps} is below one update of num_env x nsteps = {c.batch_size} steps"
        )
    if c.batch_size % c.nminibatches:
        raise FlSaliencyError(f"num_env x nsteps = {c.batch_size} does not split into {c.nminibatches} minibatches")
    if settings.save_interval < 1 or settings.log_interval < 1:
        raise FlSaliencyError("--save-interval and --log-interval must be at least 1")
    if settings.init_from is not None and settings.resume:
        raise FlSaliencyError("--init-from starts a new run and --resume continues one: pass one of them")


def read_initialisation(settings: TrainSettings) -> tuple[dict[str, torch.Tensor], AdamState | None]:
    """The weights and Adam state (None if the file has none) the run starts from, read from ``--init-from``."""
    source = settings.init_from
    experiment, params, model = read_experiment(source)
    if experiment.network != settings.network:
        raise FlSaliencyError(f"--init-from {source} holds a {experiment.network} model, "
                              f"not the --network {settings.network} of this run")
    if model.n_actions != num_actions(settings.env_name):
        raise FlSaliencyError(f"--init-from {source} was trained on {experiment.env_name} ({model.n_actions} actions), "
                              f"which does not fit {settings.env_name} ({num_actions(settings.env_name)} actions)")
    return model.state_dict(), adam_from_baselines(params, model, str(source / MODEL_FILE))


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
    initialisation = read_initialisation(settings) if settings.init_from is not None else None
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
    model = ActorCritic(settings.network, num_actions(settings.env_name))
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
        elapsed_before = checkpoint["time_elapsed"]
        # New games on resume, from a seed no other rank of any run starts with.
        env_seed = int(np.random.SeedSequence([settings.train_seed, start_update]).generate_state(1)[0] >> 1)
        truncate_progress(out / "logs" / "progress.csv", "nupdates", start_update)

    env = EnvGroups(settings.env_name, c.num_envs, env_seed, backend=settings.env_backend,
                    workers=settings.env_workers)
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
                    save_model(ppo.model, out / MODEL_FILE, ppo.adam_state())
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
