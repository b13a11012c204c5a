"""The Baselines wrappers of docs/spec/protocol.md, section 1 (fl_saliency/envs/wrappers.py, chain.py), each step
compared with a bare emulator replay written out by hand (baselines_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from baselines_reference import FIRE, NOOP, NOOP_MAX, SKIP, Rollout, bare_emulator, expected_noops, ref_warp
from fl_saliency.envs import make_vec_env
from fl_saliency.envs.emulator import AtariEmulator


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


@pytest.mark.slow
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


@pytest.mark.slow
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
