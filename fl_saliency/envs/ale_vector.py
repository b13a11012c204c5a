"""The ``ale-vector`` backend: ale-py's C++ ``AtariVectorEnv`` completed in Python to Baselines' semantics.

The C++ side runs the protocol's emulation (v4: no sticky actions, minimal action set), frameskip 4
with a max over the last two frames, 84x84 grayscale, a 4-frame stack, 0..29 noops at reset and
a life-loss ``terminated`` without resetting the game. Python adds what the C++ lacks (see
docs/spec/ale-vector-env.md): telling a life loss from a real game end, the Monitor score,
sign-clipped agent rewards, zeroing the stack on every done, and FIRE after a life loss.
Its remaining differences from the ``baselines`` backend are listed in the README.
"""

from __future__ import annotations

import numpy as np

from fl_saliency.envs.frame_stack import STACK
from fl_saliency.envs.monitor import EpisodeTally
from fl_saliency.envs.vec_env import whole
from fl_saliency.envs.wrappers import FIRE
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import parse_game, rom_id
from fl_saliency.envs.protocol import Protocol, protocol_of

FRAMESKIP = 4


class AleVectorEnv:
    """``num_envs`` copies of a game in ale-py's C++ vector env, stepped together (a ``VecEnv``).

    Besides the interface: ``lives`` (each env's lives after the last step) and ``needs_fire``
    (the envs whose next action will be replaced by FIRE).
    """

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None,
                 protocol: Protocol | None = None):
        from ale_py import Action, AtariVectorEnv

        game = parse_game(env_name)
        if max_eplen is not None and max_eplen < 1:
            raise FlSaliencyError(f"--max-eplen must be at least 1, got {max_eplen}")
        # The C++ counts emulator frames from the end of its reset and truncates at this limit;
        # every step before the last of an episode is exactly FRAMESKIP frames, so max_eplen agent
        # steps map exactly onto FRAMESKIP * max_eplen frames.
        protocol = protocol or protocol_of(env_name)
        max_frames = protocol.max_episode_frames
        if max_eplen is not None:
            max_frames = min(max_frames, FRAMESKIP * max_eplen)
        self.envs = AtariVectorEnv(
            rom_id(game), num_envs,
            batch_size=num_envs,
            max_num_frames_per_episode=max_frames,
            repeat_action_probability=protocol.repeat_action_probability,  # per frame, inside the ALE
            full_action_space=protocol.full_action_space,
            frameskip=FRAMESKIP, maxpool=True, grayscale=True, img_height=84, img_width=84, stack_num=STACK,
            noop_max=30,
            use_fire_reset=True,
            episodic_life=False,  # True would restart the whole game at every life loss
            life_loss_info=True,  # terminated on a life loss, the game goes on
            reward_clipping=False,  # the Monitor needs the raw points
            autoreset_mode="SameStep",  # a real end's step returns the next game's first observation
        )
        self.num_envs = num_envs
        self.turns = whole(num_envs)
        self.seed = seed
        self.n_actions = int(self.envs.single_action_space.n)
        action_set = self.envs.ale.get_action_set()
        # Games whose action 1 is FIRE (Baselines' FireReset condition) need FIRE to relaunch after a life loss.
        self.fire_after_life_loss = len(action_set) >= 3 and action_set[FIRE] == Action.FIRE
        self.tally = EpisodeTally(num_envs)
        self._started = False

    def reset(self) -> np.ndarray:
        """Start new games in every environment, env ``rank`` seeded ``seed + rank``."""
        obs, info = self.envs.reset(seed=self.seed)
        self._started = True
        self._track(info)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self.tally.restart()
        self.since_done = np.zeros(self.num_envs, np.int64)
        self.needs_fire = np.zeros(self.num_envs, bool)
        return obs

    def _track(self, info: dict) -> None:
        self.lives = info["lives"].copy()
        self._frame_number = info["frame_number"].copy()
        self._episode_frame_number = info["episode_frame_number"].copy()

    def step(self, actions):
        if not self._started:
            raise FlSaliencyError("AleVectorEnv.step() called before reset()")
        actions = np.asarray(actions).astype(np.int32)
        if actions.shape != (self.num_envs,) or actions.min() < 0 or actions.max() >= self.n_actions:
            # A bad action would leave the C++ vectorizer in a failed state for good.
            raise FlSaliencyError(f"expected {self.num_envs} actions in [0, {self.n_actions}), got {actions}")
        actions[self.needs_fire] = FIRE
        prev_frame, prev_episode_frame = self._frame_number, self._episode_frame_number
        obs, raw_rewards, terminated, truncated, info = self.envs.step(actions)
        self._track(info)

        # The C++ reset a game (real end: game over or time limit) iff the episode frame counter
        # did not advance with the global one: a reset zeroes the former and not the latter.
        real_end = (self._episode_frame_number - prev_episode_frame) != (self._frame_number - prev_frame)
        dones = terminated | truncated
        life_loss = dones & ~real_end
        self.needs_fire = life_loss & self.fire_after_life_loss

        self.tally.add(raw_rewards)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for i, episode in self.tally.finish(real_end).items():
            infos[i]["episode"] = episode

        # Baselines' VecFrameStack zeroes the stack on every done; the C++ does so only at a real reset.
        self.since_done = np.where(dones, 0, self.since_done + 1)
        for slot in range(STACK - 1):
            obs[self.since_done < STACK - 1 - slot, slot] = 0
        return obs, np.sign(raw_rewards).astype(np.float32), dones, infos

    def step_async(self, actions) -> None:
        """The C++ steps all environments in one call, in ``step_wait``."""
        self._pending = actions

    def step_wait(self):
        return self.step(self._pending)

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None  # frees the C++ vectorizer, which joins its worker threads
