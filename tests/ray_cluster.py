"""A real multi-node Ray cluster on this machine, for the sweep tests: a head and worker nodes, each its own
``ray start --block`` process group with its own temp folder and scratch folder, joined over 127.0.0.1 with
token authentication; and a local S3-compatible server (moto). Everything is stopped by process id."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@dataclass
class Node:
    name: str
    process: subprocess.Popen
    temp_dir: Path
    scratch: Path
    log: Path

    def raylet(self) -> psutil.Process | None:
        for proc in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if proc.name() == "raylet":
                    return proc
            except psutil.NoSuchProcess:
                continue
        return None

    def node_id(self) -> str:
        raylet = self.raylet()
        return next(arg.split("=", 1)[1] for arg in raylet.cmdline() if arg.startswith("--node_id="))


@dataclass
class Cluster:
    root: Path
    env: dict
    # Ray's socket paths live under its temp folder and must stay under 108 bytes: a short folder of its own.
    ray_root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fls-ray-")))
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_node(self, name: str, num_cpus: int, head: bool = False) -> Node:
        temp_dir, scratch = self.ray_root / name, self.root / name / "scratch"
        temp_dir.mkdir()
        scratch.mkdir(parents=True)
        log = self.root / name / "ray-start.log"
        where = ["--head", "--port", str(self.port), "--include-dashboard=false"] if head else ["--address", self.address]
        env = {**self.env, "FL_SALIENCY_SCRATCH": str(scratch)}
        with open(log, "w") as out:
            process = subprocess.Popen([str(BIN / "ray"), "start", "--block", *where, "--num-cpus", str(num_cpus),
                                        "--num-gpus", "0", "--temp-dir", str(temp_dir), "--disable-usage-stats"],
                                       env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(name, process, temp_dir, scratch, log)
        self.nodes.append(node)
        _wait_for(lambda: "Ray runtime started" in log.read_text() or process.poll() is not None, 120,
                  f"ray start of {name}")
        assert process.poll() is None, log.read_text()[-3000:]
        return node

    def kill_node(self, node: Node) -> None:
        """SIGKILL the node's raylet: the node dies as a machine would (its ``ray start`` takes the rest down)."""
        node.raylet().kill()
        node.process.wait(timeout=60)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait()
        # Anything of ours that left the process groups (Ray workers of these nodes name the temp folders).
        marker = str(self.ray_root)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any(marker in arg for arg in proc.info["cmdline"] or []):
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
        shutil.rmtree(self.ray_root, ignore_errors=True)


def start_cluster(root: Path, worker_cpus: list[int]) -> Cluster:
    """A head that runs no jobs (0 CPUs: killing a worker node never takes the cluster down) and worker nodes."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           # Declare a killed node dead within seconds, not Ray's default of about 30 s.
           "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
           "RAY_health_check_failure_threshold": "3"}
    cluster = Cluster(root, env)
    try:
        cluster.add_node("head", 0, head=True)
        for i, cpus in enumerate(worker_cpus):
            cluster.add_node(f"node{i + 1}", cpus)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class S3Server:
    process: subprocess.Popen
    port: int

    def uri(self, bucket_and_prefix: str) -> str:
        return (f"s3://{bucket_and_prefix}?endpoint_override=127.0.0.1:{self.port}&scheme=http&region=us-east-1"
                f"&allow_bucket_creation=true")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def start_s3_server(log: Path) -> S3Server:
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert process.poll() is None, log.read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    _wait_for(listening, 60, "moto_server")
    return S3Server(process, port)
