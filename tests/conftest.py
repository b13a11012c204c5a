import contextlib
import subprocess

import pytest


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
