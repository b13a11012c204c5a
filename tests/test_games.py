"""Game names (fl_saliency/games.py): gym ids and plain names, ROM ids, action counts."""

from __future__ import annotations

import numpy as np
import pytest

from fl_saliency.envs import make_vec_env
from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import PAPER_GAMES, num_actions, parse_game, rom_id


def test_unknown_game_is_a_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown Atari game 'Tetris3000NoFrameskip-v4'"):
        make_vec_env("Tetris3000NoFrameskip-v4", 1, 0, backend="baselines", asynchronous=False)


def test_gym_id_and_plain_name_are_the_same_game():
    actions = np.random.default_rng(9).integers(0, 4, size=40)
    runs = []
    for name in ("BreakoutNoFrameskip-v4", "Breakout"):
        vec = make_vec_env(name, 1, 12, backend="baselines", asynchronous=False)
        runs.append([vec.reset()] + [vec.step(np.array([a]))[0] for a in actions])
        vec.close()
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_rom_ids_and_action_counts_of_the_paper_games():
    assert [rom_id(game) for game in ("MsPacman", "SpaceInvaders", "BeamRider")] == [
        "ms_pacman", "space_invaders", "beam_rider"]
    # The minimal action sets, as the ALE documents them.
    assert {game: num_actions(game) for game in PAPER_GAMES} == {
        "BeamRider": 9, "Breakout": 4, "Enduro": 9, "MsPacman": 9, "Seaquest": 18, "SpaceInvaders": 6}
    assert parse_game("SeaquestNoFrameskip-v4") == "Seaquest"


def test_other_gym_versions_are_refused():
    with pytest.raises(FlSaliencyError, match="unsupported environment id 'Breakout-v0'"):
        parse_game("Breakout-v0")
