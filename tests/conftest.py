import contextlib
import subprocess

import pytest


@pytest.hookimpl(tryfirst=True)  # before -m selects
def pytest_collection_modifyitems(items):
    """A cluster, browser or subprocess test is slow as well, so that pytest -m "not slow" leaves it out."""
    for item in items:
        if any(item.get_closest_marker(name) for name in ("cluster", "browser", "subprocess")):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def mounted_tmpfs(folder, size: str):
    """A tmpfs of ``size`` bytes (mount's suffixes: 2m) at ``folder``: a disk that fills for real.

    Needs root and the mount command; without them the test is skipped, naming the reason.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("cannot mount a small tmpfs to fill: no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB disk (tmpfs), empty."""
    with mounted_tmpfs(tmp_path / "small_disk", "2m") as folder:
        yield folder


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """An experiment folder: an untrained cnn_sparse_fls (seed 0) for Breakout and its config.json."""
    import torch

    from fl_saliency.checkpoint import save_config, save_model
    from fl_saliency.networks import ActorCritic

    folder = tmp_path_factory.mktemp("exp")
    torch.manual_seed(0)
    save_model(ActorCritic("cnn_sparse_fls", 4), folder / "model.pkl")
    save_config({"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return folder
