"""Atari environment ids mapped to ALE ROMs: ``BreakoutNoFrameskip-v4`` or plain ``Breakout`` (the
paper's v4), ``ALE/Breakout-v5`` (ale-py's v5); their action sets."""

from __future__ import annotations

import functools
import re

from fl_saliency.common.errors import FlSaliencyError

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


def v5_id(game: str) -> str:
    return f"ALE/{game}-v5"


def parse_env_id(env_name: str) -> tuple[str, str]:
    """(CamelCase game, protocol version ``"v4"`` or ``"v5"``) of a gym id or a plain name (v4).

    Other gym versions (``-v0``, ``Deterministic-v4``, ``Breakout-v5`` without ``ALE/``) are refused
    rather than silently given other semantics. Raises FlSaliencyError when ale-py ships no ROM for it.
    """
    versioned = _ANY_GYM_VERSION.match(env_name)
    game = versioned["game"] if versioned else env_name
    if not game or rom_id(game) not in rom_ids():
        raise FlSaliencyError(
            f"unknown Atari game {env_name!r}: expected a gym id such as BreakoutNoFrameskip-v4 or ALE/Breakout-v5 "
            f"or a game name such as Breakout (paper games: {', '.join(PAPER_GAMES)})"
        )
    if not versioned or env_name == game + _V4_SUFFIX:
        return game, "v4"
    if env_name == v5_id(game):
        import ale_py  # noqa: F401  (registers the ALE/...-v5 ids with gymnasium)
        import gymnasium

        if env_name not in gymnasium.registry:
            raise FlSaliencyError(f"ale-py registers no {env_name} (the game has no single-player mode); "
                                  f"use {game}{_V4_SUFFIX}")
        return game, "v5"
    raise FlSaliencyError(
        f"unsupported environment id {env_name!r}: fl-saliency runs the v4 NoFrameskip semantics of the paper "
        f"({game}{_V4_SUFFIX} or {game}) or ale-py's v5 ({v5_id(game)})"
    )


def parse_game(env_name: str) -> str:
    """The CamelCase game of an environment id (see ``parse_env_id``)."""
    return parse_env_id(env_name)[0]


@functools.cache
def action_set(game: str, full_action_space: bool = False) -> tuple[int, ...]:
    """The ALE action indices the agent's actions stand for: the game's minimal set in ALE's order,
    or all 18 with ``full_action_space``."""
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.loadROM(ale_py.roms.get_rom_path(rom_id(parse_game(game))))
    actions = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
    return tuple(a.value for a in actions)


def num_actions(env_name: str, full_action_space: bool = False) -> int:
    return len(action_set(parse_game(env_name), full_action_space))
