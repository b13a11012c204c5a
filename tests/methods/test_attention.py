"""The registry and the ``attention`` method (fl_saliency/methods/__init__.py, attention.py)."""

import pytest
import torch

from explain_models import one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.agents.attention_maps import render_input
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.methods import METHODS, check_methods, greedy_actions, parse_methods
from fl_saliency.agents.networks import ActorCritic


def test_attention_is_the_rendered_network_map_and_zero_for_cnn():
    obs = torch.randint(0, 256, (3, 4, 84, 84), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    torch.manual_seed(0)
    model = ActorCritic("cnn_sparse_fls", 4).eval()
    grid = model(obs)[2]
    maps = METHODS["attention"](model, obs, greedy_actions(model(obs)[0]))
    # Cell (0, 0) of the 7x7 grid alone covers pixels 0-7 (stride 8, receptive field 36).
    torch.testing.assert_close(maps[:, 0, 0], grid[:, 0, 0].detach())
    torch.testing.assert_close(maps, render_input(grid.detach(), model.geometry))
    assert torch.equal(METHODS["attention"](ActorCritic("cnn", 4), obs, None), torch.zeros(3, 84, 84))


def test_method_names():
    assert list(METHODS) == ["attention", "perturbation", "perturbation-critic", "gradient", "smoothgrad",
                             "integrated-gradients", "gradcam", "rise"]
    assert parse_methods("attention, gradcam") == ["attention", "gradcam"]
    with pytest.raises(ValueError, match="unknown saliency method 'lime'; choose from: attention, perturbation"):
        parse_methods("gradient,lime")
    with pytest.raises(ValueError, match="named twice"):
        parse_methods("rise,rise")
    with pytest.raises(FlSaliencyError, match="no saliency method"):
        check_methods([])


def test_greedy_actions():
    assert greedy_actions(torch.tensor([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0]])).tolist() == [1, 0]


def test_one_method_is_parsed_as_such():
    from fl_saliency.methods import parse_method

    assert parse_method("gradient") == "gradient"
    with pytest.raises(ValueError, match="one saliency method, not 2: gradient,rise"):
        parse_method("gradient,rise")
