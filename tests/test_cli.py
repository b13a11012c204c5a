import json
import subprocess
import sys

from test_networks import TABLE_2


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fl_saliency.cli", *args], capture_output=True, text=True)


def test_networks_json_lists_all_fifteen_with_table_2_counts():
    result = run_cli("networks", "--env-name", "BreakoutNoFrameskip-v4", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 15 and all(set(row) == {"name", "params", "grid"} for row in rows)
    by_name = {row["name"]: row for row in rows}
    for name, count in TABLE_2.items():
        assert by_name[name]["params"] == count
    assert by_name["cnn_sparse_fls_x3"]["grid"] == "20x20" and by_name["cnn_dense_fls"]["grid"] == "84x84"


def test_networks_table_for_a_game_with_more_actions():
    result = run_cli("networks", "--env-name", "MsPacman")
    assert result.returncode == 0, result.stderr
    # MsPacman has 9 actions: 5 more policy outputs x 513 than Breakout's 4.
    assert "MsPacman: 9 actions" in result.stdout
    assert f"{TABLE_2['cnn'] + 5 * 513:,}" in result.stdout


def test_unknown_game_is_one_line():
    result = run_cli("networks", "--env-name", "Tetris3000")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown Atari game 'Tetris3000'" in result.stderr


def test_other_gym_versions_are_refused_not_silently_changed():
    # -v0 has sticky actions and Deterministic-v4 a fixed frameskip: not the paper's NoFrameskip-v4.
    for env_id in ("Breakout-v0", "BreakoutDeterministic-v4", "ALE/Breakout-v5"):
        result = run_cli("networks", "--env-name", env_id)
        assert result.returncode == 2 and "unsupported environment id" in result.stderr, env_id


def test_train_flags_reach_the_ppo_settings(monkeypatch, tmp_path):
    import fl_saliency.train
    from fl_saliency.cli import main

    received = []
    monkeypatch.setattr(fl_saliency.train, "train", lambda settings: received.append(settings) or tmp_path / "model.pkl")
    assert main(["train", "--output-dir", str(tmp_path), "--network", "cnn", "--vf-coef", "1.0", "--no-value-clip",
                 "--adam-eps-placement", "pytorch"]) == 0
    assert main(["train", "--output-dir", str(tmp_path), "--network", "cnn"]) == 0
    (changed, default) = (settings.ppo for settings in received)
    assert (changed.vf_coef, changed.value_clip, changed.adam_eps_placement) == (1.0, False, "pytorch")
    assert (default.vf_coef, default.value_clip, default.adam_eps_placement) == (0.5, True, "tensorflow")  # Baselines
