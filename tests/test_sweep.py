import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fl_saliency.report import write_report
from fl_saliency.sweep import Job, plan, run_job, sweep
from fl_saliency.train import load_checkpoint
from helpers import TINY_FLAGS, run_main, tiny_ppo

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_ppo()


@pytest.mark.cluster
def test_sweep_on_local_ray_makes_the_layout_and_a_report_and_skips_on_rerun(tmp_path):
    jobs = plan(["Breakout"], ["cnn", "cnn_sparse_fls_pool"], [1], 64, tmp_path, ppo=TINY, evaluate=(1, 1), max_eplen=30,
                device="cpu")
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
    job = Job("Breakout", "cnn", 1, 12 * TINY.batch_size, tmp_path, ppo=TINY, device="cpu")
    args = ["--output-dir", str(job.folder), "--network", "cnn", "--env-name", "BreakoutNoFrameskip-v4",
            "--train-seed", "1", "--num-timesteps", str(job.num_timesteps), *TINY_FLAGS, "--save-interval", "1", "--device", "cpu"]
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
    job = Job("Breakout", "cnn", 1, 64, tmp_path, ppo=TINY, evaluate=(1, 1), max_eplen=30, device="cpu",
              atari_head_dir=tmp_path / "no-such-dataset")
    result = run_job(job)
    assert result["status"] == "failed" and "no-such-dataset" in result["message"]
    assert (job.folder / "results.json").exists()  # the stages before the failure are kept


@pytest.mark.subprocess
def test_bad_sweep_arguments_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "sweep", "--games", "Breakout", "--networks",
                             "cnn,cnn_nope", "--output-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown network 'cnn_nope'" in result.stderr


def test_jobs_ask_ray_for_the_cpus_their_env_workers_use(tmp_path, monkeypatch):
    from fl_saliency.sweep import job_resources

    job = Job("Breakout", "cnn", 1, 64, tmp_path, ppo=TINY)
    assert job_resources(job, gpus_available=False) == {"num_cpus": 2}
    assert job_resources(job, gpus_available=True) == {"num_cpus": 2, "num_gpus": 0.25}
    single = Job("Breakout", "cnn", 1, 16, tmp_path, ppo=tiny_ppo(num_envs=1, nminibatches=1))
    assert job_resources(single, gpus_available=False) == {"num_cpus": 1}
    seen = []
    monkeypatch.setattr("fl_saliency.train.train", lambda settings, echo, **_: seen.append(settings.env_workers))
    assert run_job(job)["status"] == "done" and seen == [2]


def test_resources_per_job_and_the_device_ray_gives_a_job(tmp_path):
    from fl_saliency.sweep import infeasible, job_device, job_resources

    job = lambda **kw: Job("Breakout", "cnn", 1, 64, tmp_path, ppo=TINY, **kw)
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
    job = Job("Breakout", "cnn", 1, 2 * TINY.batch_size, tmp_path, ppo=TINY, device="cpu")
    (job.folder / "logs").mkdir(parents=True)
    (job.folder / "config.json").write_text("{}")
    (job.folder / "logs" / "progress.csv").write_text("nupdates\n")
    result = run_job(job)
    assert result["status"] == "done" and result["message"] == "trained", result
    assert load_checkpoint(job.folder / "checkpoint.pt")["update"] == 2
    # A model.pkl without a checkpoint (the paper's released runs) is never deleted: the job fails instead.
    other = Job("Breakout", "cnn", 2, 2 * TINY.batch_size, tmp_path, ppo=TINY, device="cpu")
    other.folder.mkdir(parents=True)
    (other.folder / "model.pkl").write_bytes(b"released weights")
    result = run_job(other)
    assert result["status"] == "failed" and "already holds a run (model.pkl)" in result["message"]
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
    job = Job("Breakout", "cnn", 1, 500 * TINY.batch_size, tmp_path, ppo=TINY, device="cpu")
    lines = []
    started = time.monotonic()
    [result] = sweep([job], progress=False, echo=lines.append, feasibility_interval=0.5)
    assert result["status"] == "failed" and result["message"].startswith(
        "a job asks Ray for 2 CPU and no node of the cluster has that (the largest of its 0 alive nodes")
    assert time.monotonic() - started < 60
    assert lines[-1] == "sweep: 0 of 1 jobs finished, 1 failed"
