import json
import subprocess
import sys

import pytest

from fl_saliency import cli
from helpers import ROOT, TABLE_2, run_cli


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
    # -v0 has sticky actions and Deterministic-v4 a fixed frameskip; v5 is ALE/<Game>-v5 (tests/envs/test_protocol.py).
    for env_id in ("Breakout-v0", "BreakoutDeterministic-v4", "Breakout-v5", "ALE/Breakout-v4"):
        result = run_cli("networks", "--env-name", env_id)
        assert result.returncode == 2 and "unsupported environment id" in result.stderr, env_id


def test_train_flags_reach_the_ppo_settings(monkeypatch, tmp_path):
    import fl_saliency.ppo.train
    from fl_saliency.cli import main

    received = []
    monkeypatch.setattr(fl_saliency.ppo.train, "train", lambda settings: received.append(settings) or tmp_path / "model.pkl")
    assert main(["train", "--output-dir", str(tmp_path), "--network", "cnn", "--vf-coef", "1.0", "--no-value-clip",
                 "--adam-eps-placement", "pytorch"]) == 0
    assert main(["train", "--output-dir", str(tmp_path), "--network", "cnn"]) == 0
    (changed, default) = (settings.ppo for settings in received)
    assert (changed.vf_coef, changed.value_clip, changed.adam_eps_placement) == (1.0, False, "pytorch")
    assert (default.vf_coef, default.value_clip, default.adam_eps_placement) == (0.5, True, "tensorflow")  # Baselines


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "--help"])
    assert exit.value.code == 0
    # argparse wraps lines; compare on the options section with whitespace collapsed.
    text = " ".join(capsys.readouterr().out.split("options:", 1)[1].split())
    for flag, default in [("--num-timesteps NUM_TIMESTEPS", "50000000"), ("--num-env NUM_ENV", "8"),
                          ("--nsteps NSTEPS", "128"), ("--lr LR", "0.00025"), ("--gamma GAMMA", "0.99"),
                          ("--network NETWORK", "cnn_sparse_fls"), ("--save-interval SAVE_INTERVAL", "50")]:
        after = text.split(flag, 1)[1]
        assert f"(default: {default})" in after.split(" --", 1)[0], flag


@pytest.mark.parametrize("script, command, shown", [
    ("train_baselines.py", "train", "(default: 50000000)"),
    ("run_baselines.py", "evaluate", "(default: 108000)"),
    ("benchmark_atari_head.py", "saliency", "(default: 1000)"),
])
@pytest.mark.subprocess
def test_the_original_scripts_show_their_own_name_and_defaults(script, command, shown):
    result = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script} [-h]") and "fl-saliency" not in result.stdout.split("\n")[0]
    assert shown in " ".join(result.stdout.split())


@pytest.mark.subprocess
def test_the_original_scripts_name_themselves_in_errors():
    bad = subprocess.run([sys.executable, str(ROOT / "train_baselines.py"), "--output-dir", "x", "--gamma", "5"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("train_baselines.py: error: argument --gamma: must be a number between 0 and 1")


@pytest.mark.subprocess
def test_the_command_list_needs_no_torch_and_optional_parts_are_imported_only_where_used():
    code = ("import sys; from fl_saliency import cli; cli.build_parser([]); assert 'torch' not in sys.modules; "
            "import fl_saliency.ppo.train, fl_saliency.evaluation.evaluate, fl_saliency.scoring.benchmark, fl_saliency.sweep.grid; "
            "print(sorted(m for m in ('ray', 'matplotlib', 'tensorboard') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
