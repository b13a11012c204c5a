import subprocess

import pytest

from helpers import mounted_tmpfs


@pytest.hookimpl(tryfirst=True)  # before -m selects
def pytest_collection_modifyitems(items):
    """A cluster, browser or subprocess test is slow as well, so that pytest -m "not slow" leaves it out."""
    for item in items:
        if any(item.get_closest_marker(name) for name in ("cluster", "browser", "subprocess")):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB disk (tmpfs), empty."""
    with mounted_tmpfs(tmp_path / "small_disk", "2m") as folder:
        yield folder


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """An experiment folder: an untrained cnn_sparse_fls (seed 0) for Breakout and its config.json."""
    import torch

    from fl_saliency.agents.checkpoint import save_config, save_model
    from fl_saliency.agents.networks import ActorCritic

    folder = tmp_path_factory.mktemp("exp")
    torch.manual_seed(0)
    save_model(ActorCritic("cnn_sparse_fls", 4), folder / "model.pkl")
    save_config({"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return folder


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder on a file system mounted read-only (root writes anywhere else, whatever the permissions)."""
    with mounted_tmpfs(tmp_path / "ro", "1m") as folder:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
