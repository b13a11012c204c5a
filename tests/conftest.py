import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs folder: a full disk for real (needs root and mount, else the test is skipped)."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True,
                                 text=True)
    except FileNotFoundError:
        pytest.skip("cannot mount a small tmpfs to fill: no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)
