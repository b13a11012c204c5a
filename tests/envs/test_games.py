"""Game names (fl_saliency/envs/games.py): gym ids and plain names, ROM ids, action counts."""

from __future__ import annotations

import numpy as np
import pytest

from fl_saliency.envs import make_vec_env
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import PAPER_GAMES, num_actions, parse_env_id, parse_game, rom_id


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


def test_v5_ids_are_their_game_under_v5():
    assert parse_env_id("ALE/MsPacman-v5") == ("MsPacman", "v5")
    assert parse_env_id("SpaceInvadersNoFrameskip-v4") == parse_env_id("SpaceInvaders") == ("SpaceInvaders", "v4")
    assert {game: num_actions(f"ALE/{game}-v5") for game in PAPER_GAMES} == {
        "BeamRider": 9, "Breakout": 4, "Enduro": 9, "MsPacman": 9, "Seaquest": 18, "SpaceInvaders": 6}
    # The full action set is the joystick's 18 positions x fire, whatever the game.
    assert {num_actions(game, full_action_space=True) for game in PAPER_GAMES} == {18}


@pytest.mark.parametrize("env_name, message", [
    ("Breakout-v5", "unsupported environment id 'Breakout-v5'.*ALE/Breakout-v5"),
    ("ALE/Breakout-v4", "unsupported environment id 'ALE/Breakout-v4'"),
    ("ALE/BreakoutNoFrameskip-v5", "unsupported environment id"),
    ("ALE/Combat-v5", "ale-py registers no ALE/Combat-v5"),
    ("ALE/Tetris3000-v5", "unknown Atari game 'ALE/Tetris3000-v5'"),
])
def test_other_versions_and_unregistered_v5_ids_are_one_line(env_name, message):
    with pytest.raises(FlSaliencyError, match=message):
        parse_env_id(env_name)
