"""CleanRL checkpoints. The cleanrl package is not installed here (its pins predate this torch), so
the networks below are written from the layout of its scripts' source (cleanrl/ppo_atari.py's
``Agent``, cleanrl/dqn_atari.py's ``QNetwork``): the same module names, shapes and forward."""

from __future__ import annotations

import pytest
import torch

from fl_saliency.agents import load_agent
from fl_saliency.common.errors import FlSaliencyError
from cleanrl_reference import PPOAgent, QNetwork


@pytest.fixture
def frames():
    return torch.randint(0, 256, (5, 4, 84, 84), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_ppo_atari_logits_and_value_equal_its_own(frames, tmp_path):
    torch.manual_seed(0)
    net = PPOAgent(9)
    torch.save(net.state_dict(), tmp_path / "ppo.cleanrl_model")
    agent = load_agent(tmp_path / "ppo.cleanrl_model", env_name="MsPacmanNoFrameskip-v4")
    scores, value, attention = agent(frames)
    with torch.no_grad():
        logits, values = net(frames.float())
    torch.testing.assert_close(scores, logits, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(value, values[:, 0], atol=1e-6, rtol=1e-5)
    assert attention is None and logits.std() > 0
    assert (agent.source.library, agent.source.algorithm, agent.source.network) == ("cleanrl", "PPO", "ppo_atari")


def test_dqn_atari_q_values_equal_its_own(frames, tmp_path):
    torch.manual_seed(1)
    net = QNetwork(4)
    torch.save(net.state_dict(), tmp_path / "dqn.cleanrl_model")
    agent = load_agent(tmp_path / "dqn.cleanrl_model", network="dqn_atari")
    with torch.no_grad():
        torch.testing.assert_close(agent(frames)[0], net(frames.float()), atol=1e-6, rtol=1e-5)
    assert not agent.has_value and agent.describe()["algorithm"] == "DQN"


def test_gradient_equals_autograd_on_the_cleanrl_module(frames, tmp_path):
    from fl_saliency.methods import METHODS

    torch.manual_seed(2)
    net = PPOAgent(4)
    torch.save(net.state_dict(), tmp_path / "ppo.pt")
    actions = torch.tensor([0, 1, 2, 3, 0])
    maps = METHODS["gradient"](load_agent(tmp_path / "ppo.pt"), frames, actions)
    x = frames.float().requires_grad_()
    net(x)[0].gather(1, actions[:, None]).sum().backward()
    expected = (x.grad * 255).abs().amax(dim=1)
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-5 * float(expected.amax()))


def one_line(path, match, **options):
    with pytest.raises(FlSaliencyError, match=match) as error:
        load_agent(path, **options)
    assert "\n" not in str(error.value)


def test_bad_checkpoints_are_one_line(tmp_path):
    torch.save({"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}, tmp_path / "mlp.pt")
    one_line(tmp_path / "mlp.pt", r"mlp.pt is a state dict of an unknown layout \(keys: fc.weight, fc.bias\)")
    torch.save(PPOAgent(4).state_dict(), tmp_path / "ppo.pt")
    one_line(tmp_path / "ppo.pt", "ppo.pt has 4 actions but MsPacman has 9", env_name="MsPacman")
    one_line(tmp_path / "ppo.pt", "ppo.pt has no network.9.weight of CleanRL's dqn_atari", network="dqn_atari")
    one_line(tmp_path / "ppo.pt", "unknown CleanRL network 'ppo'", network="ppo")
    torch.save(QNetwork(4), tmp_path / "whole.pt")  # the module pickled, not its state dict
    one_line(tmp_path / "whole.pt", "whole.pt is not an agent fl-saliency reads")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    one_line(tmp_path / "text.pt", "text.pt is not an agent fl-saliency reads")
    one_line(tmp_path / "missing.pt", "agent not found: .*missing.pt")


def test_a_file_that_is_neither_a_zip_nor_of_torch_save_is_named_so(tmp_path):
    (tmp_path / "noise.zip").write_bytes(bytes(range(256)) * 4)
    one_line(tmp_path / "noise.zip", "noise.zip is not an agent fl-saliency reads .*: it is neither a zip nor a file "
             "of torch.save")
    torch.save({"a": torch.zeros(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    one_line(tmp_path / "legacy.pt", r"legacy.pt is a state dict of an unknown layout \(keys: a\)")  # read, then refused
