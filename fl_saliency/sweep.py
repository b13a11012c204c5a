"""The paper's grid (games x networks x seeds) as Ray tasks: train, then evaluate, then score saliency.

Each job writes the layout of the paper's released models, ``D/<Game>.<network>/<seed:02d>/``
(``config.json``, ``model.pkl``, ``logs/``, ``results.json``, ``saliency.pkl``). A job skips
every stage whose output is already there and resumes a training killed halfway from its last
checkpoint, so running the same sweep again only does what is missing. One job's failure is
reported and leaves the others running.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from fl_saliency.device import device_setting
from fl_saliency.envs import backend_setting
from fl_saliency.errors import FlSaliencyError
from fl_saliency.evaluate import EvalSettings
from fl_saliency.games import parse_env_id, v5_id
from fl_saliency.ppo import PPOConfig, precision_setting
from fl_saliency.protocol import full_action_space_setting, repeat_action_probability_setting
from fl_saliency.settings import check_settings, same_as, setting
from fl_saliency.train import TrainSettings, check_num_timesteps


def parse_evaluate(text: str) -> tuple[int, int]:
    try:
        num_env, evals_per_env = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"takes NUM_ENV:EVALS_PER_ENV, e.g. 16:512; got {text!r}") from None
    return num_env, evals_per_env


@dataclass
class SweepSettings:
    """The grid to run and how to run each job: the same PPO settings as a training run."""

    games: list[str] = setting(help="comma-separated, e.g. Breakout,MsPacman (v4) or ALE/Breakout-v5,ALE/MsPacman-v5")
    networks: list[str] = setting(help="comma-separated network names")
    output_dir: Path = setting(help="sweep folder: <Game>.<network>/<seed>/ per job")
    seeds: list[int] = setting(default_factory=lambda: [1], min=0, metavar="N,N,...",
                               help="comma-separated train seeds (paper: 1,9,17,25,33)")
    num_timesteps: int = same_as(TrainSettings, "num_timesteps")
    ppo: PPOConfig = field(default_factory=PPOConfig)
    evaluate: tuple[int, int] | None = setting(None, min=1, metavar="NUM_ENV:EVALS_PER_ENV", parse=parse_evaluate,
                                               help="evaluate each model (paper: 16:512)")
    max_eplen: int | None = same_as(EvalSettings, "max_eplen")
    repeat_action_probability: float | None = repeat_action_probability_setting()
    full_action_space: bool = full_action_space_setting()
    saliency: Path | None = setting(None, metavar="ATARI_HEAD_DIR", help="score each model against Atari-HEAD")
    address: str | None = setting(None, help="an existing Ray cluster (default: start Ray locally)")
    env_backend: str = backend_setting()
    precision: str = precision_setting()
    device: str = device_setting()

    def __post_init__(self):
        check_settings(self)
        check_num_timesteps(self.num_timesteps, self.ppo)

    def jobs(self) -> list["Job"]:
        return plan(self.games, self.networks, self.seeds, self.num_timesteps, self.output_dir, ppo=self.ppo,
                    evaluate=self.evaluate, max_eplen=self.max_eplen, atari_head_dir=self.saliency,
                    repeat_action_probability=self.repeat_action_probability, full_action_space=self.full_action_space,
                    env_backend=self.env_backend, precision=self.precision, device=self.device)


@dataclass(frozen=True)
class Job:
    """One (game, network, seed) of a sweep and what to do with it."""

    game: str
    network: str
    seed: int
    num_timesteps: int
    root: Path
    ppo: PPOConfig = field(default_factory=PPOConfig)
    evaluate: tuple[int, int] | None = None  # (num_env, evals_per_env)
    max_eplen: int | None = same_as(EvalSettings, "max_eplen")
    version: str = "v4"  # the protocol: v4 (<Game>NoFrameskip-v4) or v5 (ALE/<Game>-v5)
    repeat_action_probability: float | None = None  # None: the protocol's
    full_action_space: bool = False
    video: bool = False  # a perception.mkv (raw and processed) with the evaluation
    atari_head_dir: Path | None = None
    env_backend: str = backend_setting()
    precision: str = precision_setting()
    device: str = device_setting()

    @property
    def env_name(self) -> str:
        return v5_id(self.game) if self.version == "v5" else f"{self.game}NoFrameskip-v4"

    @property
    def folder(self) -> Path:
        return self.root / f"{self.game}.{self.network}" / f"{self.seed:02d}"

    @property
    def cpus(self) -> int:
        """Ray CPUs for the job, and as many env worker processes: jobs side by side must not oversubscribe."""
        return min(self.ppo.num_envs, 2)

    @property
    def name(self) -> str:
        return f"{self.game}.{self.network}/{self.seed:02d}"

    def train_settings(self, resume: bool = False, force: bool = False) -> TrainSettings:
        return TrainSettings(output_dir=self.folder, network=self.network, env_name=self.env_name,
                             repeat_action_probability=self.repeat_action_probability,
                             full_action_space=self.full_action_space, train_seed=self.seed, num_timesteps=self.num_timesteps, ppo=self.ppo,
                             env_backend=self.env_backend, env_workers=self.cpus, precision=self.precision,
                             device=self.device, resume=resume, force=force)


def run_job(job: Job) -> dict:
    """Train, evaluate and score one job, skipping finished stages; never raises."""
    from fl_saliency.atari_head.benchmark import SALIENCY_FILE, SaliencySettings, run_benchmark
    from fl_saliency.checkpoint import MODEL_FILE
    from fl_saliency.evaluate import RESULTS_FILE, evaluate
    from fl_saliency.train import CHECKPOINT_FILE, load_checkpoint, train

    start = time.perf_counter()
    done = []
    quiet = lambda text: None
    try:
        folder = job.folder
        n_updates = job.num_timesteps // job.ppo.batch_size
        checkpoint = folder / CHECKPOINT_FILE
        finished = checkpoint.exists() and load_checkpoint(checkpoint)["update"] >= n_updates
        if not finished:
            resume = checkpoint.exists()
            # Killed before its first save: nothing to keep (a model.pkl without a checkpoint is not ours to delete).
            start_over = not resume and not (folder / MODEL_FILE).exists()
            train(job.train_settings(resume, force=start_over), echo=quiet)
            done.append("resumed training" if resume else "trained")
        if job.evaluate and not (folder / RESULTS_FILE).exists():
            num_env, evals_per_env = job.evaluate
            evaluate(EvalSettings(experiment_dir=folder, output_dir=folder, num_env=num_env,
                                  evals_per_env=evals_per_env, max_eplen=job.max_eplen, raw_obs=job.video,
                                  processed_obs=job.video, env_workers=job.cpus, precision=job.precision,
                                  device=job.device),
                     echo=quiet)
            done.append("evaluated")
        if job.atari_head_dir and not (folder / SALIENCY_FILE).exists():
            run_benchmark(SaliencySettings(experiment_dir=folder, atari_head_dir=job.atari_head_dir,
                                           output_dir=folder, device=job.device), echo=quiet)
            done.append("scored")
        status = "done" if done else "skipped"
        message = ", ".join(done) if done else "already finished"
    except FlSaliencyError as exc:
        status, message = "failed", str(exc)
    except Exception as exc:  # a job's crash is reported with the others' results, not raised
        status, message = "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    return {"job": job.name, "status": status, "message": message, "seconds": round(time.perf_counter() - start, 1)}


def plan(games: list[str], networks: list[str], seeds: list[int], num_timesteps: int, root: Path, **job_options) -> list[Job]:
    """The jobs of the grid, their settings checked here, before any job (or Ray) starts."""
    from fl_saliency.train import validate

    games = [parse_env_id(g) for g in games]
    versions = {}
    for game, version in games:
        versions.setdefault(game, set()).add(version)
    repeated = sorted(game for game, seen in versions.items() if len(seen) > 1)
    if repeated:
        raise FlSaliencyError(f"--games names {', '.join(repeated)} under two protocols; their runs would share a folder")
    jobs = [Job(game, network, seed, num_timesteps, root, version=version, **job_options)
            for game, version in games for network in networks for seed in seeds]
    for job in jobs:
        validate(job.train_settings())
    atari_head_dir = job_options.get("atari_head_dir")
    if atari_head_dir is not None:
        from fl_saliency.atari_head.dataset import AtariHeadDataset

        dataset = AtariHeadDataset(atari_head_dir)
        for game in sorted(versions):
            dataset.trials(game)
    return jobs


def job_resources(job: Job, gpus_available: bool) -> dict:
    """CPUs for the environments and learner; a GPU when there is one (shared between up to 4 jobs)."""
    resources = {"num_cpus": job.cpus}
    if gpus_available and job.device in ("auto", "cuda"):
        resources["num_gpus"] = 0.25
    return resources


def sweep(jobs: list[Job], address: str | None = None, progress: bool = True, echo=print) -> list[dict]:
    """Run ``jobs`` as Ray tasks (local Ray unless ``address``); prints one line per job as it ends."""
    import ray

    # "local" starts a cluster of our own rather than joining one that happens to run on this machine.
    ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             configure_logging=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        remote = ray.remote(run_job)
        pending = {remote.options(**job_resources(job, gpus)).remote(job): job for job in jobs}
        results = []
        bar = tqdm(total=len(jobs), unit="job", disable=None if progress else True, dynamic_ncols=True)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                result = ray.get(ref)
                results.append(result)
                line = f"{result['status']:>7}  {result['job']}  ({result['seconds']} s): {result['message'].splitlines()[0]}"
                bar.write(line) if not bar.disable else echo(line)
                bar.update(1)
        bar.close()
    finally:
        ray.shutdown()
    failed = [r for r in results if r["status"] == "failed"]
    echo(f"sweep: {len(results) - len(failed)} of {len(results)} jobs finished" + (f", {len(failed)} failed" if failed else ""))
    return results

