"""The sweep on a real two-worker-node Ray cluster (separate processes, temp and scratch folders, no shared output
folder), into file:// and s3:// storage (a local moto server), with a node killed in the middle of training."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fl_saliency.sweep.storage import Storage
from fl_saliency.ppo.train import load_checkpoint
from helpers import TINY_FLAGS
from ray_cluster import start_cluster, start_s3_server

pytestmark = pytest.mark.cluster  # a multi-node Ray cluster and a local S3 server

TINY = [*TINY_FLAGS, "--device", "cpu",
        "--cpus-per-job", "1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"), worker_cpus=[1, 1])
    yield cluster
    cluster.stop()


def sweep_command(cluster, storage: str, *args) -> list[str]:
    return [sys.executable, "-m", "fl_saliency.cli", "sweep", "--games", "Breakout", "--output-dir", storage,
            "--address", cluster.address, *TINY, *args]


def run(cluster, command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=cluster.env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def manifest(storage: Storage) -> dict:
    return json.loads(storage.read_bytes("sweep.json"))


def progress_updates(text: str) -> list[int]:
    return [int(row["nupdates"]) for row in csv.DictReader(text.splitlines())]


def test_two_jobs_run_one_on_each_node_into_file_storage(cluster, tmp_path):
    location = f"file://{tmp_path}/storage"
    result = run(cluster, sweep_command(cluster, location, "--networks", "cnn,cnn_sparse_fls_pool",
                                        "--num-timesteps", "64", "--evaluate", "1:1", "--max-eplen", "30"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep: 2 of 2 jobs finished" in result.stdout
    storage = Storage(location)
    files = storage.files()
    for network in ("cnn", "cnn_sparse_fls_pool"):
        for name in ("config.json", "model.pkl", "checkpoint.pt", "results.json", "logs/progress.csv",
                     "logs/0.0.monitor.csv"):
            assert f"Breakout.{network}/01/{name}" in files, (network, name)
    jobs = manifest(storage)["jobs"]
    assert {entry["status"] for entry in jobs.values()} == {"done"}
    worker_ids = {node.node_id()[:8] for node in cluster.nodes[1:]}
    ran_on = {entry["node"].rsplit("/", 1)[1] for entry in jobs.values()}
    assert ran_on == worker_ids  # one job on each 1-CPU node, each node working in its own scratch
    for entry in jobs.values():
        assert [s["stage"] for s in entry["stages"]] == ["trained", "evaluated"]
        assert entry["agent_steps_per_s"] > 0
        assert f"on {entry['node']}" in result.stdout
    for node in cluster.nodes:  # scratch is emptied after each job; the storage holds the runs
        assert not [p for p in node.scratch.rglob("*") if p.is_file()], node.name
    assert not (tmp_path / "file:").exists()

    report = run(cluster, [sys.executable, "-m", "fl_saliency.cli", "report", location], tmp_path)
    assert report.returncode == 0, report.stderr
    text = storage.read_bytes("report.md").decode()
    assert "| Breakout | cnn | 1 | 1 |" in text
    assert "| 2 | 2 done |" in text  # the manifest's totals

    # A rerun reads the storage: every stage is there, nothing is trained again.
    again = run(cluster, sweep_command(cluster, location, "--networks", "cnn,cnn_sparse_fls_pool",
                                       "--num-timesteps", "64", "--evaluate", "1:1", "--max-eplen", "30"), tmp_path)
    assert again.returncode == 0 and again.stdout.count("already finished") == 2, again.stdout


def test_a_job_runs_into_s3_storage(cluster, tmp_path):
    server = start_s3_server(tmp_path / "moto.log")
    try:
        location = server.uri("sweeps/paper-grid")
        result = run(cluster, sweep_command(cluster, location, "--networks", "cnn_sparse_fls",
                                            "--num-timesteps", "64"), tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        storage = Storage(location)
        assert storage.fs.type_name == "s3"
        files = storage.files()
        assert {"Breakout.cnn_sparse_fls/01/model.pkl", "Breakout.cnn_sparse_fls/01/checkpoint.pt",
                "sweep.json"} <= set(files)
        local = tmp_path / "copy"
        storage.download("Breakout.cnn_sparse_fls/01", local)
        assert load_checkpoint(local / "checkpoint.pt")["update"] == 2
        assert progress_updates((local / "logs" / "progress.csv").read_text()) == [1, 2]
    finally:
        server.stop()


def test_a_job_that_fits_no_node_is_refused_before_the_sweep_starts(cluster, tmp_path):
    command = sweep_command(cluster, f"file://{tmp_path}/storage", "--networks", "cnn", "--num-timesteps", "64")
    command[command.index("--cpus-per-job") + 1] = "2"
    started = time.monotonic()
    result = run(cluster, command, tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "a job asks Ray for 2 CPU and no node of the cluster has that (the largest of its 3 alive nodes: 1 CPU and "
        "0 GPU): lower --cpus-per-job / --gpus-per-job or add larger nodes")
    assert time.monotonic() - started < 60


def test_a_job_failing_on_bad_input_is_reported_once_not_retried(cluster, tmp_path):
    location = f"file://{tmp_path}/storage"
    Storage(location).write_bytes("Breakout.cnn/01/model.pkl", b"released weights, no checkpoint")
    result = run(cluster, sweep_command(cluster, location, "--networks", "cnn", "--num-timesteps", "64"), tmp_path)
    assert result.returncode == 2
    assert "holds a run without a checkpoint.pt to continue from (model.pkl)" in result.stdout
    assert result.stderr.strip().endswith("some jobs failed (see above); run the same command again to retry them")
    entry = manifest(Storage(location))["jobs"]["Breakout.cnn/01"]
    assert entry["status"] == "failed" and entry["attempts"] == 1
    assert Storage(location).read_bytes("Breakout.cnn/01/model.pkl") == b"released weights, no checkpoint"


def test_a_killed_node_retries_its_job_on_the_other_node_from_the_uploaded_checkpoint(cluster, tmp_path):
    updates = 40
    location = f"file://{tmp_path}/storage"
    storage = Storage(location)
    command = sweep_command(cluster, location, "--networks", "cnn", "--num-timesteps", str(32 * updates),
                            "--save-interval", "5", "--max-retries", "2")
    proc = subprocess.Popen(command, env=cluster.env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        checkpoint = Path(f"{tmp_path}/storage/Breakout.cnn/01/checkpoint.pt")
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        node_id = manifest(storage)["jobs"]["Breakout.cnn/01"]["node"].rsplit("/", 1)[1]
        victim = next(node for node in cluster.nodes[1:] if node.node_id().startswith(node_id))
        killed_at = load_checkpoint(checkpoint)["update"]
        cluster.kill_node(victim)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert 0 < killed_at < updates
    assert "retrying" in out and "resumed training" in out, out
    entry = manifest(storage)["jobs"]["Breakout.cnn/01"]
    assert entry["attempts"] == 2 and entry["status"] == "done"
    assert not entry["node"].endswith(node_id)  # finished on the surviving node
    final = tmp_path / "final"
    storage.download("Breakout.cnn/01", final)
    assert load_checkpoint(final / "checkpoint.pt")["update"] == updates
    # Each update logged once, as an uninterrupted run logs them (log_interval 1).
    assert progress_updates((final / "logs" / "progress.csv").read_text()) == list(range(1, updates + 1))
    assert os.path.getsize(final / "model.pkl") > 0
