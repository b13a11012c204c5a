"""The paper's grid (games x networks x seeds) as Ray tasks: train, then evaluate, then score saliency.

Each job writes the layout of the paper's released models, ``D/<Game>.<network>/<seed:02d>/``
(``config.json``, ``model.pkl``, ``logs/``, ``results.json``, ``saliency.pkl``). A job skips
every stage whose output is already there and resumes a training killed halfway from its last
checkpoint, so running the same sweep again only does what is missing. One job's failure is
reported and leaves the others running.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from fl_saliency.common.device import device_setting
from fl_saliency.envs import backend_setting
from fl_saliency.common.errors import FlSaliencyError, require_extra
from fl_saliency.evaluation.evaluate import EvalSettings
from fl_saliency.envs.games import parse_env_id, rom_id, v5_id
from fl_saliency.agents.inference import precision_setting
from fl_saliency.ppo.algorithm import PPOConfig
from fl_saliency.common.progress import progress_bar
from fl_saliency.envs.protocol import full_action_space_setting, repeat_action_probability_setting
from fl_saliency.common.settings import check_settings, same_as, setting
from fl_saliency.common.stopping import reclaim_stop_signals
from fl_saliency.common.io import is_uri, locked_output_dir
from fl_saliency.sweep.storage import Storage, scratch_folder
from fl_saliency.sweep.manifest import Manifest, read_manifest
from fl_saliency.ppo.train import TrainSettings, check_num_timesteps

if TYPE_CHECKING:
    from fl_saliency.scoring.benchmark import SaliencySettings


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
    output_dir: str = setting(help="sweep folder (<Game>.<network>/<seed>/ per job), shared by all nodes, or a "
                                   "storage URI that pyarrow.fs opens: s3://bucket/prefix, gs://..., file:///...")
    seeds: list[int] = setting(default_factory=lambda: [1], min=0, metavar="N,N,...",
                               help="comma-separated train seeds (paper: 1,9,17,25,33)")
    num_timesteps: int = same_as(TrainSettings, "num_timesteps")
    ppo: PPOConfig = field(default_factory=PPOConfig)
    save_interval: int = same_as(TrainSettings, "save_interval")
    evaluate: tuple[int, int] | None = setting(None, min=1, metavar="NUM_ENV:EVALS_PER_ENV", parse=parse_evaluate,
                                               help="evaluate each model (paper: 16:512)")
    max_eplen: int | None = same_as(EvalSettings, "max_eplen")
    repeat_action_probability: float | None = repeat_action_probability_setting()
    full_action_space: bool = full_action_space_setting()
    saliency: Path | None = setting(None, metavar="ATARI_HEAD_DIR", help="score each model against Atari-HEAD")
    address: str | None = setting(None, help="an existing Ray cluster: HOST:PORT of its head, ray://HOST:PORT or "
                                             "auto (default: start Ray locally)")
    connect_timeout: float = setting(10.0, above=0, help="seconds to wait for the cluster at --address to answer")
    cpus_per_job: int | None = setting(None, min=1, help="Ray CPUs per job, and as many env worker processes "
                                                          "(default: min(num_env, 2))")
    gpus_per_job: float | None = setting(None, min=0, help="Ray GPUs per job (default: 0.25 where the cluster has "
                                                            "GPUs and --device is auto or cuda, else 0)")
    max_retries: int = setting(3, min=0, help="times Ray reruns a job whose node or worker died; it resumes "
                                              "from its last uploaded checkpoint")
    env_backend: str = backend_setting()
    precision: str = precision_setting()
    device: str = device_setting()

    def __post_init__(self):
        check_settings(self)
        check_num_timesteps(self.num_timesteps, self.ppo)
        if self.gpus_per_job == 0 and self.device == "cuda":
            raise FlSaliencyError("--device cuda needs --gpus-per-job above 0")

    def job(self, game: str, network: str, seed: int) -> Job:
        """The job of one ``--games`` entry, network and seed: the settings of the commands it runs, made from these."""
        from fl_saliency.scoring.benchmark import SaliencySettings

        game, version = parse_env_id(game)
        folder = job_folder(self.output_dir, job_name(game, network, seed))
        train = TrainSettings(output_dir=folder, network=network,
                              env_name=v5_id(game) if version == "v5" else f"{game}NoFrameskip-v4",
                              repeat_action_probability=self.repeat_action_probability,
                              full_action_space=self.full_action_space, train_seed=seed,
                              num_timesteps=self.num_timesteps, ppo=self.ppo, save_interval=self.save_interval,
                              env_backend=self.env_backend, env_workers=self.cpus_per_job,
                              precision=self.precision, device=self.device)
        evaluation = None
        if self.evaluate:
            num_env, evals_per_env = self.evaluate
            evaluation = EvalSettings(experiment_dir=folder, output_dir=folder, num_env=num_env,
                                      evals_per_env=evals_per_env, max_eplen=self.max_eplen,
                                      precision=self.precision, device=self.device)
        saliency = None if self.saliency is None else SaliencySettings(
            experiment_dir=folder, atari_head_dir=self.saliency, output_dir=folder, device=self.device)
        return Job(game, self.output_dir, train, evaluation, saliency, gpus_per_job=self.gpus_per_job)


def job_name(game: str, network: str, seed: int) -> str:
    """A job's name, and its folder in the sweep's storage: ``<Game>.<network>/<seed:02d>``."""
    return f"{game}.{network}/{seed:02d}"


def job_folder(root: str | Path, name: str) -> Path:
    """Where a job works on this node: its folder in the sweep folder, or in this node's scratch for a storage URI."""
    return scratch_folder(str(root), name) if is_uri(root) else Path(root) / name


@dataclass(frozen=True)
class Job:
    """One (game, network, seed) of a sweep: the settings of the commands it runs (``evaluation`` and
    ``saliency`` only when given), made by :meth:`SweepSettings.job`.

    The commands' folders are the job's ``folder`` on the node that runs it (:meth:`settings` fills them in
    there): a job whose storage is a URI works in that node's scratch folder.
    """

    game: str
    root: str | Path  # the sweep's storage: a folder, or a URI (see fl_saliency.sweep.storage)
    train: TrainSettings
    evaluation: EvalSettings | None = None
    saliency: SaliencySettings | None = None
    gpus_per_job: float | None = None  # None: a quarter GPU where the cluster has GPUs (see job_resources)

    @property
    def network(self) -> str:
        return self.train.network

    @property
    def seed(self) -> int:
        return self.train.train_seed

    @property
    def name(self) -> str:
        return job_name(self.game, self.network, self.seed)

    @property
    def folder(self) -> Path:
        return job_folder(self.root, self.name)

    @property
    def cpus(self) -> int:
        """Ray CPUs for the job, and as many env worker processes: jobs side by side must not oversubscribe."""
        return self.train.env_workers or min(self.train.ppo.num_envs, 2)

    @property
    def device(self) -> str:
        return self.train.device

    def settings(self, device: str) -> tuple[TrainSettings, EvalSettings | None, SaliencySettings | None]:
        """The commands' settings in the job's folder on this node, on ``device``, with ``cpus`` env workers."""
        folder = self.folder
        return (replace(self.train, output_dir=folder, env_workers=self.cpus, device=device),
                self.evaluation and replace(self.evaluation, experiment_dir=folder, output_dir=folder,
                                            env_workers=self.cpus, device=device),
                self.saliency and replace(self.saliency, experiment_dir=folder, output_dir=folder, device=device))


def job_device(job: Job, gpu_ids: list | None) -> str:
    """The PyTorch device of a job: on Ray (``gpu_ids`` given), the GPU Ray assigned it (Ray sets
    CUDA_VISIBLE_DEVICES, so it is cuda:0) and never one it was not given; off Ray, ``--device``."""
    if gpu_ids is None:
        return job.device
    if gpu_ids:
        return "cuda" if job.device in ("auto", "cuda") else job.device
    return "cpu" if job.device == "auto" else job.device


def run_job(job: Job, on_stage: Callable[[dict], None] | None = None, gpu_ids: list | None = None) -> dict:
    """Train, evaluate and score one job, skipping finished stages; never raises.

    With a storage URI the job works in this node's scratch folder: it first copies its run folder from the
    storage (so a job rerun on another node resumes from the last uploaded checkpoint) and uploads it after
    every checkpoint and stage. ``on_stage`` hears of each finished stage (its seconds; agent steps/s for training).
    """
    from fl_saliency.common.rundir import CHECKPOINT_FILE, MODEL_FILE, RESULTS_FILE, SALIENCY_FILE
    from fl_saliency.scoring.benchmark import run_benchmark
    from fl_saliency.evaluation.evaluate import evaluate
    from fl_saliency.ppo.train import load_checkpoint, train

    start = time.perf_counter()
    done = []
    quiet = lambda text: None
    report = on_stage or quiet
    folder = job.folder
    storage = Storage(job.root) if is_uri(job.root) else None
    try:
        train_settings, eval_settings, saliency_settings = job.settings(job_device(job, gpu_ids))
        if storage is not None:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            storage.download(job.name, folder)

        def upload(*_) -> None:
            if storage is not None:  # the checkpoint last: a storage never holds one ahead of its logs
                storage.upload(folder, job.name, last=(CHECKPOINT_FILE,))

        def stage(name: str, began: float, **extra) -> None:
            upload()
            done.append(name)
            report({"stage": name, "seconds": round(time.perf_counter() - began, 1), **extra})

        n_updates = train_settings.n_updates
        checkpoint = folder / CHECKPOINT_FILE
        first = load_checkpoint(checkpoint)["update"] if checkpoint.exists() else 0
        if first < n_updates:
            resume = checkpoint.exists()
            # Killed before its first save: nothing to keep (a model.pkl without a checkpoint is not ours to delete).
            start_over = not resume and not (folder / MODEL_FILE).exists()
            began = time.perf_counter()
            train(replace(train_settings, resume=resume, force=start_over), echo=quiet, on_checkpoint=upload)
            steps = (n_updates - first) * train_settings.ppo.batch_size
            stage("resumed training" if resume else "trained", began, agent_steps=steps,
                  agent_steps_per_s=round(steps / max(time.perf_counter() - began, 1e-9), 1))
        if eval_settings and not (folder / RESULTS_FILE).exists():
            began = time.perf_counter()
            evaluate(eval_settings, echo=quiet)
            stage("evaluated", began)
        if saliency_settings and not (folder / SALIENCY_FILE).exists():
            began = time.perf_counter()
            run_benchmark(saliency_settings, echo=quiet)
            stage("scored", began)
        status = "done" if done else "skipped"
        message = ", ".join(done) if done else "already finished"
    except FlSaliencyError as exc:
        status, message = "failed", str(exc)
    except Exception as exc:  # a job's crash is reported with the others' results, not raised
        status, message = "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    finally:
        if storage is not None:
            shutil.rmtree(folder, ignore_errors=True)  # the storage holds everything; scratch is per attempt
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
    return {"job": job.name, "status": status, "message": message, "seconds": round(time.perf_counter() - start, 1)}


def refuse_duplicates(flag: str, keys: list, given: list) -> None:
    """One line naming a value of ``flag`` given twice (``keys``: the values as normalised): its two jobs would
    train into one folder at once."""
    first = {}
    for key, value in zip(keys, given):
        if key in first:
            spellings = "" if str(first[key]) == str(value) else f" (as {first[key]} and {value})"
            raise FlSaliencyError(f"{flag} names {first[key]} twice{spellings}: its jobs would train into one "
                                  f"folder at once; give each value once")
        first[key] = value


def plan(settings: SweepSettings) -> list[Job]:
    """The jobs of the grid, their settings checked here, before any job (or Ray) starts."""
    from fl_saliency.ppo.train import validate

    require_extra("sweep", "fl-saliency sweep", "ray", "pyarrow")
    if is_uri(settings.output_dir):
        # An unknown scheme, an unreachable store, a foreign sweep.json: one line, now.
        read_manifest(Storage(settings.output_dir))
    parsed = [parse_env_id(g) for g in settings.games]
    refuse_duplicates("--games", [rom_id(game) + version for game, version in parsed], settings.games)
    refuse_duplicates("--networks", settings.networks, settings.networks)
    refuse_duplicates("--seeds", settings.seeds, settings.seeds)
    versions = {}
    for game, version in parsed:
        versions.setdefault(game, set()).add(version)
    repeated = sorted(game for game, seen in versions.items() if len(seen) > 1)
    if repeated:
        raise FlSaliencyError(f"--games names {', '.join(repeated)} under two protocols; their runs would share a folder")
    jobs = [settings.job(game, network, seed)
            for game in settings.games for network in settings.networks for seed in settings.seeds]
    for job in jobs:
        validate(job.train)
    if settings.saliency is not None:
        from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset

        dataset = AtariHeadDataset(settings.saliency)
        for game in sorted(versions):
            dataset.trials(game)
    return jobs


def job_resources(job: Job, gpus_available: bool) -> dict:
    """CPUs for the environments and learner; GPUs as asked, or a quarter GPU when there are any (4 jobs a GPU)."""
    resources = {"num_cpus": job.cpus}
    gpus = job.gpus_per_job
    if gpus is None:
        gpus = 0.25 if gpus_available and job.device in ("auto", "cuda") else 0
    if gpus:
        resources["num_gpus"] = gpus
    return resources


def _amount(value: float) -> str:
    return f"{value:g}"


def infeasible(resources: dict, nodes: list[dict]) -> str | None:
    """Why no alive node of ``nodes`` (``ray.nodes()``) can run a job asking ``resources``, or None if one can."""
    cpus, gpus = resources.get("num_cpus", 0), resources.get("num_gpus", 0)
    alive = [n["Resources"] for n in nodes if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return None
    largest = max(alive, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})
    asked = f"{_amount(cpus)} CPU" + (f" and {_amount(gpus)} GPU" if gpus else "")
    has = f"{_amount(largest.get('CPU', 0))} CPU and {_amount(largest.get('GPU', 0))} GPU"
    return (f"a job asks Ray for {asked} and no node of the cluster has that (the largest of its {len(alive)} "
            f"alive nodes: {has}): lower --cpus-per-job / --gpus-per-job or add larger nodes")


class StageLog:
    """A Ray actor on the driver's node: jobs add one event per finished stage, the driver drains them."""

    def __init__(self):
        self.events = []

    def add(self, event: dict) -> None:
        self.events.append(event)

    def drain(self) -> list[dict]:
        events, self.events = self.events, []
        return events


def _remote_job(job: Job, log) -> dict:
    import ray

    context = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:8]}"
    attempt = uuid.uuid4().hex
    events = []

    def on_stage(event: dict) -> None:
        event = {"job": job.name, "node": node, "attempt": attempt, "n": len(events), **event}
        events.append(event)
        # Never ray.get here: a task blocked in ray.get gives its CPUs back and Ray starts another job on them.
        # The result carries the events too, so the driver has them all even when one arrives late.
        log.add.remote(event)

    on_stage({"stage": "started", "seconds": 0.0})
    result = run_job(job, on_stage, gpu_ids=ray.get_gpu_ids())
    return {**result, "node": node, "events": events}


ADDRESS_FORMS = "HOST:PORT of a Ray cluster's head (e.g. 10.0.0.5:6379), ray://HOST:PORT, auto or local"


def check_address(address: str, timeout: float) -> None:
    """Refuse, in one line, an address that is malformed or where nothing answers within ``timeout`` seconds
    (Ray itself would wait minutes, then raise), before Ray starts."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FlSaliencyError(f"--address {address}: expected {ADDRESS_FORMS}")
    deadline = time.monotonic() + timeout
    while True:  # a head that is still starting answers within the wait
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=max(deadline - time.monotonic(), 0.1)):
                return
        except OSError as exc:
            if time.monotonic() + 0.2 >= deadline:
                reason = exc.strerror or str(exc) or type(exc).__name__
                raise FlSaliencyError(
                    f"--address {address}: nothing answered there within {timeout:g} s ({reason}); check that the "
                    f"cluster's head runs and this machine reaches it, raise --connect-timeout, or leave out --address "
                    f"to run Ray locally") from None
            time.sleep(0.2)


def sweep(jobs: list[Job], address: str | None = None, progress: bool = True, echo=print,
          max_retries: int = 3, feasibility_interval: float = 5.0, connect_timeout: float = 10.0) -> list[dict]:
    """Run ``jobs`` as Ray tasks (local Ray unless ``address``); prints a line per finished stage with the node it
    ran on, keeps the manifest sweep.json in the storage, and returns one result per job. A local sweep folder
    has one driver at a time (its lock; a second sweep into it is refused in one line)."""
    if not jobs:
        return []
    root = jobs[0].root
    with contextlib.nullcontext() if is_uri(root) else locked_output_dir(root):
        return _drive(jobs, address, progress, echo, max_retries, feasibility_interval, connect_timeout)


def _drive(jobs: list[Job], address: str | None, progress: bool, echo, max_retries: int,
           feasibility_interval: float, connect_timeout: float) -> list[dict]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    manifest = Manifest(jobs[0].root)
    if address:
        check_address(address, connect_timeout)
    try:
        # "local" starts a cluster of our own rather than joining one that happens to run on this machine.
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False)
        reclaim_stop_signals()
    except ConnectionError as exc:  # auto: no cluster runs on this machine
        if not address:
            raise
        raise FlSaliencyError(f"--address {address}: Ray could not join a cluster there "
                              f"({str(exc).splitlines()[0]})") from None
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        resources = {job.name: job_resources(job, gpus) for job in jobs}
        for job in jobs:
            problem = infeasible(resources[job.name], ray.nodes())
            if problem:
                raise FlSaliencyError(problem)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        log = ray.remote(StageLog).options(num_cpus=0, scheduling_strategy=here).remote()
        remote = ray.remote(_remote_job)
        pending = {remote.options(max_retries=max_retries, retry_exceptions=False, **resources[job.name])
                   .remote(job, log): job for job in jobs}
        results = []
        with progress_bar(len(jobs), "job", show=progress) as bar:  # closed before an interrupt's line

            def say(line: str | None) -> None:
                if line:
                    with bar.external_write_mode():
                        echo(line)

            def finish(result: dict) -> None:
                for event in result.pop("events", ()):  # those the log has not delivered yet
                    say(manifest.stage(event))
                results.append(result)
                say(manifest.finish(result))
                bar.update(1)

            checked = time.monotonic()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for event in ray.get(log.drain.remote()):
                    say(manifest.stage(event))
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        finish(ray.get(ref))
                    except ray.exceptions.RayError as exc:  # its worker or node died more often than --max-retries
                        finish({"job": job.name, "status": "failed", "message": str(exc).splitlines()[0],
                                "seconds": 0.0})
                if pending and time.monotonic() - checked > feasibility_interval:
                    checked = time.monotonic()
                    nodes = ray.nodes()
                    for ref, job in list(pending.items()):
                        problem = infeasible(resources[job.name], nodes)
                        if problem:  # the nodes that fitted died: say so rather than wait in silence
                            ray.cancel(ref, force=True)
                            pending.pop(ref)
                            finish({"job": job.name, "status": "failed", "message": problem, "seconds": 0.0})
                manifest.save()
    finally:
        ray.shutdown()
    failed = [r for r in results if r["status"] == "failed"]
    echo(f"sweep: {len(results) - len(failed)} of {len(results)} jobs finished" + (f", {len(failed)} failed" if failed else ""))
    return results
