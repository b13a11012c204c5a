"""Groups of environments stepped in turns, so that the caller can act for one while the others step."""

from __future__ import annotations

from collections import deque

import numpy as np

from fl_saliency.envs.vec_env import VecEnv


class PipelinedVecEnv:
    """A ``VecEnv`` made of groups (vector envs of consecutive ranks, in order) that take turns.

    ``turns`` are the groups' ranks: each ``step_async`` starts the next group in turn with its
    actions, each ``step_wait`` returns the group started longest ago. Driven as

        for ranks in env.turns: env.step_async(act(obs[ranks]))      # every group is stepping
        for ranks in env.turns: obs[ranks], ... = env.step_wait(); env.step_async(act(obs[ranks]))

    the network acts for one group while the other groups' environments step in their processes.
    With one group it is that group, unchanged. Env ``rank`` plays the same games as in one vector
    env of all the environments (group ``g`` is seeded ``seed + its first rank``).
    """

    def __init__(self, groups: list[VecEnv]):
        self.groups = groups
        self.num_envs = sum(group.num_envs for group in groups)
        self.n_actions = groups[0].n_actions
        starts = np.cumsum([0] + [group.num_envs for group in groups])
        self.turns = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        self._next = 0
        self._stepping: deque[VecEnv] = deque()

    def reset(self) -> np.ndarray:
        obs = np.concatenate([group.reset() for group in self.groups])
        self.reset_infos = [info for group in self.groups for info in group.reset_infos]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        group = self.groups[self._next]
        group.step_async(actions)
        self._stepping.append(group)
        self._next = (self._next + 1) % len(self.groups)

    def step_wait(self):
        return self._stepping.popleft().step_wait()

    def close(self) -> None:
        for group in self.groups:
            group.close()
