"""Vectorised Atari environments with Baselines' VecEnv semantics (docs/spec/protocol.md, section 1).

One module per concept: ``vec_env`` (the interface every vector env here has), ``wrappers``
(the Baselines wrappers, one class each), ``emulator`` (their innermost four fused, an
optimisation), ``breakout_infinite``, ``monitor`` (episode accounting of both backends),
``chain`` (one environment's whole chain), ``frame_stack``, ``block`` (environments stepped in
one process), ``pool`` (blocks in worker processes), ``baselines`` and ``ale_vector`` (the two
backends), ``pipelined`` (groups stepped in turns) and ``factory`` (``make_vec_env``); ``games``
(environment ids and action sets) and ``protocol`` (the v4 and v5 emulation protocols).
"""

import importlib

# Loaded on first use: the game and protocol facts (games, protocol) are imported without the environments.
_LAZY = {"BACKENDS": "factory", "backend_setting": "factory", "make_pipelined_vec_env": "factory",
         "make_vec_env": "factory", "workers_setting": "factory", "PipelinedVecEnv": "pipelined", "VecEnv": "vec_env"}

__all__ = ["BACKENDS", "PipelinedVecEnv", "VecEnv", "backend_setting", "make_pipelined_vec_env", "make_vec_env",
           "workers_setting"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'fl_saliency.envs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fl_saliency.envs.{_LAZY[name]}"), name)
