import numpy as np
import pytest
import torch

from fl_saliency.agents.networks import SPARSE_GEOMETRY
from fl_saliency.evaluation.perception_video import PerceptionRecorder, VideoWriter, read_frames, tile_images


def test_recorder_overlays_attention_on_one_common_scale(tmp_path):
    recorder = PerceptionRecorder(tmp_path / "v.mkv", SPARSE_GEOMETRY, [0], raw=True, processed=False)
    black = np.zeros((1, 210, 160, 3), np.uint8)
    obs = np.zeros((1, 4, 84, 84), np.uint8)
    for value in (1.0, 2.0):  # one cell (3, 3) lit; the second step holds the recording's maximum
        attention = torch.zeros(1, 7, 7)
        attention[0, 3, 3] = value
        recorder.add(attention, obs, black, np.zeros(1, bool))
    recorder.finish()
    first, second = list(read_frames(tmp_path / "v.mkv"))
    # The cell covers input rows/cols 24..59 of 84, i.e. about rows 60..147 and cols 46..112 of the screen.
    centre = (105, 80)
    # JET at 1.0 is pure dark red (128, 0, 0); blended over black with weight 0.6 -> 77.
    assert tuple(second[centre]) == (77, 0, 0)
    assert first[centre][0] != 77 and first[centre].max() > 0  # half the maximum: a different colour
    assert second[5, 5].max() == 0 and first[5, 5].max() == 0  # no attention, frame untouched


def test_recorder_maximum_runs_over_every_environment_shown_or_not(tmp_path):
    """As the original: environment 1 is not shown but its attention (2.0) sets the scale, so the shown
    environment's 1.0 is drawn at half the maximum; environment 2 has finished, so its 4.0 does not count."""
    def record(path, attention, finished):
        recorder = PerceptionRecorder(path, SPARSE_GEOMETRY, [0], raw=True, processed=False)
        recorder.add(attention, np.zeros((3, 4, 84, 84), np.uint8), np.zeros((3, 210, 160, 3), np.uint8), finished)
        recorder.finish()
        return next(read_frames(path))[105, 80]

    attention = torch.zeros(3, 7, 7)
    attention[:, 3, 3] = torch.tensor([1.0, 2.0, 4.0])
    half = record(tmp_path / "a.mkv", attention, np.array([False, False, True]))
    attention[1, 3, 3] = 1.0
    full = record(tmp_path / "b.mkv", attention, np.array([False, False, True]))
    assert tuple(full) == (77, 0, 0)  # 1.0 is the maximum: JET's dark red at weight 0.6
    assert tuple(half) != tuple(full) and half.max() > 0


def test_tile_images_matches_baselines_layout():
    images = np.arange(3)[:, None, None, None] * np.ones((3, 2, 2, 1), np.int64) + 1
    tiled = tile_images(images)
    # 3 images: ceil(sqrt(3)) = 2 rows of 2 columns, the last slot black.
    assert tiled.shape == (4, 4, 1)
    assert tiled[0, 0, 0] == 1 and tiled[0, 2, 0] == 2 and tiled[2, 0, 0] == 3 and tiled[2, 2, 0] == 0


def test_video_writer_shows_the_file_only_once_closed(tmp_path):
    writer = VideoWriter(tmp_path / "v.mkv", 32, 16)
    frames = [np.full((16, 32, 3), value, np.uint8) for value in (0, 100, 200)]
    for frame in frames:
        writer.write(frame)
    assert [p.name for p in tmp_path.iterdir()] == [".v.mkv.tmp.mkv"]
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["v.mkv"]
    decoded = list(read_frames(tmp_path / "v.mkv"))
    assert len(decoded) == 3 and all(np.abs(d.astype(int) - f).max() <= 2 for d, f in zip(decoded, frames))


def noise(rng, n):
    return rng.integers(0, 256, (n, 210, 160, 3), dtype=np.uint8)


def test_full_disk_while_recording_leaves_nothing(small_disk):
    recorder = PerceptionRecorder(small_disk / "perception.mkv", SPARSE_GEOMETRY, [0], raw=True, processed=False)
    rng = np.random.default_rng(0)
    obs = np.zeros((1, 4, 84, 84), np.uint8)
    with pytest.raises(OSError) as error:
        for _ in range(100):  # 100 KB of incompressible screen a step: the 2 MB fill within 20 steps
            recorder.add(torch.rand(1, 7, 7), obs, noise(rng, 1), np.zeros(1, bool))
    assert error.value.errno == 28
    recorder.abort()
    assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_full_disk_while_composing_the_overlay_leaves_nothing(small_disk):
    # Black screens cost nothing in pass 1; their overlay of random attention is what fills the disk in pass 2.
    recorder = PerceptionRecorder(small_disk / "perception.mkv", SPARSE_GEOMETRY, [0], raw=True, processed=False)
    black, obs = np.zeros((1, 210, 160, 3), np.uint8), np.zeros((1, 4, 84, 84), np.uint8)
    torch.manual_seed(0)
    for _ in range(700):  # about 3.7 KB of overlay a step
        recorder.add(torch.rand(1, 7, 7), obs, black, np.zeros(1, bool))
    with pytest.raises(OSError) as error:
        recorder.finish()
    assert error.value.errno == 28
    assert list(small_disk.iterdir()) == []
