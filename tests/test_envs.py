"""The Atari wrapper chain of protocol.md section 1, pinned on the ``baselines`` backend.

Every check compares the vector environment with an independent reference: ``RawGame`` below
drives a bare ALE emulator (ale_py's AtariEnv, one frame per step, no sticky actions) and
writes the DeepMind/Baselines chain out by hand (no-op reset, frame skip with a max over the
last two frames, life-loss resets with NOOP/FIRE/2, the Monitor's tally), or with values
worked out by hand. Nothing here calls fl_saliency's own wrappers to compute an expectation.

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
from fl_saliency.errors import FlSaliencyError
from fl_saliency.wrappers import AtariEmulator

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


# 2. Emulator settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, game, n_actions", [("BreakoutNoFrameskip-v4", "Breakout", 4),
                                                   ("SpaceInvaders", "SpaceInvaders", 6),
                                                   ("MsPacmanNoFrameskip-v4", "MsPacman", 9)])
def test_emulator_is_v4_noframeskip_without_sticky_actions(name, game, n_actions):
    vec = make_vec_env(name, 1, 0, backend="baselines", asynchronous=False)
    vec.reset()
    env = vec.block.envs.envs[0].unwrapped
    ale = env.ale
    assert ale.getFloat("repeat_action_probability") == 0.0
    assert ale.getInt("frame_skip") == 1
    assert ale.getInt("max_num_frames_per_episode") == 0  # the only limit is the v4 TimeLimit
    assert vec.n_actions == n_actions == env.action_space.n
    assert list(env.get_action_meanings()) == bare_emulator(game).get_action_meanings()  # minimal set
    # One emulator frame per act: 10 NOOP agent steps advance the emulator 40 frames.
    before = ale.getEpisodeFrameNumber()
    for _ in range(10):
        vec.step(np.zeros(1, int))
    assert ale.getEpisodeFrameNumber() - before == 40
    vec.close()


def test_same_seed_and_actions_reproduce_the_trajectory():
    actions = np.random.default_rng(5).integers(0, 4, size=(150, 1))
    runs = []
    for _ in range(2):
        vec = make_vec_env("Breakout", 1, 11, backend="baselines", asynchronous=False)
        trajectory = [vec.reset()]
        for a in actions:
            obs, rewards, dones, _ = vec.step(a)
            trajectory.append((obs, rewards, dones, vec.block.envs.envs[0].unwrapped.ale.getEpisodeFrameNumber()))
        runs.append(trajectory)
        vec.close()
    assert np.array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3] == b[3]


# 1. Observations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("game, n_actions", [("Breakout", 4), ("MsPacman", 9)])
def test_observations_match_a_bare_emulator_replay(game, n_actions):
    """Whole games (resets, life losses, game overs) with random actions, frame by frame."""
    rollout = Rollout(game, seed=3, num_envs=2)
    rng = np.random.default_rng(0)
    for _ in range(400 if game == "Breakout" else 250):
        rollout.step(rng.integers(0, n_actions, size=2))
    if game == "Breakout":
        assert all(len(ref.episodes) >= 1 for ref in rollout.refs)  # the replay went through a game over
    rollout.close()


def test_observation_is_max_of_last_two_frames_from_a_cloned_state():
    """Independent of the reset: restore the wrapped emulator's state into a bare one and act 4 frames."""
    vec = make_vec_env("MsPacman", 1, 4, backend="baselines", asynchronous=False)
    vec.reset()
    ale = vec.block.envs.envs[0].unwrapped.ale
    bare = bare_emulator("MsPacman")
    bare.reset(seed=0)
    rng = np.random.default_rng(1)
    max_mattered = False
    for _ in range(120):
        action = int(rng.integers(0, 9))
        bare.ale.restoreState(ale.cloneState())
        frames = [bare.step(action)[0] for _ in range(SKIP)]
        obs, _, dones, _ = vec.step(np.array([action]))
        if dones[0]:
            continue
        expected = ref_warp(np.maximum(frames[-2], frames[-1]))
        assert np.array_equal(obs[0, -1], expected)
        max_mattered |= not np.array_equal(expected, ref_warp(frames[-1]))
    assert max_mattered  # MsPacman flickers: the last frame alone would not pass
    vec.close()


def test_keep_rgb_is_the_emulators_current_screen():
    # As Baselines' get_images(): the screen now, i.e. the last emulator frame, not the max of two.
    rollout = Rollout("Breakout", seed=8, num_envs=1, keep_rgb=True)
    rng = np.random.default_rng(2)
    for _ in range(60):
        _, _, _, infos, _ = rollout.step(rng.integers(0, 4, size=1))
        assert infos[0]["rgb"].shape == (210, 160, 3)
        assert np.array_equal(infos[0]["rgb"], rollout.refs[0].last_screen)
    rollout.close()


# 3. No-op starts -----------------------------------------------------------------------------------


def test_real_reset_takes_1_to_30_noops():
    """Frames before the first agent observation: n no-ops (+ FIRE and action 2, 4 frames each, in Breakout).

    Seeded resets of 4 environments, then many real resets of environment 0 (game overs forced
    through the v4 frame limit, which keeps the test fast): each starts n + extra frames in.
    """
    for game, extra, n_actions in (("Breakout", 8, 4), ("MsPacman", 0, 9)):
        vec = make_vec_env(game, 4, 100, backend="baselines", asynchronous=False)
        vec.reset()
        counts = [vec.block.envs.envs[rank].unwrapped.ale.getEpisodeFrameNumber() - extra for rank in range(4)]
        assert counts == [expected_noops(game, 100 + rank) for rank in range(4)]
        ale = vec.block.envs.envs[0].unwrapped.ale
        for _ in range(40):
            emulator = _emulator(vec)
            emulator.frames = emulator.frame_limit - 1
            _, _, dones, infos = vec.step(np.zeros(4, int))
            assert dones[0] and "episode" in infos[0]
            counts.append(ale.getEpisodeFrameNumber() - extra)
        assert counts[4:] == expected_noops(game, 100, count=41)[1:]
        assert all(1 <= n <= NOOP_MAX for n in counts), counts
        assert len(set(counts)) >= 15, counts
        vec.close()


def test_noops_are_drawn_again_after_a_game_over():
    rollout = Rollout("Breakout", seed=21, num_envs=1)
    rng = np.random.default_rng(3)
    while not rollout.refs[0].episodes:
        _, _, dones, infos, _ = rollout.step(rng.integers(0, 4, size=1))
        assert rollout.steps < 2000
    assert dones[0] and "episode" in infos[0]
    # After the game over the emulator restarted: n + 8 frames with a fresh n in 1..30.
    assert 9 <= rollout.ale().getEpisodeFrameNumber() <= 38
    assert rollout.ale().getEpisodeFrameNumber() == rollout.refs[0].noops + 8
    assert rollout.ale().lives() == 5
    rollout.close()


# 4. Breakout life loss ---------------------------------------------------------------------------


def test_breakout_life_loss_ends_the_agent_episode_but_not_the_game():
    rollout = Rollout("Breakout", seed=0, num_envs=1)
    ale = rollout.ale()
    lives_at_done = []
    while True:
        frame_before, lives_before = ale.getEpisodeFrameNumber(), ale.lives()
        _, rewards, dones, infos, _ = rollout.step(np.array([NOOP]))  # the agent never presses FIRE
        assert rollout.steps < 3000, "the ball did not relaunch after a lost life"
        if not dones[0]:
            assert ale.getEpisodeFrameNumber() - frame_before == 4
            assert ale.lives() == lives_before
            continue
        if "episode" in infos[0]:
            break
        # Life lost: agent done, but the same game goes on: 4 frames of the step, then NOOP,
        # FIRE and RIGHT of the reset (4 frames each) on the same emulator episode.
        assert ale.lives() == lives_before - 1
        assert ale.getEpisodeFrameNumber() - frame_before == 4 + 3 * 4
        lives_at_done.append(ale.lives())
    # With NOOPs only, every life after the first was lost too: FIRE relaunched the ball each time.
    assert lives_at_done == [4, 3, 2, 1]
    ref = rollout.refs[0]
    episode = infos[0]["episode"]
    assert episode["r"] == ref.episodes[0]["r"]  # the score of all five lives (kept across life losses)
    assert episode["l"] == rollout.steps + 2 + 3 * 4
    # Game over: the emulator was reset, a new game with 5 lives.
    assert ale.lives() == 5 and ale.getEpisodeFrameNumber() == ref.noops + 8
    rollout.close()


def test_without_fire_the_breakout_ball_would_not_relaunch():
    """The life-loss test above is discriminating: after a lost life, NOOPs alone lose no further life."""
    bare = bare_emulator("Breakout")  # the chain's game of seed 0 with NOOP-only agent actions ...
    bare.reset(seed=0)
    for _ in range(expected_noops("Breakout", 0)):
        bare.step(NOOP)
    for action in (FIRE, 2):
        for _ in range(SKIP):
            bare.step(action)
    while bare.ale.lives() == 5:
        bare.step(NOOP)
    for _ in range(3000):  # ... but without the FIRE after the lost life
        bare.step(NOOP)
    assert bare.ale.lives() == 4


# 5. Frame stacking -----------------------------------------------------------------------------------


def test_done_zeroes_only_that_envs_stack_then_it_refills():
    rollout = Rollout("Breakout", seed=2, num_envs=2)
    noop = np.zeros(2, int)
    while True:
        previous = rollout.obs.copy()
        obs, _, dones, _, _ = rollout.step(noop)
        assert rollout.steps < 1000
        if dones.sum() == 1:
            break
    done, other = int(np.argmax(dones)), int(np.argmin(dones))
    assert not obs[done, :3].any()
    assert np.array_equal(obs[done, 3], rollout.refs[done].frame) and obs[done, 3].any()
    assert np.array_equal(obs[other, :3], previous[other, 1:])
    assert np.array_equal(obs[other, 3], rollout.refs[other].frame)
    new_frames = [obs[done, 3]]
    for k in range(1, 4):
        obs, _, dones, _, _ = rollout.step(noop)
        assert not dones[done]
        new_frames.append(obs[done, 3])
        assert not obs[done, : 3 - k].any()  # the oldest slots are still zero
        assert np.array_equal(obs[done, 3 - k:], np.stack(new_frames))  # oldest first, slot -1 newest
    rollout.close()


# 6. Monitor and reward clipping --------------------------------------------------------------------


def test_monitor_episode_is_the_whole_breakout_game_with_its_raw_score():
    rollout = Rollout("Breakout", seed=5, num_envs=1)
    rng = np.random.default_rng(6)
    agent_dones, clipped = 0, 0.0
    while True:
        _, rewards, dones, infos, _ = rollout.step(rng.integers(0, 4, size=1))
        agent_dones += int(dones[0])
        clipped += float(rewards[0])
        if "episode" in infos[0]:
            break
        assert rollout.steps < 3000
    episode = infos[0]["episode"]
    assert set(episode) == {"r", "l", "t"} and episode["t"] >= 0
    assert agent_dones == 5  # one agent episode per life, one Monitor episode
    assert episode["r"] == rollout.refs[0].episodes[0]["r"]
    assert episode["l"] == rollout.steps + 2 + 3 * 4  # agent steps + FIRE,2 + 4 x (NOOP,FIRE,2)
    rollout.close()


def test_agent_reward_is_the_sign_monitor_score_is_unclipped():
    """SpaceInvaders' aliens give 5..30 points a hit: the agent sees 1, the Monitor the points."""
    rollout = Rollout("SpaceInvaders", seed=1, num_envs=1, max_eplen=400)
    rng = np.random.default_rng(4)
    raw_rewards, agent_rewards = [], []
    while True:
        _, rewards, _, infos, raw = rollout.step(rng.integers(0, 6, size=1))
        raw_rewards.append(raw[0])
        agent_rewards.append(rewards[0])
        if "episode" in infos[0]:
            break
    assert rewards.dtype == np.float32
    assert max(raw_rewards) > 1 and set(agent_rewards) <= {0.0, 1.0}
    assert np.array_equal(agent_rewards, np.sign(raw_rewards))
    episode = infos[0]["episode"]
    assert episode["l"] == 400
    assert episode["r"] == rollout.refs[0].episodes[0]["r"] >= sum(raw_rewards) > sum(agent_rewards)
    rollout.close()


# 7. Seeding -----------------------------------------------------------------------------------------


def _trajectory(seed, num_envs, rank, actions):
    vec = make_vec_env("Breakout", num_envs, seed, backend="baselines", asynchronous=False)
    frames = [vec.reset()[rank]]
    ale = vec.block.envs.envs[rank].unwrapped.ale
    counters = [ale.getEpisodeFrameNumber()]
    for a in actions:
        frames.append(vec.step(np.full(num_envs, a))[0][rank])
        counters.append(ale.getEpisodeFrameNumber())
    vec.close()
    return np.stack(frames), counters


def test_env_rank_is_seeded_seed_plus_rank():
    actions = np.random.default_rng(7).integers(0, 4, size=120)
    rank1, counters1 = _trajectory(30, 2, 1, actions)
    seed31, counters31 = _trajectory(30 + 1, 1, 0, actions)
    assert counters1[0] == expected_noops("Breakout", 31) + 8
    assert counters1 == counters31 and np.array_equal(rank1, seed31)
    same, counters_same = _trajectory(31, 1, 0, actions)
    assert counters_same == counters31 and np.array_equal(same, seed31)
    # Seeds 30 and 31 start with different no-op counts; the games differ.
    assert expected_noops("Breakout", 30) != expected_noops("Breakout", 31)
    rank0, counters0 = _trajectory(30, 2, 0, actions)
    assert counters0 != counters1 and not np.array_equal(rank0, rank1)


# 8. Time limits ---------------------------------------------------------------------------------------


def _emulator(vec) -> AtariEmulator:
    """Environment 0's emulator, which counts frames against gym's v4 limit."""
    env = vec.block.envs.envs[0]
    while not isinstance(env, AtariEmulator):
        env = env.env
    return env


@pytest.mark.parametrize("game, limit", [("Breakout", 400_000), ("SpaceInvaders", 300_000), ("MsPacman", 400_000)])
def test_v4_time_limit_counts_emulator_frames(game, limit):
    extra = 2 if game != "MsPacman" else 0  # FireReset's two steps reach the Monitor
    # Behaviour at the limit: 8 frames before it, the 2nd NOOP step truncates the game; 9 before, the 3rd.
    for left, steps_to_end in ((8, 2), (9, 3)):
        vec = make_vec_env(game, 1, 0, backend="baselines", asynchronous=False)
        vec.reset()
        emulator = _emulator(vec)
        ale = vec.block.envs.envs[0].unwrapped.ale
        assert emulator.frames == ale.getEpisodeFrameNumber()  # no-ops and FIRE,2 count
        assert emulator.frame_limit == limit
        emulator.frames = limit - left
        for step in range(1, steps_to_end + 1):
            _, _, dones, infos = vec.step(np.zeros(1, int))
            assert bool(dones[0]) == (step == steps_to_end)
        assert infos[0]["episode"]["l"] == steps_to_end + extra
        assert ale.getEpisodeFrameNumber() < 40 and emulator.frames < 40  # a fresh game
        vec.close()


def test_max_eplen_truncates_the_monitor_episode_mspacman():
    rollout = Rollout("MsPacman", seed=9, num_envs=1, max_eplen=50)
    rng = np.random.default_rng(8)
    for step in range(1, 51):
        _, _, dones, infos, _ = rollout.step(rng.integers(0, 9, size=1))
        assert bool(dones[0]) == (step == 50)
    assert infos[0]["episode"]["l"] == 50
    assert rollout.ale().lives() == 3 and rollout.ale().getEpisodeFrameNumber() <= 30  # a new game
    rollout.close()


def test_max_eplen_counts_the_reset_steps_in_breakout():
    rollout = Rollout("Breakout", seed=1, num_envs=1, max_eplen=50)
    lost = 0
    while True:
        _, _, dones, infos, _ = rollout.step(np.array([NOOP]))
        if "episode" in infos[0]:
            break
        lost += int(dones[0])
    assert infos[0]["episode"]["l"] == 50
    assert rollout.steps == 50 - 2 - 3 * lost
    rollout.close()


@pytest.mark.parametrize("hidden_step", [3, 4, 5], ids=["NOOP", "FIRE", "action2"])
def test_a_game_truncated_inside_a_life_loss_reset_is_still_reported(hidden_step):
    # Breakout seed 1, NOOPs only: the first life is lost at agent step k (Monitor step k + 2).
    rollout = Rollout("Breakout", seed=1, num_envs=1)
    while not rollout.step(np.array([NOOP]))[2][0]:
        pass
    k = rollout.steps
    rollout.close()
    # The hidden steps of that life's reset are Monitor steps k + 3 (NOOP), k + 4 (FIRE), k + 5 (action 2):
    # a time limit there ends the game on a step the agent never sees; it must still be reported, once.
    max_eplen = k + hidden_step
    vec = make_vec_env("Breakout", 1, 1, backend="baselines", max_eplen=max_eplen, asynchronous=False)
    vec.reset()
    episodes = []
    for _ in range(k):
        episodes += [info["episode"] for info in vec.step(np.array([NOOP]))[3] if "episode" in info]
    vec.close()
    assert [episode["l"] for episode in episodes] == [max_eplen]


# 9. Bad input -----------------------------------------------------------------------------------------


def test_unknown_game_is_a_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown Atari game 'Tetris3000NoFrameskip-v4'"):
        make_vec_env("Tetris3000NoFrameskip-v4", 1, 0, backend="baselines", asynchronous=False)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown env backend 'gpu'.*baselines"):
        make_vec_env("Breakout", 1, 0, backend="gpu", asynchronous=False)


def test_num_env_must_be_positive():
    with pytest.raises(FlSaliencyError, match="at least 1"):
        make_vec_env("Breakout", 0, 0, backend="baselines", asynchronous=False)


@pytest.mark.parametrize("num_envs, workers", [(2, None), (3, 2)])
def test_subprocess_envs_match_in_process_envs(num_envs, workers):
    actions = np.random.default_rng(10).integers(0, 4, size=(300, num_envs))
    runs = []
    for asynchronous in (True, False):
        vec = make_vec_env("Breakout", num_envs, 13, backend="baselines", asynchronous=asynchronous, workers=workers)
        assert len(vec.workers) == (min(workers or 2, num_envs) if asynchronous else 0)
        run = [vec.reset()]
        for a in actions:
            obs, rewards, dones, infos = vec.step(a)
            run.append((obs, rewards, dones, [{k: v for k, v in info.get("episode", {}).items() if k != "t"}
                                               for info in infos]))
        vec.close()
        runs.append(run)
    assert np.array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]
    assert sum(bool(e) for step in runs[1][1:] for e in step[3]) >= 2  # games ended on the way


def test_gym_id_and_plain_name_are_the_same_game():
    actions = np.random.default_rng(9).integers(0, 4, size=40)
    runs = []
    for name in ("BreakoutNoFrameskip-v4", "Breakout"):
        vec = make_vec_env(name, 1, 12, backend="baselines", asynchronous=False)
        runs.append([vec.reset()] + [vec.step(np.array([a]))[0] for a in actions])
        vec.close()
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_env_groups_play_the_same_games_as_one_vector_env():
    from fl_saliency.envs import EnvGroups

    actions = np.random.default_rng(5).integers(0, 4, size=(150, 4))
    whole = make_vec_env("Breakout", 4, 21, backend="baselines")
    groups = EnvGroups("Breakout", 4, 21, backend="baselines")
    assert [(ranks.start, ranks.stop) for ranks, _ in groups.parts] == [(0, 2), (2, 4)]
    np.testing.assert_array_equal(whole.reset(), groups.reset())
    for a in actions:
        obs, rewards, dones, infos = whole.step(a)
        for ranks, env in groups.parts:
            env.step_async(a[ranks])
        for ranks, env in groups.parts:
            g_obs, g_rewards, g_dones, g_infos = env.step_wait()
            np.testing.assert_array_equal(g_obs, obs[ranks])
            np.testing.assert_array_equal(g_rewards, rewards[ranks])
            np.testing.assert_array_equal(g_dones, dones[ranks])
            assert [("episode" in i) for i in g_infos] == [("episode" in i) for i in infos[ranks]]
    whole.close()
    groups.close()


def test_split_evenly_covers_the_ranks_in_order():
    from fl_saliency.envs import split_evenly

    assert split_evenly(8, 2) == [(0, 4), (4, 8)]
    assert split_evenly(5, 2) == [(0, 2), (2, 5)]
    assert split_evenly(16, 3) == [(0, 5), (5, 11), (11, 16)]
    assert split_evenly(3, 1) == [(0, 3)]


def test_env_workers_must_be_positive():
    from fl_saliency.envs import EnvGroups

    with pytest.raises(FlSaliencyError, match="--env-workers must be at least 1, got 0"):
        EnvGroups("Breakout", 4, 0, workers=0)


def test_a_failing_worker_is_one_clear_error():
    vec = make_vec_env("Breakout", 2, 0, backend="baselines", workers=2)
    vec.reset()
    with pytest.raises(FlSaliencyError, match=r"environments 1\.\.1 failed: IndexError"):
        vec.step(np.array([0, 99]))  # Breakout has 4 actions
    vec.close()
    vec = make_vec_env("Breakout", 2, 0, backend="baselines", workers=2)
    vec.reset()
    vec.workers[0].process.kill()
    vec.workers[0].process.join()
    with pytest.raises(FlSaliencyError, match=r"the process of environments 0\.\.0 died"):
        vec.step(np.array([0, 0]))
    vec.close()


def test_bad_input_found_in_a_worker_is_its_own_one_line_error():
    import multiprocessing

    with pytest.raises(FlSaliencyError, match="^--breakout-infinite patches Breakout's score; the game here is Pong$"):
        make_vec_env("Pong", 2, 0, backend="baselines", breakout_infinite=True, workers=2)
    assert multiprocessing.active_children() == []  # the worker that was fine is closed too
