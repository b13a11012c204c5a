"""The whole Baselines wrapper chain of one environment (docs/spec/protocol.md, section 1), without frame stacking."""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from fl_saliency.envs.breakout_infinite import BreakoutInfiniteFrames
from fl_saliency.envs.emulator import AtariEmulator
from fl_saliency.envs.wrappers import (ClipReward, EpisodicLife, FireReset, MaxAndSkip, Monitor, NoopReset,
                                       ScreenCapture, V4TimeLimit, WarpFrame, check_breakout_infinite,
                                       has_fire_reset, make_ale)
from fl_saliency.envs.games import parse_game
from fl_saliency.envs.protocol import Protocol, protocol_of


def make_emulator(game: str, breakout_infinite: bool = False, fused: bool = True,
                  protocol: Protocol | None = None) -> gym.Env:
    """MaxAndSkip(4)(NoopReset(30)([V4TimeLimit]([BreakoutInfinite](ALE)))): fused into one
    ``AtariEmulator`` (the default), or as the plain wrappers. ``protocol`` defaults to v4."""
    protocol = protocol or protocol_of(game)
    if fused:
        return AtariEmulator(game, breakout_infinite, protocol=protocol)
    env = make_ale(game, protocol)
    if breakout_infinite:
        check_breakout_infinite(game)
        env = BreakoutInfiniteFrames(env)
    if protocol.version == "v4":
        env = V4TimeLimit(env, protocol.max_episode_frames)
    return MaxAndSkip(NoopReset(env))


def make_atari_env(env_name: str, max_eplen: int | None = None, keep_rgb: bool = False,
                   breakout_infinite: bool = False, fused: bool = True, protocol: Protocol | None = None) -> gym.Env:
    """Emulator, [TimeLimit(max_eplen)], Monitor, EpisodicLife, FireReset (games with FIRE),
    WarpFrame, ClipReward, [ScreenCapture with ``keep_rgb``]. ``protocol`` defaults to the id's."""
    env = make_emulator(parse_game(env_name), breakout_infinite, fused, protocol or protocol_of(env_name))
    if max_eplen is not None:
        env = TimeLimit(env, max_episode_steps=max_eplen)
    env = EpisodicLife(Monitor(env))
    if has_fire_reset(env):
        env = FireReset(env)
    env = ClipReward(WarpFrame(env))
    return ScreenCapture(env) if keep_rgb else env
