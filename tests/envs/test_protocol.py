"""Environment protocols (fl_saliency/envs/protocol.py): the paper's v4 and ale-py's v5 (Machado et al. 2018),
through both backends, train's config.json and evaluate."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import ale_py
import gymnasium
import numpy as np
import pytest
import torch

from fl_saliency.agents.checkpoint import save_config, save_model
from fl_saliency.envs import make_vec_env
from fl_saliency.envs.chain import make_emulator
from fl_saliency.envs.emulator import AtariEmulator
from fl_saliency.envs.wrappers import NOOP
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.evaluation.evaluate import EvalSettings, evaluate
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.envs.protocol import Protocol, protocol_of, protocol_of_config
from fl_saliency.ppo.train import TrainSettings, train
from helpers import tiny_ppo, tiny_settings

ROOT = Path(__file__).resolve().parents[2]
V5 = "ALE/Breakout-v5"
quiet = lambda text: None


def test_v5_is_machado_et_al_and_v4_the_papers():
    # Machado et al. 2018: sticky actions with probability 0.25, games capped at 108,000 frames (30 minutes at 60 Hz).
    assert protocol_of(V5) == Protocol("v5", 0.25, False, 108_000)
    assert protocol_of("BreakoutNoFrameskip-v4") == protocol_of("Breakout") == Protocol("v4", 0.0, False, 400_000)
    assert protocol_of("SpaceInvaders").max_episode_frames == 300_000
    assert protocol_of(V5, repeat_action_probability=0, full_action_space=True) == Protocol("v5", 0.0, True, 108_000)
    assert protocol_of("Breakout", repeat_action_probability=0.5) == Protocol("v4", 0.5, False, 400_000)
    # 27,000 agent steps of 4 frames; the emulator and the ALE both hold the cap.
    emulator = AtariEmulator("Breakout", protocol=protocol_of(V5))
    assert emulator.frame_limit // 4 == 27_000
    assert emulator.ale.getInt("max_num_frames_per_episode") == 108_000
    assert emulator.ale.getFloat("repeat_action_probability") == 0.25
    assert AtariEmulator("Breakout").ale.getFloat("repeat_action_probability") == 0.0


def test_v5_steps_as_ale_pys_registered_v5_env():
    """Our ALE stepped frame by frame under MaxAndSkip(4) against gym.make("ALE/Breakout-v5") with its own
    frameskip of 4, sticky actions included: the same screens, rewards and ends (the same no-op frames
    replayed into the reference)."""
    ours = AtariEmulator("Breakout", protocol=protocol_of(V5))
    reference = gymnasium.make(V5)
    ours.reset(seed=11)
    reference.reset(seed=11)
    ref_ale = reference.unwrapped.ale
    for _ in range(int(reference.unwrapped.np_random.integers(1, 31))):  # NoopReset's draw from the same seeded RNG
        ref_ale.act(ale_py.Action.NOOP)
    assert ours.frames == ref_ale.getEpisodeFrameNumber()
    actions = np.random.default_rng(3).integers(0, 4, size=300)
    for step, action in enumerate(actions):
        _, reward, terminated, truncated, _ = ours.step(int(action))
        _, ref_reward, ref_terminated, ref_truncated, _ = reference.step(int(action))
        assert (reward, terminated, truncated) == (ref_reward, ref_terminated, ref_truncated), f"step {step}"
        np.testing.assert_array_equal(ours.ale.getScreenRGB(), ref_ale.getScreenRGB(), err_msg=f"step {step}")
        if terminated:
            break
    assert step > 100  # long enough for sticky actions to have acted (the next test shows they do)


def _frames(env_name, backend, seed=5, steps=60, **protocol_options):
    vec = make_vec_env(env_name, 1, seed, backend=backend, asynchronous=False,
                       protocol=protocol_of(env_name, **protocol_options))
    actions = np.random.default_rng(1).integers(0, vec.n_actions, size=steps)
    frames = [vec.reset()] + [vec.step(np.array([a]))[0] for a in actions]
    vec.close()
    return np.stack(frames)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["baselines", "ale-vector"])
def test_sticky_actions_are_observable(backend):
    sticky = _frames(V5, backend)
    assert np.array_equal(sticky, _frames(V5, backend))  # seeded: the same stickiness again
    assert not np.array_equal(sticky, _frames(V5, backend, repeat_action_probability=0.0))
    plain = _frames(V5, backend, repeat_action_probability=0.0)
    assert np.array_equal(plain, _frames("BreakoutNoFrameskip-v4", backend))  # v5 without stickiness plays as v4
    # --repeat-action-probability applies to a v4 id too.
    assert not np.array_equal(plain, _frames("BreakoutNoFrameskip-v4", backend, repeat_action_probability=0.25))


@pytest.mark.parametrize("fused", [True, False])
def test_v5_frame_cap_truncates_where_the_ale_does(fused):
    """A small cap in place of 108,000: the game ends on the agent step that plays its last frame, the
    reset's no-op frames counted (Breakout's ball never launches without FIRE, so only the cap ends it)."""
    protocol = Protocol("v5", 0.25, False, 400)
    env = make_emulator("Breakout", fused=fused, protocol=protocol)
    env.reset(seed=2)
    noops = env.unwrapped.ale.getEpisodeFrameNumber()
    assert 1 <= noops <= 30
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, _ = env.step(NOOP)
        if terminated or truncated:
            break
    assert (terminated, truncated) == (False, True)
    assert steps == math.ceil((400 - noops) / 4)
    assert env.unwrapped.ale.getEpisodeFrameNumber() == 400


def test_ale_vector_backend_takes_the_protocol(monkeypatch):
    seen = {}
    real = ale_py.AtariVectorEnv

    def spy(game, num_envs, **kwargs):
        seen.update(kwargs)
        return real(game, num_envs, **kwargs)

    monkeypatch.setattr(ale_py, "AtariVectorEnv", spy)
    make_vec_env(V5, 1, 0, backend="ale-vector").close()
    assert (seen["repeat_action_probability"], seen["full_action_space"], seen["max_num_frames_per_episode"]) == (
        0.25, False, 108_000)
    make_vec_env(V5, 1, 0, backend="ale-vector", max_eplen=1000, protocol=protocol_of(V5, full_action_space=True)).close()
    assert seen["full_action_space"] is True and seen["max_num_frames_per_episode"] == 4000


@pytest.mark.parametrize("backend", ["baselines", "ale-vector"])
def test_full_action_space_has_18_actions(backend):
    vec = make_vec_env(V5, 2, 0, backend=backend, asynchronous=False, protocol=protocol_of(V5, full_action_space=True))
    assert vec.n_actions == 18
    vec.reset()
    obs, _, _, _ = vec.step(np.array([17, 0]))  # DOWNLEFTFIRE: an action outside Breakout's minimal set
    assert obs.shape == (2, 4, 84, 84)
    vec.close()


@pytest.mark.slow
def test_config_records_the_protocol_and_evaluate_plays_it(tmp_path):
    settings = tiny_settings(tmp_path / "run", updates=1, env_name=V5, full_action_space=True)
    train(settings, echo=quiet)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["env_name"] == V5
    assert config["protocol"] == {"version": "v5", "repeat_action_probability": 0.25, "full_action_space": True,
                                  "max_episode_frames": 108_000}
    # A resume gets the run's protocol back.
    resumed = TrainSettings.from_config(tmp_path / "run", config)
    assert resumed.protocol() == settings.protocol()
    summary = evaluate(EvalSettings(experiment_dir=tmp_path / "run", num_env=1, max_eplen=50, device="cpu"), echo=quiet)
    assert summary["env_name"] == V5 and summary["protocol"] == config["protocol"]
    summary = evaluate(EvalSettings(experiment_dir=tmp_path / "run", output_dir=tmp_path / "e0", num_env=1, max_eplen=50,
                                    repeat_action_probability=0, device="cpu"), echo=quiet)
    assert summary["protocol"]["repeat_action_probability"] == 0.0 and summary["protocol"]["full_action_space"]


@pytest.fixture
def v4_model(tmp_path):
    """A released-style v4 experiment: its config.json has no protocol."""
    folder = tmp_path / "v4"
    folder.mkdir()
    torch.manual_seed(0)
    save_model(ActorCritic("cnn", 4), folder / "model.pkl")
    save_config({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return folder


@pytest.mark.slow
def test_a_v4_model_is_evaluated_under_v4_or_v5_on_purpose(v4_model, tmp_path):
    assert protocol_of_config(json.loads((v4_model / "config.json").read_text())) == protocol_of("Breakout")
    options = dict(experiment_dir=v4_model, num_env=1, max_eplen=50, device="cpu")
    summary = evaluate(EvalSettings(output_dir=tmp_path / "v4", **options), echo=quiet)
    assert summary["env_name"] == "BreakoutNoFrameskip-v4" and summary["protocol"]["version"] == "v4"
    summary = evaluate(EvalSettings(output_dir=tmp_path / "v5", env_name=V5, **options), echo=quiet)
    assert summary["env_name"] == V5 and summary["protocol"] == protocol_of(V5).to_config()
    summary = evaluate(EvalSettings(output_dir=tmp_path / "sticky", repeat_action_probability=0.25, **options), echo=quiet)
    assert summary["protocol"] == Protocol("v4", 0.25, False, 400_000).to_config()
    with pytest.raises(FlSaliencyError, match="^the model has 4 actions but BreakoutNoFrameskip-v4 with the full "
                                              "action space has 18$"):
        evaluate(EvalSettings(output_dir=tmp_path / "full", full_action_space=True, **options), echo=quiet)
    with pytest.raises(FlSaliencyError, match="^the model has 4 actions but ALE/MsPacman-v5 has 9$"):
        evaluate(EvalSettings(output_dir=tmp_path / "pacman", env_name="ALE/MsPacman-v5", **options), echo=quiet)


@pytest.mark.parametrize("protocol, message", [
    ({"version": "v5", "repeat_action_probability": 0.25, "full_action_space": False, "max_episode_frames": 108000},
     "is not a valid v4 protocol of BreakoutNoFrameskip-v4"),
    ({"version": "v4", "repeat_action_probability": 2, "full_action_space": False, "max_episode_frames": 1},
     "is not a valid v4 protocol"),
    ({"version": "v4"}, "'protocol' must hold version, repeat_action_probability, full_action_space, max_episode_frames"),
])
def test_a_bad_recorded_protocol_is_one_line(protocol, message):
    with pytest.raises(FlSaliencyError, match=message):
        protocol_of_config({"env_name": "BreakoutNoFrameskip-v4", "protocol": protocol})


@pytest.mark.subprocess
def test_scripts_train_and_evaluate_a_v5_run(tmp_path):
    out = tmp_path / "run"
    train_run = subprocess.run(
        [sys.executable, str(ROOT / "train_baselines.py"), "--output-dir", str(out), "--network", "cnn_sparse_fls",
         "--env-name", V5, "--num-timesteps", "1024", "--num-env", "2", "--nsteps", "512", "--nminibatches", "2",
         "--noptepochs", "1", "--device", "cpu"], capture_output=True, text=True, cwd=ROOT)
    assert train_run.returncode == 0, train_run.stderr
    eval_run = subprocess.run(
        [sys.executable, str(ROOT / "run_baselines.py"), "--experiment-dir", str(out), "--output-dir", str(out / "eval"),
         "--num-env", "2", "--evals-per-env", "1", "--device", "cpu"], capture_output=True, text=True, cwd=ROOT)
    assert eval_run.returncode == 0, eval_run.stderr
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert summary["protocol"]["version"] == "v5" and summary["protocol"]["repeat_action_probability"] == 0.25
    results = json.loads((out / "eval" / "results.json").read_text())
    # Full games of at most 27,000 agent steps (the v5 cap; --max-eplen's default, 108,000, is far above it).
    assert len(results["rewards"]) == 2 and all(0 < length <= 27_000 for length in results["lengths"])


def test_sweep_jobs_train_under_the_protocol_of_their_ids(tmp_path, monkeypatch):
    from fl_saliency.sweep.grid import SweepSettings, plan, run_job

    grid = lambda games, **kw: SweepSettings(games=games, networks=["cnn"], output_dir=tmp_path, num_timesteps=32,
                                             ppo=tiny_ppo(), **kw)
    jobs = plan(grid(["ALE/Breakout-v5", "MsPacman"], full_action_space=True))
    assert [(job.train.env_name, job.folder.relative_to(tmp_path).as_posix()) for job in jobs] == [
        ("ALE/Breakout-v5", "Breakout.cnn/01"), ("MsPacmanNoFrameskip-v4", "MsPacman.cnn/01")]
    seen = []
    monkeypatch.setattr("fl_saliency.ppo.train.train", lambda settings, echo, **_: seen.append(settings.protocol()))
    assert run_job(jobs[0])["status"] == "done"
    assert seen == [Protocol("v5", 0.25, True, 108_000)]
    with pytest.raises(FlSaliencyError, match="^--games names Breakout under two protocols"):
        plan(grid(["ALE/Breakout-v5", "Breakout"]))
