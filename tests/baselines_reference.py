"""Independent references for the Atari wrapper chain of docs/spec/protocol.md, section 1 (``baselines`` backend).

The tests of the chain (test_wrappers.py, test_frame_stack.py, test_baselines_vec_env.py)
compare the vector environment with an independent reference: ``RawGame`` below drives a bare
ALE emulator (ale_py's AtariEnv, one frame per step, no sticky actions) and writes the
DeepMind/Baselines chain out by hand (no-op reset, frame skip with a max over the last two
frames, life-loss resets with NOOP/FIRE/2, the Monitor's tally), or with values worked out by
hand. Nothing here calls fl_saliency's own wrappers to compute an expectation.

Counting convention (Baselines): the Monitor sits below EpisodicLife and FireReset, so its
episode length "l" counts every 4-frame step of the game, the agent's steps plus the steps
that the resets take themselves (FIRE and action 2 after the real reset, NOOP + FIRE + 2
after each lost life), and its "r" includes their rewards. The evaluation TimeLimit(max_eplen)
sits at the same level, so it counts the same steps as "l".
"""

from __future__ import annotations

import collections

import cv2
import numpy as np
import pytest
from ale_py.env import AtariEnv

from fl_saliency.envs import make_vec_env

# Written out by hand: ALE ROM ids of the games used here.
ROMS = {"Breakout": "breakout", "MsPacman": "ms_pacman", "SpaceInvaders": "space_invaders"}
NOOP, FIRE, SKIP, NOOP_MAX = 0, 1, 4, 30


def ref_warp(rgb: np.ndarray) -> np.ndarray:
    """Baselines' WarpFrame: grayscale, then 84x84 with area interpolation."""
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)


def bare_emulator(game: str) -> AtariEnv:
    return AtariEnv(ROMS[game], frameskip=1, repeat_action_probability=0.0, full_action_space=False)


_RNG_EMULATORS: dict[str, AtariEnv] = {}


def expected_noops(game: str, seed: int, count: int = 1):
    """No-op counts of the real resets of an emulator seeded ``seed``: draws 1..30 from its seeded RNG.

    AtariEnv.reset(seed=s) seeds its RNG with seed_game(s); later resets (no seed) leave it
    alone, so the k-th game of an environment starts with the k-th draw.
    """
    env = _RNG_EMULATORS.get(game) or _RNG_EMULATORS.setdefault(game, bare_emulator(game))
    env.seed_game(seed)
    draws = [int(env.np_random.integers(1, NOOP_MAX + 1)) for _ in range(count)]
    return draws[0] if count == 1 else draws


class RawGame:
    """The protocol's chain for one environment, written out on a bare emulator."""

    def __init__(self, game: str, seed: int, max_eplen: int | None = None):
        self.env = bare_emulator(game)
        self.ale = self.env.ale
        self.fire = self.env.get_action_meanings()[FIRE] == "FIRE"
        self.max_eplen = max_eplen
        self.screens = np.zeros((2, 210, 160, 3), np.uint8)  # persists across steps, as Baselines' buffer
        self.episodes: list[dict] = []  # finished games: unclipped score, Monitor-level steps
        self.frame = self._real_reset(seed)

    def _skip(self, action: int):
        """One 4-frame step: summed raw reward, max over the last two screens."""
        reward, terminal = 0.0, False
        for i in range(SKIP):
            screen, r, terminal, truncated, _ = self.env.step(action)
            self.last_screen = screen
            assert not truncated
            reward += r
            if i >= SKIP - 2:
                self.screens[i - (SKIP - 2)] = screen
            if terminal:
                break
        self.score += reward
        self.game_steps += 1
        return self.screens.max(axis=0), reward, terminal

    def _real_reset(self, seed: int | None = None) -> np.ndarray:
        self.env.reset(seed=seed)
        self.noops = int(self.env.np_random.integers(1, NOOP_MAX + 1))
        self.score, self.game_steps = 0.0, 0
        for _ in range(self.noops):
            screen, _, terminal, _, _ = self.env.step(NOOP)
            self.last_screen = screen
            assert not terminal
        if self.fire:
            for action in (FIRE, 2):
                screen, _, terminal = self._skip(action)
                assert not terminal
        self.lives = self.ale.lives()
        return ref_warp(screen)

    def step(self, action: int):
        """(newest frame, raw reward, agent done, finished game or None)."""
        screen, reward, terminal = self._skip(action)
        truncated = self.max_eplen is not None and self.game_steps >= self.max_eplen
        lives = self.ale.lives()
        if terminal or truncated:
            episode = {"r": self.score, "l": self.game_steps}
            self.episodes.append(episode)
            self.frame = self._real_reset()
            return self.frame, reward, True, episode
        if 0 < lives < self.lives:
            for a in (NOOP, FIRE, 2) if self.fire else (NOOP,):
                screen, _, terminal = self._skip(a)
                assert not terminal, "scenario corner case: the game ended inside a life-loss reset"
                assert self.max_eplen is None or self.game_steps < self.max_eplen, "scenario corner case"
            self.lives = self.ale.lives()
            self.frame = ref_warp(screen)
            return self.frame, reward, True, None
        self.lives = lives
        self.frame = ref_warp(screen)
        return self.frame, reward, False, None


class Rollout:
    """A baselines vector env stepped in lockstep with one RawGame per environment (seed + rank).

    Each step asserts that newest frames, clipped rewards, dones, Monitor episodes and
    emulator frame counters agree exactly, and that the stack is the last 4 frames with
    zeros before the start of an agent episode.
    """

    def __init__(self, game, seed, num_envs=1, max_eplen=None, keep_rgb=False, env_name=None):
        self.vec = make_vec_env(env_name or game, num_envs, seed, backend="baselines", max_eplen=max_eplen,
                                keep_rgb=keep_rgb, asynchronous=False)
        self.refs = [RawGame(game, seed + rank, max_eplen) for rank in range(num_envs)]
        self.num_envs = num_envs
        self.obs = self.vec.reset()
        self.history = [collections.deque([np.zeros((84, 84), np.uint8)] * 3 + [ref.frame], maxlen=4)
                        for ref in self.refs]
        self.steps = 0
        self._check(self.obs)

    def ale(self, rank: int = 0):
        return self.vec.block.envs.envs[rank].unwrapped.ale

    def _check(self, obs):
        assert obs.dtype == np.uint8 and obs.shape == (self.num_envs, 4, 84, 84)
        for rank, ref in enumerate(self.refs):
            assert np.array_equal(obs[rank, -1], ref.frame), f"env {rank}: newest frame differs at step {self.steps}"
            assert np.array_equal(obs[rank], np.stack(self.history[rank])), \
                f"env {rank}: stack differs at step {self.steps}"
            assert self.ale(rank).getEpisodeFrameNumber() == ref.ale.getEpisodeFrameNumber()
            assert self.ale(rank).lives() == ref.ale.lives()

    def step(self, actions):
        actions = np.asarray(actions)
        obs, rewards, dones, infos = self.vec.step(actions)
        self.steps += 1
        raw = np.zeros(self.num_envs)
        for rank, ref in enumerate(self.refs):
            frame, raw[rank], done, episode = ref.step(int(actions[rank]))
            assert dones[rank] == done, f"env {rank}: done {dones[rank]} != reference {done} at step {self.steps}"
            assert rewards[rank] == np.sign(raw[rank]), f"env {rank}: reward not the sign of the raw reward"
            if episode is None:
                assert "episode" not in infos[rank], f"env {rank}: Monitor episode without a game over"
            else:
                got = infos[rank].get("episode")
                assert got is not None, f"env {rank}: no Monitor episode at a game over"
                assert got["r"] == pytest.approx(episode["r"]) and got["l"] == episode["l"], (got, episode)
            if done:
                self.history[rank].extend([np.zeros((84, 84), np.uint8)] * 4)
            self.history[rank].append(frame)
        self._check(obs)
        self.obs = obs
        return obs, rewards, dones, infos, raw

    def close(self):
        self.vec.close()
