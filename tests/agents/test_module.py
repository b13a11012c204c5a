"""TorchScript files, plain modules and callables, and this project's own networks as agents."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from torch import nn

from fl_saliency.agents import ExperimentAgent, ModuleAgent, agent_from_module, load_agent
from fl_saliency.agents.checkpoint import save_config, save_model
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.methods import METHODS
from fl_saliency.agents.networks import ActorCritic


class Scripted(nn.Module):
    """uint8 or float 0-255 frames -> (scores (N, 3), value (N, 1)); ``channels_last`` reads (N, 84, 84, 4)."""

    def __init__(self, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        self.conv = nn.Conv2d(4, 8, 8, stride=4)
        self.scores = nn.Linear(8 * 20 * 20, 3)
        self.value = nn.Linear(8 * 20 * 20, 1)

    def forward(self, x: torch.Tensor):
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        hidden = torch.relu(self.conv(x.float() / 255.0)).flatten(1)
        return self.scores(hidden), self.value(hidden)


@pytest.fixture
def frames():
    return torch.randint(0, 256, (3, 4, 84, 84), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_torchscript_file_gives_its_module_outputs(channels_last, frames, tmp_path):
    torch.manual_seed(0)
    net = Scripted(channels_last)
    torch.jit.save(torch.jit.script(net), tmp_path / "agent.pt")
    agent = load_agent(tmp_path / "agent.pt", channels_last=channels_last)
    scores, value, attention = agent(frames)
    with torch.no_grad():
        expected = net(frames.permute(0, 2, 3, 1) if channels_last else frames)
    torch.testing.assert_close(scores, expected[0])
    torch.testing.assert_close(value, expected[1][:, 0])
    assert (agent.n_actions, agent.has_value, attention) == (3, True, None)
    assert agent.describe()["library"] == "torchscript"
    frames_layout = "(84, 84, 4) channels last" if channels_last else "(4, 84, 84) channels first"
    assert agent.source.observation == f"float32 {frames_layout} (0-255 values)"


def test_gradient_through_a_torchscript_agent_equals_autograd(frames, tmp_path):
    torch.manual_seed(1)
    net = Scripted()
    torch.jit.save(torch.jit.script(net), tmp_path / "agent.pt")
    actions = torch.tensor([2, 0, 1])
    maps = METHODS["gradient"](load_agent(tmp_path / "agent.pt"), frames, actions)
    x = frames.float().requires_grad_()
    net(x)[0].gather(1, actions[:, None]).sum().backward()
    expected = (x.grad * 255).abs().amax(dim=1)
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-5 * float(expected.amax()))


def test_a_callable_and_a_module_are_agents(frames):
    net = nn.Sequential(nn.Flatten(), nn.Linear(4 * 84 * 84, 5))
    agent = agent_from_module(net)
    assert isinstance(agent, ModuleAgent) and agent.torch_module is net and not agent.has_value
    torch.testing.assert_close(agent(frames)[0], net(frames.float()))
    scaled = agent_from_module(lambda x: net(x), scaled_input=True)  # a callable on frames / 255
    torch.testing.assert_close(scaled(frames)[0], net(frames.float() / 255))
    assert agent_from_module(agent) is agent


def test_bad_modules_are_one_line(frames, tmp_path):
    with pytest.raises(FlSaliencyError, match=r"must return action scores \(N, A\) .* got \(1,\) for N = 1"):
        agent_from_module(lambda x: x.float().mean(dim=(1, 2, 3)))
    with pytest.raises(FlSaliencyError, match="a second output that is not one value per observation"):
        agent_from_module(lambda x: (x.float().flatten(1)[:, :3], x.float().flatten(1)[:, :2]))
    with pytest.raises(FlSaliencyError, match=r"an agent takes uint8 frames \(N, 4, 84, 84\), got torch.float32"):
        agent_from_module(nn.Sequential(nn.Flatten(), nn.Linear(4 * 84 * 84, 5)))(frames.float())
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(10, 2))), tmp_path / "small.pt")
    with pytest.raises(FlSaliencyError, match=r"small.pt fails on frames \(1, 4, 84, 84\)") as error:
        load_agent(tmp_path / "small.pt")
    assert "\n" not in str(error.value)


def experiment_folder(folder, network: str):
    torch.manual_seed(0)
    model = ActorCritic(network, 4)
    folder.mkdir()
    save_model(model, folder / "model.pkl")
    save_config({"network": network, "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return model


@pytest.mark.slow
@pytest.mark.parametrize("network", ["cnn_sparse_fls", "cnn"])
def test_an_experiment_folder_is_its_network(network, frames, tmp_path):
    model = experiment_folder(tmp_path / "run", network)
    agent = load_agent(tmp_path / "run", env_name="Breakout")
    assert isinstance(agent, ExperimentAgent)
    for ours, theirs in zip(agent(frames), model(frames)):
        torch.testing.assert_close(ours, theirs)
    actions = torch.tensor([0, 1, 3])
    for method in ("attention", "gradcam"):
        torch.testing.assert_close(METHODS[method](agent, frames, actions), METHODS[method](model, frames, actions))
    assert agent.describe() == {"library": "fl-saliency", "algorithm": "PPO", "network": network,
                                "path": str(tmp_path / "run"), "env_name": "BreakoutNoFrameskip-v4",
                                "observation": "uint8 (4, 84, 84) channels first, / 255",
                                "n_actions": 4, "scores_kind": "logits",
                                "has_value": True, "has_attention": network != "cnn"}
    with pytest.raises(FlSaliencyError, match="run has 4 actions but Seaquest has 18"):
        load_agent(tmp_path / "run", env_name="Seaquest")
    assert load_agent(tmp_path / "run" / "model.pkl").describe()["network"] == network
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(FlSaliencyError, match="config.json not found"):
        load_agent(tmp_path / "run" / "model.pkl")


@pytest.mark.slow
@pytest.mark.parametrize("module", ["base", "experiment", "loader", "module", "nature", "cleanrl"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"fl_saliency.agents.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_explain_runs_any_method_on_any_agent(frames, tmp_path):
    from fl_saliency.methods import explain

    torch.manual_seed(3)
    net = Scripted()
    torch.jit.save(torch.jit.script(net), tmp_path / "agent.pt")
    agent = load_agent(tmp_path / "agent.pt")
    with torch.no_grad():
        greedy = net(frames)[0].argmax(1)
    maps = explain(agent, frames.numpy(), "gradient")
    assert isinstance(maps, np.ndarray) and maps.shape == (3, 84, 84) and maps.dtype == np.float32
    np.testing.assert_array_equal(maps, METHODS["gradient"](agent, frames, greedy).numpy())
    other = (greedy + 1) % 3
    np.testing.assert_array_equal(explain(net, frames, "gradient", other.tolist()),
                                  METHODS["gradient"](agent, frames, other).numpy())
    for method, match in (("attention", "attention method needs a network with attention of its own"),
                          ("saliency", "unknown saliency method 'saliency'")):
        with pytest.raises(FlSaliencyError, match=match):
            explain(agent, frames, method)
    with pytest.raises(FlSaliencyError, match=r"actions must be one per observation \(3\), got shape \(2,\)"):
        explain(agent, frames, "gradient", [0, 1])


def test_explain_module_docstring_example_runs():
    import fl_saliency.methods

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(fl_saliency.methods.explain, "explain", globs={"explain": fl_saliency.methods.explain}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries == 4
