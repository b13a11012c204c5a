"""Vectorised Atari environments with Baselines' VecEnv semantics (protocol.md section 1).

One module per concept: ``vec_env`` (the interface every vector env here has), ``wrappers``
(the Baselines wrappers, one class each), ``emulator`` (their innermost four fused, an
optimisation), ``breakout_infinite``, ``monitor`` (episode accounting of both backends),
``chain`` (one environment's whole chain), ``frame_stack``, ``block`` (environments stepped in
one process), ``pool`` (blocks in worker processes), ``baselines`` and ``ale_vector`` (the two
backends), ``pipelined`` (groups stepped in turns) and ``factory`` (``make_vec_env``).
"""

from fl_saliency.envs.factory import BACKENDS, backend_setting, make_pipelined_vec_env, make_vec_env, workers_setting
from fl_saliency.envs.pipelined import PipelinedVecEnv
from fl_saliency.envs.vec_env import VecEnv

__all__ = ["BACKENDS", "PipelinedVecEnv", "VecEnv", "backend_setting", "make_pipelined_vec_env", "make_vec_env",
           "workers_setting"]
