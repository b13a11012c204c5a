import json
import pickle
import shutil

import numpy as np
import pytest
import yaml

from fl_saliency.agents.checkpoint import load_params
from fl_saliency.cli import main
from fl_saliency.evaluation.evaluate import EvalSettings, evaluate
from fl_saliency.report.model_card import ExportSettings, export
from fl_saliency.evaluation.perception_video import read_frames


@pytest.fixture(scope="module")
def evaluated(experiment):  # noqa: F811 (the fixture imported above)
    """test_evaluate's tiny model, evaluated for one 30-step game with the raw-screen perception video in eval/."""
    evaluate(EvalSettings(experiment_dir=experiment, num_env=1, evals_per_env=1, max_eplen=30, raw_obs=True,
                          device="cpu"), echo=lambda s: None)
    return experiment


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_metadata_holds_the_results_and_saliency_metrics(evaluated, tmp_path):
    with open(evaluated / "saliency.pkl", "wb") as f:  # the original's records: per-map values, NaN undefined
        pickle.dump([{"trial_number": 7, "metrics": {"nss": np.array([1.0, 2.0, np.nan]),
                                                     "kldiv": np.array([0.5, 1.5, 1.0]),
                                                     "sauc": np.array([0.6, 0.7, 0.8])}}], f)
    try:
        out = export(ExportSettings(evaluated, tmp_path / "card"), echo=lambda s: None)
    finally:
        (evaluated / "saliency.pkl").unlink()
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.pkl", "replay.mp4"]
    meta = front_matter((out / "README.md").read_text())
    assert meta["library_name"] == "fl-saliency"
    assert {"reinforcement-learning", "deep-reinforcement-learning", "atari", "saliency",
            "BreakoutNoFrameskip-v4"} <= set(meta["tags"])
    rewards = json.loads((evaluated / "eval" / "results.json").read_text())["rewards"]
    (entry,) = meta["model-index"]
    rl, gaze = entry["results"]
    assert rl["task"]["type"] == "reinforcement-learning"
    assert rl["dataset"] == {"name": "BreakoutNoFrameskip-v4", "type": "BreakoutNoFrameskip-v4"}
    assert rl["metrics"][0]["type"] == "mean_reward"
    assert rl["metrics"][0]["value"] == f"{np.mean(rewards):.2f} +/- {np.std(rewards):.2f}"
    assert gaze["dataset"]["type"] == "atari-head"
    values = {m["type"]: m["value"] for m in gaze["metrics"]}
    assert values == {"nss": 1.5, "kldiv": 1.0, "sauc": 0.7}  # NaN left out of NSS's mean
    assert json.loads((out / "config.json").read_text())["network"] == "cnn_sparse_fls"
    original, copied = load_params(evaluated / "model.pkl"), load_params(out / "model.pkl")
    assert all(np.array_equal(original[k], copied[k]) for k in original)


def test_replay_is_the_evaluation_video_in_h264(evaluated, tmp_path):
    import av

    out = export(ExportSettings(evaluated, tmp_path / "card"), echo=lambda s: None)
    with av.open(str(out / "replay.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    replay = list(read_frames(out / "replay.mp4"))
    source = list(read_frames(evaluated / "eval" / "perception.mkv"))
    assert len(replay) == len(source) > 20 and replay[0].shape == source[0].shape == (210, 160, 3)
    assert np.abs(replay[10].astype(int) - source[10]).mean() < 4  # lossy, but the same picture


def test_without_a_video_a_short_evaluation_makes_the_replay(evaluated, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.pkl", "config.json", "eval/results.json"):
        shutil.copyfile(evaluated / name, bare / name.split("/")[-1])  # a sweep run: results.json beside the model
    out = export(ExportSettings(bare, tmp_path / "card", replay_steps=12), echo=lambda s: None)
    frames = list(read_frames(out / "replay.mp4"))
    assert 0 < len(frames) <= 12 and frames[0].shape == (210, 160, 3)
    assert "model-index" in front_matter((out / "README.md").read_text())


def test_refusals_are_one_line(evaluated, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert main(["export", str(evaluated), "--out", str(taken)]) == 2
    assert "not empty; pass --force" in capsys.readouterr().err
    assert (taken / "keep.txt").read_text() == "mine"
    assert main(["export", str(tmp_path / "taken"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json not found" in err
    unevaluated = tmp_path / "unevaluated"
    unevaluated.mkdir()
    for name in ("model.pkl", "config.json"):
        shutil.copyfile(evaluated / name, unevaluated / name)
    assert main(["export", str(unevaluated), "--out", str(tmp_path / "o")]) == 2
    assert "has no evaluation" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["taken", "unevaluated"]
    assert main(["export", str(evaluated / "eval"), "--out", str(evaluated), "--force"]) == 2
    assert "holds the experiment" in capsys.readouterr().err and (evaluated / "model.pkl").is_file()
    assert main(["export", str(evaluated), "--out", str(taken), "--force"]) == 0
    assert sorted(p.name for p in taken.iterdir()) == ["README.md", "config.json", "model.pkl", "replay.mp4"]


def test_saliency_json_gives_the_card_its_metrics(evaluated, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(evaluated, run)
    overall = {"nss": {"mean": 0.81234, "std": 0.3, "count": 40}, "sauc": {"mean": None, "std": None, "count": 0}}
    (run / "eval" / "saliency.json").write_text(json.dumps({"overall": overall}))
    card = (export(ExportSettings(run, tmp_path / "card"), echo=lambda s: None) / "README.md").read_text()
    (_, gaze) = front_matter(card)["model-index"][0]["results"]
    assert gaze["metrics"] == [{"type": "nss", "value": 0.8123, "name": "NSS", "verified": False}]  # sAUC undefined
    assert "| NSS | 0.8123 | 0.3000 | 40 |" in card


def test_read_only_out_is_one_line_and_nothing_written(evaluated, read_only_dir, capsys):
    assert main(["export", str(evaluated), "--out", str(read_only_dir / "hf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system" in err and str(read_only_dir) in err, err
    assert list(read_only_dir.iterdir()) == []


def test_full_disk_names_the_destination_and_leaves_nothing(evaluated, small_disk, capsys):
    with open(small_disk / "filler", "wb") as f:  # room for about half the model
        f.write(b"\0" * (2 * 2**20 - (evaluated / "model.pkl").stat().st_size // 2))
    assert main(["export", str(evaluated), "--out", str(small_disk / "hf")]) == 2
    assert capsys.readouterr().err == (f"fl-saliency: error: no space left on the device of {small_disk} while "
                                       f"writing {small_disk / 'hf'}; free space and run the command again\n")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_killed_exports_stage_folder_is_removed_by_the_next(evaluated, tmp_path, capsys):
    stale = tmp_path / ".card.0123abcd.tmp"  # what a SIGKILL leaves: the stage, half written
    stale.mkdir()
    (stale / "model.pkl").write_bytes(b"half")
    other = tmp_path / ".cards.0123abcd.tmp"  # another --out's: not this export's to remove
    other.mkdir()
    assert main(["export", str(evaluated), "--out", str(tmp_path / "card")]) == 0
    assert f"removed the unfinished folders of an interrupted export from {tmp_path}: .card.0123abcd.tmp" \
        in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cards.0123abcd.tmp", "card"]


def suggested_commands(text: str) -> list[list[str]]:
    """The `fl-saliency ...` commands a message or a card suggests (in backquotes or a code block line)."""
    import re
    import shlex

    found = re.findall(r"`(fl-saliency [^`]+)`", text) + re.findall(r"^(fl-saliency .+)$", text, re.M)
    return [shlex.split(command)[1:] for command in found]


def test_the_cards_usage_command_runs_in_the_exported_folder(evaluated, tmp_path, monkeypatch):
    out = export(ExportSettings(evaluated, tmp_path / "card"), echo=lambda s: None)
    (command,) = suggested_commands((out / "README.md").read_text())
    monkeypatch.chdir(out)
    assert main(command + ["--num-env", "1", "--max-eplen", "20"]) == 0  # kept short: the flags' sizes only
    assert len(json.loads((out / "eval" / "results.json").read_text())["rewards"]) == 1
    assert (out / "eval" / "perception.mkv").is_file()


@pytest.mark.slow
def test_the_hint_of_an_unevaluated_run_works(evaluated, tmp_path, capsys):
    run = tmp_path / "my run"  # a space: the hint must quote it
    run.mkdir()
    for name in ("model.pkl", "config.json"):
        shutil.copyfile(evaluated / name, run / name)
    assert main(["export", str(run), "--out", str(tmp_path / "o")]) == 2
    (command,) = suggested_commands(capsys.readouterr().err)
    assert main(command + ["--num-env", "1", "--max-eplen", "20"]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "README.md").is_file()
