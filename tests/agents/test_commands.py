"""Every command on agents of other libraries, end to end through the command line (in this process):
Stable-Baselines3 PPO and DQN zips saved by SB3's own ``model.save()``, a CleanRL ``ppo_atari`` state dict
and a TorchScript file; each evaluated with a saliency video, scored against a synthetic Atari-HEAD trial,
checked for faithfulness, exported and inspected."""

from __future__ import annotations

import json
import pickle
import shlex
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from fl_saliency.agents import agent_from_module, load_agent
from fl_saliency.scoring.atari_head.gaze import num_maps
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.scoring.faithfulness import fresh_weights
from fl_saliency.evaluation.perception_video import PerceptionRecorder, read_frames
from cleanrl_reference import PPOAgent
from helpers import run_cli, run_main

GAME = "BreakoutNoFrameskip-v4"
TRIAL_FRAMES = 20
KINDS = ("sb3-ppo", "sb3-dqn", "cleanrl", "torchscript")
# library, algorithm, has a value head
ABOUT = {"sb3-ppo": ("stable-baselines3", "PPO", True), "sb3-dqn": ("stable-baselines3", "DQN", False),
         "cleanrl": ("cleanrl", "PPO", True), "torchscript": ("torchscript", "Tiny", True)}


class Tiny(nn.Module):
    """A TorchScript-able agent: float 0-255 frames (N, 4, 84, 84) -> (scores (N, A), value (N, 1))."""

    def __init__(self, n_actions: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 8, stride=4)
        self.scores = nn.Linear(8 * 20 * 20, n_actions)
        self.value = nn.Linear(8 * 20 * 20, 1)

    def forward(self, x: torch.Tensor):
        hidden = torch.relu(self.conv(x / 255.0)).flatten(1)
        return self.scores(hidden), self.value(hidden)


@pytest.fixture(scope="module")
def agent_files(untrained_zips, tmp_path_factory):
    """{kind: path} of one agent file of each kind, for Breakout's 4 actions."""
    folder = tmp_path_factory.mktemp("agents")
    torch.manual_seed(0)
    torch.save(PPOAgent(4).state_dict(), folder / "ppo.cleanrl_model")
    torch.jit.save(torch.jit.script(Tiny()), folder / "tiny.pt")
    return {"sb3-ppo": untrained_zips["ppo"], "sb3-dqn": untrained_zips["dqn"],
            "cleanrl": folder / "ppo.cleanrl_model", "torchscript": folder / "tiny.pt"}


@pytest.fixture
def agent_file(request, agent_files, tmp_path):
    """A copy of the kind's file in this test's folder (evaluate writes NAME_eval beside it)."""
    source = agent_files[request.param]
    shutil.copyfile(source, tmp_path / source.name)
    return tmp_path / source.name


@pytest.fixture(scope="module")
def atari_head(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari_head")
    make_sample_trial("Breakout", TRIAL_FRAMES, root, layout="release2", seed=1, trial_number=901)
    return root


def kind_of(path):
    names = {"ppo.zip": "sb3-ppo", "dqn.zip": "sb3-dqn", "ppo.cleanrl_model": "cleanrl", "tiny.pt": "torchscript"}
    return names[path.name]


def one_line(code, stderr, *fragments):
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.mark.slow
@pytest.mark.parametrize("agent_file", KINDS, indirect=True)
def test_evaluate_with_a_gradient_video_then_export(agent_file, capsys, monkeypatch):
    library, algorithm, _ = ABOUT[kind_of(agent_file)]
    code, stderr = run_main(capsys, ["evaluate", "--agent", str(agent_file), "--env-name", GAME, "--num-env", "1",
                                     "--max-eplen", "12", "--raw-obs", "--video-method", "gradient", "--device", "cpu"])
    assert code == 0, stderr
    eval_dir = agent_file.with_name(f"{agent_file.stem}_eval")  # the default, beside the file
    results = json.loads((eval_dir / "results.json").read_text())
    assert results["lengths"] == [12] and results["done_per_env"] == [1]
    summary = json.loads((eval_dir / "summary.json").read_text())
    assert (summary["agent"]["library"], summary["agent"]["algorithm"]) == (library, algorithm)
    assert summary["env_name"] == GAME
    assert summary["video_method"] == "gradient" and summary["experiment_dir"] is None
    frames = list(read_frames(eval_dir / "perception.mkv"))
    assert len(frames) == summary["agent_steps"] and frames[0].shape == (210, 160, 3)

    out = agent_file.parent / "hf"
    code, stderr = run_main(capsys, ["export", "--agent", str(agent_file), "--out", str(out)])
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", agent_file.name, "replay.mp4"])
    assert (out / agent_file.name).read_bytes() == agent_file.read_bytes()
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert {library, algorithm.lower(), GAME} <= set(meta["tags"])
    assert meta["model-index"][0]["results"][0]["dataset"]["name"] == GAME
    assert f"# {library}-{algorithm} on {GAME}" in card and f"network ({library})" in card
    assert "its gradient saliency overlaid" in card
    command = next(line for line in card.splitlines() if line.startswith("fl-saliency evaluate"))
    assert command == f"fl-saliency evaluate --agent {agent_file.name} --env-name {GAME} --raw-obs"
    # The command the card suggests works, run in the exported folder (shortened).
    monkeypatch.chdir(out)
    code, stderr = run_main(capsys, [*shlex.split(command)[1:], "--num-env", "1", "--max-eplen", "5", "--device", "cpu"])
    assert code == 0, stderr
    assert json.loads((out / f"{agent_file.stem}_eval" / "summary.json").read_text())["video_method"] == "gradient"


@pytest.mark.parametrize("agent_file", KINDS, indirect=True)
def test_inspect_says_what_the_file_is(agent_file):
    library, algorithm, has_value = ABOUT[kind_of(agent_file)]
    result = run_cli("inspect", str(agent_file))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["library"].strip() == library and lines["algorithm"].strip() == algorithm
    assert lines["actions"].strip().startswith("4 (")
    assert lines["value head"].strip().startswith("yes" if has_value else "no")
    assert lines["attention"].strip().startswith("no")
    assert "(4, 84, 84) channels first" in lines["observation"]
    assert "not recorded" in lines["game"]


@pytest.mark.slow
@pytest.mark.parametrize("agent_file", KINDS, indirect=True)
def test_saliency_scores_post_hoc_methods_and_references(agent_file, atari_head, capsys):
    _, _, has_value = ABOUT[kind_of(agent_file)]
    methods = ["gradient", "perturbation", *(["perturbation-critic"] if has_value else [])]
    out = agent_file.parent / "saliency"
    code, stderr = run_main(capsys, ["saliency", "--agent", str(agent_file), "--env-name", GAME, "--atari-head-dir",
                                     str(atari_head), "--output-dir", str(out), "--method", ",".join(methods),
                                     "--references", "center-bias,uniform", "--processed-obs", "--device", "cpu"])
    assert code == 0, stderr
    summary = json.loads((out / "saliency.json").read_text())
    assert list(summary["methods"]) == methods and list(summary["references"]) == ["center-bias", "uniform"]
    assert summary["agent"]["library"] == ABOUT[kind_of(agent_file)][0] and summary["env_name"] == GAME
    k = num_maps(TRIAL_FRAMES)
    for method in methods:
        overall = summary["methods"][method]["overall"]
        assert overall["nss"]["count"] == overall["auc_judd"]["count"] > 0
        assert all(overall[m]["count"] <= k for m in overall)
        assert 0 <= overall["auc_judd"]["mean"] <= 1 and -1 <= overall["cc"]["mean"] <= 1
        with open(out / f"saliency.{method}.pkl", "rb") as f:
            (record,) = pickle.load(f)
        assert record["trial_number"] == 901 and len(record["metrics"]["nss"]) == k
    assert not (out / "saliency.pkl").exists()  # attention's file: not scored


@pytest.mark.slow
def test_every_method_and_metric_on_an_sb3_ppo(agent_files, atari_head, tmp_path, capsys):
    methods = "gradient,smoothgrad,integrated-gradients,gradcam,rise,perturbation,perturbation-critic"
    code, stderr = run_main(capsys, ["saliency", "--agent", str(agent_files["sb3-ppo"]), "--env-name", GAME,
                                     "--atari-head-dir", str(atari_head), "--output-dir", str(tmp_path / "s"),
                                     "--method", methods, "--references", "uniform,center-bias,gaze-neighbour",
                                     "--device", "cpu"])
    assert code == 0, stderr
    summary = json.loads((tmp_path / "s" / "saliency.json").read_text())
    assert list(summary["methods"]) == methods.split(",")
    metrics = {"nss", "kldiv", "sauc", "auc_judd", "cc", "sim", "mit_kldiv", "info_gain"}
    counts = set()
    for result in [*summary["methods"].values(), *summary["references"].values()]:
        assert set(result["overall"]) == metrics
        # every map with gaze defines these (not NSS on the uniform reference's constant maps, nor KL on maps
        # with zeros)
        counts |= {result["overall"][m]["count"] for m in ("auc_judd", "cc", "sim", "mit_kldiv", "info_gain")}
    assert len(counts) == 1 and 0 < counts.pop() <= num_maps(TRIAL_FRAMES)


@pytest.mark.slow
@pytest.mark.parametrize("agent_file", KINDS, indirect=True)
def test_faithfulness_deletion_insertion_and_randomisation(agent_file, atari_head, capsys):
    kind = kind_of(agent_file)
    out = agent_file.parent / "faith"
    args = ["faithfulness", "--agent", str(agent_file), "--env-name", GAME, "--atari-head-dir", str(atari_head),
            "--output-dir", str(out), "--method", "gradient", "--max-maps", "2", "--step", "1764", "--device", "cpu"]
    if kind == "torchscript":
        one_line(*run_main(capsys, args), "cannot run on the TorchScript agent", "pass --no-randomisation")
        assert not out.exists()
        args.append("--no-randomisation")
    code, stderr = run_main(capsys, args)
    assert code == 0, stderr
    summary = json.loads((out / "faithfulness.json").read_text())
    gradient = summary["methods"]["gradient"]
    assert gradient["deletion_auc"]["count"] == gradient["insertion_auc"]["count"] == 2
    assert 0 <= gradient["deletion_auc"]["mean"] <= 1 and 0 <= gradient["insertion_auc"]["mean"] <= 1
    randomisation = gradient["randomisation"]
    if kind == "torchscript":
        assert randomisation is None
        return
    # The Nature CNN's layers, top first: the heads, then the 512-unit layer and the convolutions.
    trunk = ["trunk.linear.0", "trunk.cnn.4", "trunk.cnn.2", "trunk.cnn.0"]
    heads = ["value", "scores"] if ABOUT[kind][2] else ["scores"]
    assert randomisation["layers"] == heads + trunk
    assert len(randomisation["spearman"]) == len(heads + trunk)
    if kind != "sb3-dqn":  # the value head first: the logits' gradient does not change
        assert randomisation["spearman"][0] == pytest.approx(1.0)
    assert randomisation["spearman"][-1] < 0.9


@pytest.mark.parametrize("agent_file", ["sb3-dqn"], indirect=True)
def test_methods_the_agent_cannot_give_are_refused_before_any_work(agent_file, atari_head, capsys):
    out = agent_file.parent / "s"
    base = ["saliency", "--agent", str(agent_file), "--env-name", GAME, "--atari-head-dir", str(atari_head),
            "--output-dir", str(out), "--device", "cpu"]
    one_line(*run_main(capsys, [*base, "--method", "gradient,perturbation-critic"]),
             "perturbation-critic needs a value head, which the stable-baselines3 DQN agent lacks")
    one_line(*run_main(capsys, base), "attention method needs a network with attention of its own")  # the default
    one_line(*run_main(capsys, ["faithfulness", *base[1:], "--method", "perturbation-critic"]), "needs a value head")
    one_line(*run_main(capsys, ["evaluate", "--agent", str(agent_file), "--env-name", GAME, "--raw-obs",
                                "--video-method", "attention", "--output-dir", str(out), "--device", "cpu"]),
             "attention method needs a network with attention of its own")
    assert not out.exists()


@pytest.mark.parametrize("agent_file", ["sb3-ppo"], indirect=True)
def test_game_and_action_count_are_one_line_before_any_work(agent_file, atari_head, capsys):
    out = agent_file.parent / "o"
    saliency = ["saliency", "--agent", str(agent_file), "--atari-head-dir", str(atari_head), "--output-dir", str(out),
                "--method", "gradient"]
    one_line(*run_main(capsys, ["evaluate", "--agent", str(agent_file), "--output-dir", str(out)]),
             "does not record its game; name it with --env-name")
    one_line(*run_main(capsys, saliency), "does not record its game; name it with --env-name")
    one_line(*run_main(capsys, ["evaluate", "--agent", str(agent_file), "--env-name", "MsPacmanNoFrameskip-v4",
                                "--output-dir", str(out)]),
             "the agent has 4 actions but MsPacmanNoFrameskip-v4 has 9")
    one_line(*run_main(capsys, [*saliency, "--env-name", "MsPacmanNoFrameskip-v4"]),
             "has 4 actions but MsPacmanNoFrameskip-v4 has 9")
    one_line(*run_main(capsys, ["faithfulness", *saliency[1:], "--env-name", "Pong"]), "has 4 actions but Pong has 6")
    one_line(*run_main(capsys, ["export", "--agent", str(agent_file), "--out", str(out)]),
             "has no evaluation", f"fl-saliency evaluate --agent {agent_file} --env-name GAME")
    assert not out.exists()
    one_line(*run_main(capsys, ["evaluate", "--output-dir", str(out)]), "an agent is required: --agent PATH or "
                                                                       "--experiment-dir DIR")
    one_line(*run_main(capsys, ["evaluate", "--agent", str(agent_file), "--experiment-dir", str(out)]),
             "give --agent or --experiment-dir, not both")
    one_line(*run_main(capsys, ["export", "--out", str(out)]), "an agent is required")


def test_a_torchscript_agent_with_the_wrong_action_count_is_one_line(tmp_path, atari_head, capsys):
    torch.jit.save(torch.jit.script(Tiny(3)), tmp_path / "three.pt")
    one_line(*run_main(capsys, ["evaluate", "--agent", str(tmp_path / "three.pt"), "--env-name", GAME]),
             "the agent has 3 actions but BreakoutNoFrameskip-v4 has 4")
    one_line(*run_main(capsys, ["saliency", "--agent", str(tmp_path / "three.pt"), "--env-name", GAME,
                                "--atari-head-dir", str(atari_head), "--output-dir", str(tmp_path / "s"),
                                "--method", "gradient"]),
             "has 3 actions but BreakoutNoFrameskip-v4 has 4 (minimal action set)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.pt"]


def test_a_video_overlays_maps_on_the_input_grid_as_they_are(tmp_path):
    scale = 1e-7  # as small as gradients get: float16 would store 0.3 * scale as 0 or 0.5 * scale
    maps = torch.full((2, 1, 84, 84), -5.0 * scale)  # negative saliency: no heat
    maps[0, :, :, :42] = scale
    maps[1, :, :, :42] = 0.3 * scale
    obs = np.full((1, 4, 84, 84), 100, np.uint8)
    recorder = PerceptionRecorder(tmp_path / "v.mkv", None, [0], raw=False, processed=True)
    for step_maps in maps:
        recorder.add(step_maps, obs, None, np.zeros(1, bool))
    frames = list(read_frames(recorder.finish()))

    def blended(value):  # JET's colour of the map divided by the recording's maximum, weighted 0.6 * value
        heat = cv2.cvtColor(cv2.applyColorMap(np.uint8([[int(value * 255)]]), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        return np.round(100 * (1 - 0.6 * value) + heat[0, 0] * 0.6 * value)

    assert len(frames) == 2 and frames[0].shape == (160, 160, 3)
    np.testing.assert_allclose(frames[0][:, :70], np.broadcast_to(blended(1.0), (160, 70, 3)), atol=1)
    np.testing.assert_allclose(frames[1][:, :70], np.broadcast_to(blended(0.3), (160, 70, 3)), atol=1)
    assert (frames[0][:, 90:] == 100).all() and (frames[1][:, 90:] == 100).all()


def test_fresh_weights_redraw_every_layer_under_the_seed(agent_files):
    agent = load_agent(agent_files["sb3-ppo"])
    first, second = fresh_weights(agent, 5), fresh_weights(agent, 5)
    for (name, p), q, r in zip(agent.named_parameters(), first.parameters(), second.parameters()):
        assert torch.equal(q, r) and not torch.equal(p, q), name
    bound = 1 / 512 ** 0.5  # PyTorch's default for a Linear: weights uniform within 1 / sqrt(fan_in)
    assert 0.9 * bound < first.scores.weight.abs().max() <= bound

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x.mean(dim=(2, 3)) * self.gain

    with pytest.raises(FlSaliencyError, match="cannot re-initialise layer '' .Scaled: no reset_parameters"):
        fresh_weights(agent_from_module(Scaled()).module)


@pytest.mark.parametrize("kind, samples", [("sb3-ppo", True), ("cleanrl", True), ("sb3-dqn", False),
                                           ("torchscript", False)])
def test_policies_sample_and_q_networks_act_greedily(kind, samples, agent_files, tmp_path, capsys, monkeypatch):
    import fl_saliency.evaluation.evaluate

    sampled = []
    real = fl_saliency.evaluation.evaluate.sample_actions
    monkeypatch.setattr(fl_saliency.evaluation.evaluate, "sample_actions", lambda scores: sampled.append(scores) or real(scores))
    code, stderr = run_main(capsys, ["evaluate", "--agent", str(agent_files[kind]), "--env-name", GAME, "--num-env",
                                     "1", "--max-eplen", "3", "--output-dir", str(tmp_path / "e"), "--device", "cpu"])
    assert code == 0, stderr
    assert bool(sampled) == samples  # logits: the softmax's samples; Q-values and unnamed scores: the argmax


@pytest.mark.slow
def test_an_experiment_as_agent_plays_and_records_as_experiment_dir(tmp_path, capsys):
    from fl_saliency.agents.checkpoint import save_config, save_model
    from fl_saliency.agents.networks import ActorCritic

    torch.manual_seed(0)
    save_model(ActorCritic("cnn_sparse_fls", 4), tmp_path / "model.pkl")
    save_config({"network": "cnn_sparse_fls", "env_name": GAME}, tmp_path / "config.json")
    common = ["--num-env", "2", "--max-eplen", "40", "--raw-obs", "--device", "cpu"]
    assert run_main(capsys, ["evaluate", "--experiment-dir", str(tmp_path), "--output-dir", str(tmp_path / "a"),
                             *common])[0] == 0
    assert run_main(capsys, ["evaluate", "--agent", str(tmp_path / "model.pkl"), "--output-dir", str(tmp_path / "b"),
                             *common])[0] == 0
    a, b = (json.loads((tmp_path / x / "results.json").read_text()) for x in "ab")
    assert (a["rewards"], a["lengths"], a["done_per_env"]) == (b["rewards"], b["lengths"], b["done_per_env"])
    video_a, video_b = (list(read_frames(tmp_path / x / "perception.mkv")) for x in "ab")
    assert len(video_a) == len(video_b) > 0 and all(np.array_equal(x, y) for x, y in zip(video_a, video_b))
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["video_method"] == "attention"


def test_damaged_and_unknown_agent_files_are_one_line(agent_files, tmp_path, capsys):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(agent_files["sb3-ppo"].read_bytes()[:5000])
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "unknown.pt")
    for path, fragment in ((truncated, "damaged"), (tmp_path / "unknown.pt", "state dict of an unknown layout")):
        one_line(*run_main(capsys, ["inspect", str(path)]), fragment)
        one_line(*run_main(capsys, ["evaluate", "--agent", str(path), "--env-name", GAME,
                                    "--output-dir", str(tmp_path / "o")]), fragment)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize("agent_file", ["sb3-dqn"], indirect=True)
def test_export_of_an_agent_takes_its_saliency_and_plays_a_replay(agent_file, atari_head, capsys):
    eval_dir = agent_file.with_name(f"{agent_file.stem}_eval")
    assert run_main(capsys, ["evaluate", "--agent", str(agent_file), "--env-name", GAME, "--num-env", "1",
                             "--max-eplen", "6", "--device", "cpu"])[0] == 0
    assert run_main(capsys, ["saliency", "--agent", str(agent_file), "--env-name", GAME, "--atari-head-dir",
                             str(atari_head), "--output-dir", str(eval_dir), "--method", "gradient", "--device",
                             "cpu"])[0] == 0
    nss = json.loads((eval_dir / "saliency.json").read_text())["methods"]["gradient"]["overall"]["nss"]
    out = agent_file.parent / "hf"
    code, stderr = run_main(capsys, ["export", "--agent", str(agent_file), "--out", str(out), "--replay-steps", "8"])
    assert code == 0, stderr
    card = (out / "README.md").read_text()
    assert f"| NSS | {nss['mean']:.4f} | {nss['std']:.4f} | {nss['count']} |" in card
    assert "| saliency metric (saliency vs Atari-HEAD gaze) |" in card and "its gradient saliency overlaid" in card
    gaze = yaml.safe_load(card.split("---\n")[1])["model-index"][0]["results"][1]
    assert {"type": "nss", "value": round(nss["mean"], 4), "name": "NSS", "verified": False} in gaze["metrics"]
    replay = list(read_frames(out / "replay.mp4"))  # no perception video in the evaluation: a short one played
    assert 0 < len(replay) <= 8 and replay[0].shape == (210, 160, 3)


class ChannelsLast(nn.Module):
    """``Tiny`` on frames (N, 84, 84, 4): what a file cannot say about itself."""

    def __init__(self):
        super().__init__()
        self.inner = Tiny()

    def forward(self, x: torch.Tensor):
        return self.inner(x.permute(0, 3, 1, 2))


def test_flags_say_what_a_torchscript_file_does_not(tmp_path, capsys):
    torch.jit.save(torch.jit.script(ChannelsLast()), tmp_path / "last.pt")
    result = run_cli("inspect", str(tmp_path / "last.pt"), "--channels-last", "--module-input", "scaled")
    assert result.returncode == 0, result.stderr
    assert "observation: float32 (84, 84, 4) channels last, / 255" in result.stdout
    one_line(*run_main(capsys, ["inspect", str(tmp_path / "last.pt")]), "fails on frames (1, 4, 84, 84)")
    code, stderr = run_main(capsys, ["evaluate", "--agent", str(tmp_path / "last.pt"), "--channels-last", "--env-name",
                                     GAME, "--num-env", "1", "--max-eplen", "3", "--processed-obs", "--device", "cpu"])
    assert code == 0, stderr
    summary = json.loads((tmp_path / "last_eval" / "summary.json").read_text())
    assert summary["agent"]["observation"] == "float32 (84, 84, 4) channels last (0-255 values)"


def test_cleanrl_network_flag_reads_a_state_dict_with_extra_keys(tmp_path, capsys):
    torch.manual_seed(0)
    state = {**PPOAgent(4).state_dict(), "obs_rms.mean": torch.zeros(4)}  # e.g. a normaliser saved beside it
    torch.save(state, tmp_path / "ppo.cleanrl_model")
    one_line(*run_main(capsys, ["inspect", str(tmp_path / "ppo.cleanrl_model")]), "state dict of an unknown layout")
    result = run_cli("inspect", str(tmp_path / "ppo.cleanrl_model"), "--cleanrl-network", "ppo_atari")
    assert result.returncode == 0, result.stderr
    assert "library:     cleanrl" in result.stdout and "value head:  yes" in result.stdout
