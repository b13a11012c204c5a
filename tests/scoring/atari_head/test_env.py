"""The trial environment (fl_saliency/scoring/atari_head/env.py): PNGs in order, and the observations the
network acts on, against a hand-made stack and against the training chain replaying the frames."""

import cv2
import numpy as np

from fl_saliency.scoring.atari_head.env import TrialEnv, agent_observations
from fl_saliency.scoring.atari_head.gaze import num_maps
from fl_saliency.envs.frame_stack import FrameStacker
from fl_saliency.envs.wrappers import MaxAndSkip, WarpFrame, make_ale


def test_trial_env_streams_pngs_and_ends_on_the_last():
    frames = [np.full((210, 160, 3), i, np.uint8) for i in range(1, 8)]
    gaze = [np.array([[n, 0.0]]) for n in range(1, 8)]
    env = TrialEnv(lambda: iter(frames), gaze)
    obs, info = env.reset()
    assert obs[0, 0, 0] == 1 and info["frame"] == 1 and np.array_equal(info["gaze"], gaze[0])
    seen = []
    while True:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        seen.append((int(obs[0, 0, 0]), info["frame"], terminated))
        if terminated:
            break
    assert seen == [(n, n, n == 7) for n in range(2, 8)]
    env.reset()  # a second pass re-opens the stream
    assert env.step(0)[4]["frame"] == 2


def record_emulator(n_frames, seed=3):
    """RGB screens of Breakout, one per emulator frame (each taken before that frame's action), and the
    actions, one per block of 4 emulator frames: as a human's recording, but replayable by MaxAndSkip."""
    env = make_ale("Breakout")
    screen, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    frames, block_actions = [screen], []
    while len(frames) < n_frames:
        if len(frames) % 4 == 1:
            block_actions.append(int(rng.integers(0, 4)) if block_actions else 1)
        screen, *_ = env.step(block_actions[-1])
        frames.append(screen)
    env.close()
    return frames, block_actions


def warp(rgb):
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)


def test_streamed_trial_gives_the_training_inputs_for_the_same_frames():
    n_frames = 83  # K = 21 observations
    frames, actions = record_emulator(n_frames)
    png_roundtrip = [cv2.cvtColor(cv2.imdecode(cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1],
                                               cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in frames]
    streamed = list(agent_observations(lambda: iter(png_roundtrip)))
    assert len(streamed) == num_maps(n_frames) == 21

    # Reference 1, by hand: obs 0 is PNG 1, obs k >= 1 is max(PNG 4k, PNG 4k+1); stacks of 4, zeros first.
    singles = [warp(frames[0])] + [warp(np.maximum(frames[4 * k - 1], frames[4 * k])) for k in range(1, 21)]
    for k, stack in enumerate(streamed):
        expected = [singles[j] if j >= 0 else np.zeros((84, 84), np.uint8) for j in range(k - 3, k + 1)]
        np.testing.assert_array_equal(stack, np.stack(expected), err_msg=f"observation {k}")

    # Reference 2: the training chain itself (MaxAndSkip, WarpFrame, frame stacking) replaying the same
    # emulator frames: same seed, the same action for each block of 4 frames.
    env = WarpFrame(MaxAndSkip(make_ale("Breakout"), skip=4))
    stacker = FrameStacker(1)
    first, _ = env.reset(seed=3)
    training = [stacker.reset(first[None])[0]]
    for k in range(1, 21):
        frame, *_ = env.step(actions[k - 1])
        training.append(stacker.push(frame[None], np.zeros(1, bool))[0])
    for k in range(21):
        np.testing.assert_array_equal(streamed[k], training[k], err_msg=f"observation {k}")
