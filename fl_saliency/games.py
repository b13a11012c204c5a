"""Atari game names: gym ids such as ``BreakoutNoFrameskip-v4`` or plain ``Breakout``, mapped to ALE ROMs."""

from __future__ import annotations

import functools
import re

from fl_saliency.errors import FlSaliencyError

PAPER_GAMES = ("BeamRider", "Breakout", "Enduro", "MsPacman", "Seaquest", "SpaceInvaders")

_V4_SUFFIX = "NoFrameskip-v4"
_ANY_GYM_VERSION = re.compile(r"^(ALE/)?(?P<game>[A-Za-z0-9]+?)(NoFrameskip|Deterministic)?-v\d+$")


def rom_id(game: str) -> str:
    """CamelCase game name -> ALE ROM id: ``MsPacman`` -> ``ms_pacman``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


@functools.cache
def rom_ids() -> frozenset[str]:
    """Every ROM id ale-py ships (``breakout``, ``ms_pacman``, ...)."""
    from ale_py import roms

    return frozenset(roms.get_all_rom_ids())


def parse_game(env_name: str) -> str:
    """The CamelCase game of a gym id (``BreakoutNoFrameskip-v4``) or a plain name (``Breakout``).

    Other gym versions (``-v0``, ``Deterministic-v4``, ``ALE/...-v5``) are refused rather than
    silently given v4 NoFrameskip semantics. Raises FlSaliencyError when ale-py ships no ROM for it.
    """
    versioned = _ANY_GYM_VERSION.match(env_name)
    game = versioned["game"] if versioned else env_name
    if not game or rom_id(game) not in rom_ids():
        raise FlSaliencyError(
            f"unknown Atari game {env_name!r}: expected a gym id such as BreakoutNoFrameskip-v4 "
            f"or a game name such as Breakout (paper games: {', '.join(PAPER_GAMES)})"
        )
    if versioned and env_name != game + _V4_SUFFIX:
        raise FlSaliencyError(
            f"unsupported environment id {env_name!r}: fl-saliency runs the v4 NoFrameskip semantics of the paper; "
            f"use {game}{_V4_SUFFIX} or {game}"
        )
    return game


@functools.cache
def minimal_action_set(game: str) -> tuple[int, ...]:
    """The ALE full-action-set indices of the game's minimal action set, in ALE's order."""
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.loadROM(ale_py.roms.get_rom_path(rom_id(parse_game(game))))
    return tuple(a.value for a in ale.getMinimalActionSet())


def num_actions(env_name: str) -> int:
    return len(minimal_action_set(parse_game(env_name)))
