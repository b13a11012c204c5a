import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fl_saliency.report.markdown import write_report
from fl_saliency.sweep.grid import Job, SweepSettings, plan, run_job, sweep
from fl_saliency.ppo.train import load_checkpoint
from helpers import TINY_FLAGS, run_main, tiny_ppo

ROOT = Path(__file__).resolve().parents[2]
TINY = tiny_ppo()


def grid(games: list[str], networks: list[str], seeds: list[int], num_timesteps: int, root, **options) -> SweepSettings:
    return SweepSettings(games=games, networks=networks, seeds=seeds, num_timesteps=num_timesteps, output_dir=root,
                         **{"ppo": TINY, **options})


def one_job(seed: int, num_timesteps: int, root, **options) -> Job:
    """Breakout, cnn, ``seed``: the job a sweep of ``options`` runs (planned without the sweep's checks)."""
    return grid(["Breakout"], ["cnn"], [seed], num_timesteps, root, **options).job("Breakout", "cnn", seed)


@pytest.mark.cluster
def test_sweep_on_local_ray_makes_the_layout_and_a_report_and_skips_on_rerun(tmp_path):
    jobs = plan(grid(["Breakout"], ["cnn", "cnn_sparse_fls_pool"], [1], 64, tmp_path, evaluate=(1, 1), max_eplen=30,
                     device="cpu"))
    lines = []
    results = sweep(jobs, progress=False, echo=lines.append)
    assert sorted(r["status"] for r in results) == ["done", "done"], results
    for network in ("cnn", "cnn_sparse_fls_pool"):
        folder = tmp_path / f"Breakout.{network}" / "01"
        for name in ("config.json", "model.pkl", "results.json", "logs/progress.csv", "logs/0.0.monitor.csv"):
            assert (folder / name).exists(), (network, name)
    assert lines[-1] == "sweep: 2 of 2 jobs finished"
    report = write_report(tmp_path)
    text = report.read_text()
    assert "| Breakout | cnn | 1 | 1 |" in text and "| 618 |" in text  # the paper's Table 3 beside ours
    # Nothing scored: the saliency table shows missing values, not zeros.
    assert "| Breakout | cnn | 0 | — | — | — | — |" in text

    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "report" not in p.name and p.name != "sweep.json"}
    again = sweep(jobs, progress=False, echo=lambda s: None)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after


@pytest.mark.subprocess
def test_a_killed_job_resumes_from_its_checkpoint(tmp_path):
    job = one_job(1, 12 * TINY.batch_size, tmp_path, device="cpu")
    args = ["--output-dir", str(job.folder), "--network", "cnn", "--env-name", "BreakoutNoFrameskip-v4",
            "--train-seed", "1", "--num-timesteps", str(job.train.num_timesteps), *TINY_FLAGS, "--save-interval", "1", "--device", "cpu"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_baselines.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while not (job.folder / "checkpoint.pt").exists():
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(job.folder / "checkpoint.pt")["update"] < 12
    result = run_job(job)
    assert result["status"] == "done" and result["message"] == "resumed training"
    assert load_checkpoint(job.folder / "checkpoint.pt")["update"] == 12
    assert run_job(job)["status"] == "skipped"


@pytest.mark.slow
def test_a_failing_job_is_reported_without_raising(tmp_path):
    job = one_job(1, 64, tmp_path, evaluate=(1, 1), max_eplen=30, device="cpu", saliency=tmp_path / "no-such-dataset")
    result = run_job(job)
    assert result["status"] == "failed" and "no-such-dataset" in result["message"]
    assert (job.folder / "results.json").exists()  # the stages before the failure are kept


@pytest.mark.subprocess
def test_bad_sweep_arguments_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "sweep", "--games", "Breakout", "--networks",
                             "cnn,cnn_nope", "--output-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown network 'cnn_nope'" in result.stderr


def test_jobs_ask_ray_for_the_cpus_their_env_workers_use(tmp_path, monkeypatch):
    from fl_saliency.sweep.grid import job_resources

    job = one_job(1, 64, tmp_path)
    assert job_resources(job, gpus_available=False) == {"num_cpus": 2}
    assert job_resources(job, gpus_available=True) == {"num_cpus": 2, "num_gpus": 0.25}
    single = one_job(1, 16, tmp_path, ppo=tiny_ppo(num_envs=1, nminibatches=1))
    assert job_resources(single, gpus_available=False) == {"num_cpus": 1}
    seen = []
    monkeypatch.setattr("fl_saliency.ppo.train.train", lambda settings, echo, **_: seen.append(settings.env_workers))
    assert run_job(job)["status"] == "done" and seen == [2]


def test_a_job_carries_the_commands_settings_and_works_in_the_scratch_of_the_node_it_is_sent_to(tmp_path, monkeypatch):
    import hashlib
    import pickle

    monkeypatch.setenv("FL_SALIENCY_SCRATCH", str(tmp_path / "driver"))
    job = one_job(3, 64, "s3://bucket/sweep", evaluate=(4, 5), max_eplen=30, saliency=tmp_path / "gaze",
                  cpus_per_job=3, precision="bf16", repeat_action_probability=0.25)
    monkeypatch.setenv("FL_SALIENCY_SCRATCH", str(tmp_path / "node"))  # Ray unpickles it on another node
    train, evaluation, saliency = pickle.loads(pickle.dumps(job)).settings("cuda")
    folder = tmp_path / "node" / hashlib.sha1(b"s3://bucket/sweep").hexdigest()[:12] / "Breakout.cnn" / "03"
    assert (train.output_dir, evaluation.experiment_dir, evaluation.output_dir, saliency.experiment_dir,
            saliency.output_dir) == (folder,) * 5
    assert (train.env_name, train.train_seed, train.num_timesteps, train.repeat_action_probability) == (
        "BreakoutNoFrameskip-v4", 3, 64, 0.25)
    assert (evaluation.num_env, evaluation.evals_per_env, evaluation.max_eplen, saliency.atari_head_dir) == (
        4, 5, 30, tmp_path / "gaze")
    assert (train.env_workers, evaluation.env_workers) == (3, 3)
    assert (train.precision, evaluation.precision) == ("bf16", "bf16")
    assert (train.device, evaluation.device, saliency.device) == ("cuda",) * 3
    assert one_job(1, 64, tmp_path).settings("cpu")[1:] == (None, None)  # no --evaluate, no --saliency


def test_resources_per_job_and_the_device_ray_gives_a_job(tmp_path):
    from fl_saliency.sweep.grid import infeasible, job_device, job_resources

    job = lambda **kw: one_job(1, 64, tmp_path, **kw)
    assert job_resources(job(cpus_per_job=3), gpus_available=False) == {"num_cpus": 3}
    assert job_resources(job(gpus_per_job=1.0), gpus_available=True) == {"num_cpus": 2, "num_gpus": 1.0}
    assert job_resources(job(gpus_per_job=0.125), gpus_available=False) == {"num_cpus": 2, "num_gpus": 0.125}
    assert job_resources(job(gpus_per_job=0), gpus_available=True) == {"num_cpus": 2}
    assert job_resources(job(device="cpu"), gpus_available=True) == {"num_cpus": 2}
    # On Ray the job uses the GPU it was given (CUDA_VISIBLE_DEVICES holds only it) and never one it was not.
    assert job_device(job(), gpu_ids=[3]) == "cuda"
    assert job_device(job(), gpu_ids=[]) == "cpu"
    assert job_device(job(device="cuda"), gpu_ids=[0]) == "cuda"
    assert job_device(job(device="auto"), gpu_ids=None) == "auto"

    nodes = [{"Alive": True, "Resources": {"CPU": 1.0}}, {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
             {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    assert infeasible({"num_cpus": 8, "num_gpus": 0.25}, nodes) is None
    assert infeasible({"num_cpus": 2}, nodes) is None
    assert infeasible({"num_cpus": 16}, nodes).startswith(
        "a job asks Ray for 16 CPU and no node of the cluster has that (the largest of its 2 alive nodes: 8 CPU and 1 GPU)")
    assert "asks Ray for 1 CPU and 2 GPU" in infeasible({"num_cpus": 1, "num_gpus": 2}, nodes)


def test_sweep_settings_are_checked_before_ray_starts(tmp_path, capsys):
    def sweep_cli(*args):
        return run_main(capsys, ["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir",
                                 str(tmp_path / "sweep"), *args])

    for args, message in [(["--num-timesteps", "100"], "--num-timesteps 100 is below one update of num_env x nsteps"),
                          (["--num-timesteps", "2048", "--saliency", str(tmp_path / "no-gaze")],
                           f"Atari-HEAD folder {tmp_path / 'no-gaze'} does not exist"),
                          (["--gpus-per-job", "0", "--device", "cuda"], "--device cuda needs --gpus-per-job above 0"),
                          (["--cpus-per-job", "0"], "argument --cpus-per-job: must be an integer >= 1, got '0'"),
                          (["--output-dir", "nope://bucket"], "storage nope://bucket: Unrecognized filesystem type")]:
        code, stderr = sweep_cli(*args)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert message in stderr
    assert not (tmp_path / "sweep").exists()  # nothing started


@pytest.mark.slow
def test_a_job_killed_before_its_first_checkpoint_starts_over(tmp_path):
    job = one_job(1, 2 * TINY.batch_size, tmp_path, device="cpu")
    (job.folder / "logs").mkdir(parents=True)
    (job.folder / "config.json").write_text("{}")
    (job.folder / "logs" / "progress.csv").write_text("nupdates\n")
    result = run_job(job)
    assert result["status"] == "done" and result["message"] == "trained", result
    assert load_checkpoint(job.folder / "checkpoint.pt")["update"] == 2
    # A model.pkl without a checkpoint (the paper's released runs) is never deleted: the job fails instead.
    other = one_job(2, 2 * TINY.batch_size, tmp_path, device="cpu")
    other.folder.mkdir(parents=True)
    (other.folder / "model.pkl").write_bytes(b"released weights")
    result = run_job(other)
    assert result["status"] == "failed"
    assert "already holds a run without a checkpoint.pt to continue from (model.pkl)" in result["message"]
    assert (other.folder / "model.pkl").read_bytes() == b"released weights"


@pytest.mark.cluster
def test_a_job_whose_fitting_nodes_are_gone_is_reported_not_awaited(tmp_path, monkeypatch):
    import ray

    real_nodes = ray.nodes
    calls = []

    def nodes_then_none():  # the check before the start sees the node; the ones during the run see it die
        calls.append(1)
        return real_nodes() if len(calls) == 1 else [{**n, "Alive": False} for n in real_nodes()]

    monkeypatch.setattr(ray, "nodes", nodes_then_none)
    job = one_job(1, 500 * TINY.batch_size, tmp_path, device="cpu")
    lines = []
    started = time.monotonic()
    [result] = sweep([job], progress=False, echo=lines.append, feasibility_interval=0.5)
    assert result["status"] == "failed" and result["message"].startswith(
        "a job asks Ray for 2 CPU and no node of the cluster has that (the largest of its 0 alive nodes")
    assert time.monotonic() - started < 60
    assert lines[-1] == "sweep: 0 of 1 jobs finished, 1 failed"


def _training_span(folder: Path) -> tuple[float, float]:
    """When a job trained: its monitor's start stamp (written as its envs start) to its model.pkl's write."""
    header = (folder / "logs" / "0.0.monitor.csv").read_text().splitlines()[0]
    return json.loads(header.lstrip("#"))["t_start"], (folder / "model.pkl").stat().st_mtime


@pytest.mark.slow
def test_two_cpus_run_one_two_cpu_job_at_a_time_and_progress_shows_without_a_terminal(tmp_path, capsys):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    jobs = plan(grid(["Breakout"], ["cnn"], [1, 2, 3], 4 * TINY.batch_size, tmp_path, device="cpu"))
    lines = []
    results = sweep(jobs, echo=lines.append)  # joins (then shuts down) the Ray started here
    assert sorted(r["status"] for r in results) == ["done"] * 3, results
    spans = sorted(_training_span(job.folder) for job in jobs)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, spans
    # Every stage is heard once (from the log or from the job's result), and the manifest counts one attempt each.
    assert sorted(line.split()[0] for line in lines[:-1]) == ["done"] * 3 + ["started"] * 3 + ["trained"] * 3, lines
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert [manifest["jobs"][job.name]["attempts"] for job in jobs] == [1, 1, 1]
    # stderr is no terminal here: the bar's states are lines of their own (no redraws), its first and last shown.
    err = capsys.readouterr().err
    states = re.findall(r"\d+%\|[^\n|]*\| (\d)/3 \[", err)
    assert "\r" not in err and all(line.count("/3 [") <= 1 for line in err.splitlines()), err
    assert states[0] == "0" and states[-1] == "3", err


def test_a_job_given_twice_is_refused_before_ray_starts(tmp_path, capsys):
    for args, message in [(["--seeds", "1,01"], "--seeds names 1 twice: its jobs would train into one folder at once"),
                          (["--networks", "cnn_daqn,cnn,cnn_daqn"], "--networks names cnn_daqn twice:"),
                          (["--games", "Breakout,BreakoutNoFrameskip-v4"],
                           "--games names Breakout twice (as Breakout and BreakoutNoFrameskip-v4): its jobs"),
                          (["--games", "MsPacman,msPacman"], "--games names MsPacman twice (as MsPacman and msPacman)")]:
        argv = ["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir", str(tmp_path / "sweep"), *args]
        code, stderr = run_main(capsys, argv)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert message in stderr, stderr
    assert not (tmp_path / "sweep").exists()


def test_an_address_without_a_cluster_is_one_line_after_the_stated_wait(tmp_path, capsys):
    def sweep_cli(*args):
        return run_main(capsys, ["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir",
                                 str(tmp_path / "sweep"), *args])

    code, stderr = sweep_cli("--address", "notahost")
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "--address notahost: expected HOST:PORT of a Ray cluster's head" in stderr
    with socket.socket() as unused:  # bound, never listening: connections to it are refused
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
        started = time.monotonic()
        code, stderr = sweep_cli("--address", address, "--connect-timeout", "1.5")
        waited = time.monotonic() - started
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"--address {address}: nothing answered there within 1.5 s (Connection refused)" in stderr
    assert 1.3 < waited < 10, waited
    assert not (tmp_path / "sweep").exists()


def test_address_auto_without_a_cluster_on_this_machine_is_one_line(tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    no_cluster = lambda: []  # the clusters other tests run on this machine are not found
    no_cluster.cache_clear = lambda: None
    monkeypatch.setattr(ray._private.services, "find_gcs_addresses", no_cluster)
    monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: None)
    code, stderr = run_main(capsys, ["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir",
                                     str(tmp_path / "sweep"), "--address", "auto"])
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "--address auto: Ray could not join a cluster there (Could not find any running Ray instance" in stderr


@pytest.mark.slow
def test_a_job_whose_worker_dies_past_its_retries_is_a_failed_job(tmp_path):
    import psutil

    job = one_job(1, 500 * TINY.batch_size, tmp_path, device="cpu")
    lines = []

    def kill_the_worker(line: str) -> None:  # the process the local Ray runs the job in, named after the task
        lines.append(line)
        if line.split()[0] == "started":
            [worker] = [p for p in psutil.Process().children(recursive=True)
                        if "ray::_remote_job" in " ".join(p.cmdline())]
            worker.kill()

    [result] = sweep([job], progress=False, echo=kill_the_worker, max_retries=0)
    assert result["status"] == "failed" and "worker died" in result["message"], result
    assert lines[-1] == "sweep: 0 of 1 jobs finished, 1 failed"
    assert json.loads((tmp_path / "sweep.json").read_text())["jobs"]["Breakout.cnn/01"]["status"] == "failed"


def test_a_second_sweep_into_the_same_folder_is_refused_naming_the_first(tmp_path, capsys):
    from helpers import hold_lock

    root = tmp_path / "sweep"
    holder = hold_lock(root)  # a sweep driver, as far as the folder's lock goes
    try:
        code, stderr = run_main(capsys, ["sweep", "--games", "Breakout", "--networks", "cnn", "--output-dir",
                                         str(root)])
        assert code == 2 and stderr.strip().splitlines() == [
            f"fl-saliency: error: {root} is being written by process {holder.pid} (-c {root} -); wait for it to end "
            f"(or stop it), then run the command again"]
    finally:
        holder.kill()
        holder.wait()
    assert not list(root.glob("Breakout*"))  # no job started
