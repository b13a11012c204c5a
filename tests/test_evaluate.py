import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from fl_saliency.checkpoint import save_config, save_model
from fl_saliency.envs.breakout_infinite import breakout_score, set_breakout_score
from fl_saliency.envs.emulator import AtariEmulator
from fl_saliency.errors import FlSaliencyError
from fl_saliency.evaluate import EvalSettings, evaluate
from fl_saliency.networks import ActorCritic, SPARSE_GEOMETRY
from fl_saliency.video import PerceptionRecorder, read_frames, tile_images
from numpy_reference import random_baselines_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exp")
    torch.manual_seed(0)
    save_model(ActorCritic("cnn_sparse_fls", 4), folder / "model.pkl")
    save_config({"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return folder


def settings(experiment, out, **kwargs):
    base = dict(experiment_dir=experiment, output_dir=out, num_env=2, evals_per_env=2, max_eplen=200, device="cpu")
    base.update(kwargs)
    return EvalSettings(**base)


def test_results_have_the_original_keys_and_counts(experiment, tmp_path):
    evaluate(settings(experiment, tmp_path / "e"), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert list(results) == ["rewards", "lengths", "elapsed_time", "done_per_env"]
    assert len(results["rewards"]) == len(results["lengths"]) == len(results["elapsed_time"]) == 4
    assert len(results["done_per_env"]) == 2 and min(results["done_per_env"]) >= 2
    # Grouped by environment: each env's two episodes in the order they ended (Monitor time grows).
    t = results["elapsed_time"]
    assert t[0] < t[1] and t[2] < t[3]
    assert all(0 < length <= 200 for length in results["lengths"])
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["rewards"]["n"] == 4 and summary["rewards"]["mean"] == pytest.approx(np.mean(results["rewards"]))
    assert summary["settings"]["max_eplen"] == 200


def test_same_seed_same_rewards_with_deterministic_actions(experiment, tmp_path):
    runs = []
    for name in ("a", "b"):
        evaluate(settings(experiment, tmp_path / name, deterministic=True), echo=lambda s: None)
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    assert runs[0]["rewards"] == runs[1]["rewards"] and runs[0]["lengths"] == runs[1]["lengths"]
    assert runs[0]["done_per_env"] == runs[1]["done_per_env"]


def test_bf16_evaluation_plays_the_same_protocol(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", num_env=2, evals_per_env=1, max_eplen=50,
                                precision="bf16", processed_obs=True), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert len(results["rewards"]) == 2 and results["lengths"] == [50.0, 50.0]
    assert summary["settings"]["precision"] == "bf16"
    frames = list(read_frames(tmp_path / "e" / "perception.mkv"))
    assert len(frames) == summary["agent_steps"] and frames[0].shape == (2 * 160, 160, 3)


def test_max_eplen_truncates_every_game(experiment, tmp_path):
    evaluate(settings(experiment, tmp_path / "e", max_eplen=20, evals_per_env=1), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    # Breakout's games last far longer than 20 steps: every counted game is cut at exactly 20 Monitor steps.
    assert results["lengths"] == [20.0, 20.0]


def test_video_has_one_frame_per_step_tiled_and_black_once_finished(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", raw_obs=True, processed_obs=True, max_eplen=400,
                                evals_per_env=1), echo=lambda s: None)
    frames = list(read_frames(tmp_path / "e" / "perception.mkv"))
    assert len(frames) == summary["agent_steps"]
    # Two environments: tile_images puts them on 2 rows; each tile is raw (210) over processed (160), 160 wide.
    assert frames[0].shape == (2 * (210 + 160), 160, 3)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert frames[0][:370].max() > 0 and frames[0][370:].max() > 0
    # The env whose game ended first (the seeds make the two games differ) is black from then on; the
    # other still plays in the last frame.
    assert results["lengths"][0] != results["lengths"][1]
    first = int(np.argmin(results["elapsed_time"]))
    tile = lambda frame, env: frame[env * 370 : (env + 1) * 370]
    assert tile(frames[-1], first).max() == 0 and tile(frames[-1], 1 - first).max() > 0


def test_single_env_video_in_mp4(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", processed_obs=True, video_env=1, video_format="mp4",
                                max_eplen=30, evals_per_env=1), echo=lambda s: None)
    frames = list(read_frames(tmp_path / "e" / "perception.mp4"))
    assert len(frames) == summary["agent_steps"] and frames[0].shape == (160, 160, 3)


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


def test_papers_released_run_format_evaluates(tmp_path):
    folder = tmp_path / "Breakout.cnn_daqn" / "01"
    folder.mkdir(parents=True)
    joblib.dump(random_baselines_params("cnn_daqn", 4, np.random.default_rng(0)), folder / "model.pkl")
    (folder / "config.json").write_text(json.dumps({"network": "cnn_daqn", "env_name": "BreakoutNoFrameskip-v4",
                                                    "seed": 1}))
    evaluate(settings(folder, tmp_path / "out", evals_per_env=1, max_eplen=50), echo=lambda s: None)
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["rewards"]) == 2


def test_existing_results_are_kept_unless_forced(experiment, tmp_path):
    out = tmp_path / "e"
    evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20), echo=lambda s: None)
    before = (out / "results.json").read_text()
    with pytest.raises(FlSaliencyError, match="already holds results.json; pass --force"):
        evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20), echo=lambda s: None)
    assert (out / "results.json").read_text() == before
    evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20, force=True), echo=lambda s: None)


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "run_baselines.py"), *args], capture_output=True, text=True, cwd=ROOT)


def test_run_baselines_script(experiment, tmp_path):
    result = run_script("--experiment-dir", str(experiment), "--output-dir", str(tmp_path / "o"), "--num-env", "1",
                        "--evals-per-env", "1", "--max-eplen", "40")
    assert result.returncode == 0, result.stderr
    assert "1 episodes, score mean" in result.stdout and (tmp_path / "o" / "results.json").exists()


def test_run_baselines_video_recorder_records_every_step_of_the_plain_screens(tmp_path):
    """--video-recorder: one MP4 holding the tiled screens at reset and after every step (the last included).
    Checked against the raw perception video of the same run: with cnn (attention all zeros) its frames are
    the plain screens before each step, lossless, with finished environments black."""
    folder = tmp_path / "exp"
    folder.mkdir()
    torch.manual_seed(0)
    save_model(ActorCritic("cnn", 4), folder / "model.pkl")
    save_config({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    result = run_script("--experiment-dir", str(folder), "--output-dir", str(tmp_path / "o"), "--num-env", "2",
                        "--evals-per-env", "1", "--max-eplen", "400", "--raw-obs", "--video-recorder")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    videos = sorted((tmp_path / "o" / "videos").iterdir())
    assert [p.name.split(".video")[-1] for p in videos] == ["000000.meta.json", "000000.mp4"]
    meta = json.loads(videos[0].read_text())
    assert meta["step_id"] == 0 and meta["content_type"] == "video/mp4"
    gameplay = list(read_frames(videos[1]))
    perception = list(read_frames(tmp_path / "o" / "perception.mkv"))
    assert len(gameplay) == summary["agent_steps"] + 1 == len(perception) + 1
    assert gameplay[0].shape == (2 * 210, 160, 3)  # two environments tiled on two rows
    lengths = json.loads((tmp_path / "o" / "results.json").read_text())["lengths"]
    both_playing = int(min(lengths)) // 4 - 2
    for step in (0, both_playing // 2, both_playing):
        assert np.abs(gameplay[step].astype(int) - perception[step]).mean() < 2.0, step  # H.264 at crf 18
    # After an environment finished it keeps playing in the gameplay video (black in the perception video).
    assert gameplay[-2].max() > 0 and np.abs(gameplay[-2].astype(int) - perception[-1]).max() > 50


def test_gameplay_recorder_starts_a_file_after_video_length_plus_one_frames(tmp_path):
    """VecVideoRecorder(video_length=3): files start at steps 0, 4, 8, each named by that step; every frame
    is in exactly one file, in order."""
    from fl_saliency.gameplay_video import GameplayRecorder

    def screens(step):  # one grey level a step, two environments
        return np.full((2, 210, 160, 3), 20 * step, np.uint8)

    recorder = GameplayRecorder(tmp_path / "videos", video_length=3)
    recorder.reset(screens(0))
    for step in range(1, 11):
        recorder.step(screens(step))
    paths = recorder.close()
    assert [p.name[-10:] for p in paths] == ["000000.mp4", "000004.mp4", "000008.mp4"]
    levels = [[int(round(f.mean())) for f in read_frames(p)] for p in paths]
    assert [len(x) for x in levels] == [4, 4, 3]
    np.testing.assert_allclose(sum(levels, []), [20 * s for s in range(11)], atol=2)
    assert [json.loads(p.with_suffix(".meta.json").read_text())["step_id"] for p in paths] == [0, 4, 8]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: (f / "model.pkl").unlink(), "checkpoint not found"),
        (lambda f: (f / "model.pkl").write_bytes(b"garbage"), "not a readable checkpoint"),
        (lambda f: (f / "config.json").write_text('{"network": "cnn_sparse_fls"}'), "does not name env_name"),
        (lambda f: (f / "config.json").write_text('{"network": "cnn_sparse_fls", "env_name": "MsPacman"}'),
         "has 4 actions but MsPacman has 9"),
    ],
)
def test_bad_experiments_are_one_line(experiment, tmp_path, mutate, message):
    import shutil

    folder = tmp_path / "exp"
    shutil.copytree(experiment, folder)
    mutate(folder)
    result = run_script("--experiment-dir", str(folder), "--output-dir", str(tmp_path / "o"), "--num-env", "1")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_breakout_infinite_rewrites_the_score_and_keeps_true_points():
    env = AtariEmulator("Breakout", breakout_infinite=True)  # agent steps of 4 NOOP frames, no other wrapper
    env.reset(seed=0)
    ale = env.unwrapped.ale
    set_breakout_score(ale, 863)
    assert breakout_score(ale) == 863
    _, reward, *_ = env.step(0)
    assert reward == 863  # the test's own RAM write, seen by ALE as points
    set_breakout_score(ale, 864)  # as if a brick had just been hit at 863
    _, reward, *_ = env.step(0)
    # Frame 1: one true point, the RAM rewritten to 432; frame 2: ALE's -432 for it, added back.
    assert reward == 1 and breakout_score(ale) == 432
    for _ in range(50):
        _, reward, *_ = env.step(0)
        assert reward >= 0


def test_breakout_infinite_is_only_for_breakout():
    with pytest.raises(FlSaliencyError, match="patches Breakout's score"):
        AtariEmulator("Pong", breakout_infinite=True)
