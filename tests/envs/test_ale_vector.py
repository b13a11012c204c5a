"""The ale-vector backend (ale_py.AtariVectorEnv completed in Python) against Baselines' semantics.

The reference for pixels, rewards and dones is a plain ``ale_py.ALEInterface`` (one emulator
frame per ``act``, no sticky actions) replayed with the same seed, the same reset frames and
the same actions, preprocessed the Baselines way: ``warp_frame`` of the RGB max of the last two
frames of each 4-frame skip, stacked by ``FrameStacker`` (zeroed on every done).
"""

from __future__ import annotations

import ale_py
import numpy as np
import pytest

from fl_saliency.envs.ale_vector import AleVectorEnv
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import rom_id
from fl_saliency.envs.frame_stack import FrameStacker
from fl_saliency.envs.wrappers import FIRE, NOOP, warp_frame

ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


class Replay:
    """One ALEInterface retracing an AleVectorEnv environment: its reset, then agent steps of 4 frames.

    For games whose action 1 is FIRE (those used here): FIRE replaces the action after a life loss.
    """

    def __init__(self, game: str, seed: int, reset_frames: int):
        self.ale = ale_py.ALEInterface()
        self.ale.setInt("random_seed", seed)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.loadROM(ale_py.roms.get_rom_path(rom_id(game)))
        self.actions = self.ale.getMinimalActionSet()
        # The vector env's reset: reset_game, one FIRE frame, then NOOP frames, reset_frames in all.
        self.ale.reset_game()
        self.ale.act(ale_py.Action.FIRE)
        for _ in range(reset_frames - 1):
            self.ale.act(ale_py.Action.NOOP)
        self.stacker = FrameStacker(1)
        self.lives = self.ale.lives()
        self.fire_next = False

    def reset_obs(self) -> np.ndarray:
        return self.stacker.reset(warp_frame(self.ale.getScreenRGB())[None])[0]

    def step(self, action: int):
        """Returns (stacked obs, raw reward, done, game over)."""
        if self.fire_next:
            action = FIRE
        frames, reward = [], 0
        for _ in range(4):
            reward += self.ale.act(self.actions[action])
            frames.append(self.ale.getScreenRGB())
            if self.ale.game_over():
                break
        lives = self.ale.lives()
        life_loss = 0 < lives < self.lives
        self.lives, self.fire_next = lives, life_loss
        done = life_loss or self.ale.game_over()
        obs = self.stacker.push(warp_frame(np.max(frames[-2:], axis=0))[None], np.array([done]))[0]
        return obs, reward, done, self.ale.game_over()


def reset_frames(env: AleVectorEnv) -> np.ndarray:
    """Emulator frames each environment's reset took (FIRE + noops): its episode frame number right after reset."""
    return env._episode_frame_number.copy()


def play(env: AleVectorEnv, actions) -> tuple[list, list, list, list]:
    out = [], [], [], []
    for a in actions:
        for store, value in zip(out, env.step(a)):
            store.append(value)
    return out


def test_shapes_dtypes_and_interface():
    env = AleVectorEnv("BreakoutNoFrameskip-v4", 3, seed=0)
    assert env.num_envs == 3 and env.n_actions == 4
    obs = env.reset()
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:, :3].any() and obs[:, 3].any()  # a fresh stack: only the newest frame
    obs, rewards, dones, infos = env.step(np.array([0, 1, 2]))
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    assert rewards.shape == (3,) and rewards.dtype == np.float32
    assert dones.shape == (3,) and dones.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == 3 and all(isinstance(i, dict) for i in infos)
    env.close()


def test_user_errors():
    with pytest.raises(FlSaliencyError):
        AleVectorEnv("Tetris3000", 1, seed=0)
    with pytest.raises(FlSaliencyError):
        AleVectorEnv("Breakout", 1, seed=0, max_eplen=0)
    env = AleVectorEnv("Breakout", 2, seed=0)
    with pytest.raises(FlSaliencyError):
        env.step(np.zeros(2, int))  # before reset
    env.reset()
    with pytest.raises(FlSaliencyError):
        env.step(np.zeros(3, int))
    with pytest.raises(FlSaliencyError):
        env.step(np.array([0, 4]))
    env.step(np.array([0, 3]))  # still usable


def test_constructor_settings(monkeypatch):
    """No sticky actions, raw rewards, life-loss info without game restarts, v4 and max_eplen limits."""
    seen = {}
    real = ale_py.AtariVectorEnv

    def spy(game, num_envs, **kwargs):
        seen.update(kwargs, game=game)
        return real(game, num_envs, **kwargs)

    monkeypatch.setattr(ale_py, "AtariVectorEnv", spy)
    AleVectorEnv("BreakoutNoFrameskip-v4", 1, seed=0).close()
    assert seen["game"] == "breakout" and seen["repeat_action_probability"] == 0.0
    assert seen["episodic_life"] is False and seen["life_loss_info"] is True and seen["reward_clipping"] is False
    assert seen["autoreset_mode"] == "SameStep" and seen["batch_size"] == 1 and seen["full_action_space"] is False
    assert seen["max_num_frames_per_episode"] == 400_000
    AleVectorEnv("SpaceInvaders", 1, seed=0).close()
    assert seen["max_num_frames_per_episode"] == 300_000
    AleVectorEnv("Breakout", 1, seed=0, max_eplen=30_000).close()
    assert seen["max_num_frames_per_episode"] == 120_000


@pytest.mark.slow
def test_same_seed_same_trajectory_and_seed_per_rank():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=(150, 4))
    runs = []
    for _ in range(2):
        env = AleVectorEnv("Breakout", 4, seed=7)
        first = env.reset()
        runs.append((first, np.stack(play(env, actions)[0])))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    # Env rank r of seed s is env 0 of seed s + r.
    env = AleVectorEnv("Breakout", 1, seed=9)
    np.testing.assert_array_equal(env.reset()[0], runs[0][0][2])
    np.testing.assert_array_equal(np.stack(play(env, actions[:, 2:3])[0])[:, 0], runs[0][1][:, 2])
    # Other seeds start differently (the noop count, and so the ball's position, differs).
    other = AleVectorEnv("Breakout", 4, seed=1007).reset()
    assert not np.array_equal(other, runs[0][0])


def test_same_frames_same_network_inputs_as_baselines_preprocessing():
    """Breakout, a whole game of random actions: every stacked observation, reward and done equals
    the Baselines preprocessing of the same emulator frames (RGB max -> gray -> INTER_AREA), bit for bit."""
    seed, n = 3, 2
    env = AleVectorEnv("Breakout", n, seed=seed)
    obs = env.reset()
    replays = [Replay("Breakout", seed + i, f) for i, f in enumerate(reset_frames(env))]
    for i, replay in enumerate(replays):
        np.testing.assert_array_equal(obs[i], replay.reset_obs())
    rng = np.random.default_rng(1)
    game_over = np.zeros(n, bool)
    life_losses = 0
    steps = 0
    while not game_over.all():
        actions = rng.integers(0, 4, size=n)
        obs, rewards, dones, infos = env.step(actions)
        steps += 1
        for i, replay in enumerate(replays):
            if game_over[i]:
                continue
            ref_obs, ref_reward, ref_done, ref_over = replay.step(actions[i])
            assert rewards[i] == np.sign(ref_reward) and dones[i] == ref_done
            if ref_over:
                game_over[i] = True
                assert "episode" in infos[i]
            else:
                life_losses += ref_done
                np.testing.assert_array_equal(obs[i], ref_obs, err_msg=f"env {i}, step {steps}")
    assert life_losses == 2 * 4 and steps > 100


def test_sticky_actions_would_be_detected():
    """The comparison above is sensitive to sticky actions: with repeat_action_probability=0.25 the
    same seed and actions give other observations than ours."""
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 4, size=(100, 1))
    env = AleVectorEnv("Breakout", 1, seed=5)
    env.reset()
    ours = np.stack(play(env, actions)[0])[:, 0, -1]
    sticky = ale_py.AtariVectorEnv("breakout", 1, repeat_action_probability=0.25, episodic_life=False,
                                   life_loss_info=True, reward_clipping=False, autoreset_mode="SameStep")
    sticky.reset(seed=5)
    theirs = np.stack([sticky.step(a.astype(np.int64))[0] for a in actions])[:, 0, -1]
    assert not np.array_equal(ours, theirs)


def test_done_zeroes_the_stack_then_it_refills_over_three_steps():
    """A life loss (the C++ keeps its stack there) zeroes the older slots, as Baselines' VecFrameStack."""
    env = AleVectorEnv("Breakout", 1, seed=0)
    obs = env.reset()
    for _ in range(200):
        before = obs
        obs, _, dones, _ = env.step(np.array([NOOP]))
        if dones[0]:
            break
    assert dones[0] and env.lives[0] == 4  # a life loss, not a new game
    assert all(before[0, j].any() for j in range(4))
    assert not obs[0, :3].any() and obs[0, 3].any()
    newest = [obs[0, 3]]
    for k in range(1, 4):
        obs, _, dones, _ = env.step(np.array([NOOP]))
        assert not dones[0]
        assert not obs[0, : 3 - k].any(), f"slots older than {k} steps must still be zero"
        for j, frame in enumerate(reversed(newest)):  # the frames since the done, most recent first
            np.testing.assert_array_equal(obs[0, 2 - j], frame)
        newest.append(obs[0, 3])
    assert all(obs[0, j].any() for j in range(4))


def test_life_loss_is_a_done_the_game_goes_on_and_fire_relaunches():
    """Only NOOP actions: the forced FIRE after each life loss relaunches the ball, so the game
    goes through all five lives to a real game over with one Monitor episode. Without it
    (the bare C++ env) the game stalls after the first life loss."""
    env = AleVectorEnv("Breakout", 1, seed=0)
    env.reset()
    lives, episodes, done_steps = [5], [], []
    for t in range(1, 1000):
        _, _, dones, infos = env.step(np.array([NOOP]))
        if dones[0]:
            done_steps.append(t)
            lives.append(int(env.lives[0]))
            if "episode" in infos[0]:
                episodes.append(infos[0]["episode"])
                break
            assert env.needs_fire[0]  # the next action is replaced by FIRE
    assert lives == [5, 4, 3, 2, 1, 5]  # lives go down without a reset; 5 again only after the game over
    assert len(episodes) == 1 and episodes[0]["l"] == done_steps[-1]

    bare = ale_py.AtariVectorEnv("breakout", 1, episodic_life=False, life_loss_info=True, reward_clipping=False,
                                 autoreset_mode="SameStep")
    bare.reset(seed=0)
    for _ in range(done_steps[-1]):
        _, _, _, _, info = bare.step(np.array([NOOP]))
    assert info["lives"][0] == 4


@pytest.mark.slow
def test_monitor_episode_is_the_full_unclipped_game():
    """SpaceInvaders (rewards 5..30 points): the Monitor's r is the sum of raw points over all
    lives, l the number of agent steps, t the seconds since creation; the agent sees sign rewards."""
    seed, n = 11, 2
    env = AleVectorEnv("SpaceInvadersNoFrameskip-v4", n, seed=seed)
    env.reset()
    replays = [Replay("SpaceInvaders", seed + i, f) for i, f in enumerate(reset_frames(env))]
    rng = np.random.default_rng(0)
    tally, length, episodes = np.zeros(n), np.zeros(n, int), [None] * n
    lives_lost = np.zeros(n, int)
    while any(e is None for e in episodes):
        actions = rng.integers(0, env.n_actions, size=n)
        _, rewards, dones, infos = env.step(actions)
        for i, replay in enumerate(replays):
            if episodes[i] is not None:
                continue
            _, ref_reward, ref_done, ref_over = replay.step(actions[i])
            tally[i] += ref_reward
            length[i] += 1
            assert rewards[i] == np.sign(ref_reward) and dones[i] == ref_done
            assert ("episode" in infos[i]) == ref_over
            lives_lost[i] += ref_done and not ref_over
            if ref_over:
                episodes[i] = infos[i]["episode"]
    for i in range(n):
        assert episodes[i]["r"] == tally[i] and episodes[i]["l"] == length[i]
        assert episodes[i]["r"] > 30  # far more than any count of clipped rewards over these steps could explain
    assert all(lives_lost == 2)
    assert 0 <= episodes[0]["t"] < 60


def test_max_eplen_truncates_the_monitor_episode():
    env = AleVectorEnv("Breakout", 2, seed=0, max_eplen=37)
    env.reset()
    ends = []
    for t in range(1, 80):
        _, _, dones, infos = env.step(np.array([NOOP, FIRE]))
        for i, info in enumerate(infos):
            if "episode" in info:
                assert dones[i]
                ends.append((t, i, info["episode"]["l"]))
    assert ends == [(37, 0, 37), (37, 1, 37), (74, 0, 37), (74, 1, 37)]
