import zlib

import numpy as np
import pytest
import torch

from fl_saliency.agents.checkpoint import load_into
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import (Dense, NETWORKS, ActorCritic, check_network_name, parameter_count, scale_observation,
                                  single_channel_conv)
from helpers import TABLE_2
from numpy_reference import NETWORK_NAMES, random_baselines_params, reference_forward

GRIDS = {name: 7 for name in NETWORK_NAMES}
GRIDS.update(cnn_sparse_fls_h1=20, cnn_sparse_fls_x3=20, cnn_dense_fls=84, cnn_dense_fls_norelu=84)


def test_registry_holds_the_fifteen_networks_of_the_spec():
    assert tuple(NETWORKS) == NETWORK_NAMES


@pytest.mark.parametrize("name", sorted(TABLE_2))
def test_parameter_counts_equal_table_2(name):
    assert parameter_count(ActorCritic(name, n_actions=4)) == TABLE_2[name]


def test_unknown_network_is_one_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown network 'cnn_fls'.*cnn_sparse_fls"):
        check_network_name("cnn_fls")


def test_scale_observation_is_the_true_division_by_255_of_every_byte():
    """All 256 values, bit for bit as float32(x) / float32(255) (numpy), in channels-last memory."""
    obs = np.random.default_rng(0).permutation(np.arange(2 * 4 * 16 * 16) % 256).astype(np.uint8).reshape(2, 4, 16, 16)
    scaled = scale_observation(torch.from_numpy(obs))
    assert scaled.dtype == torch.float32 and scaled.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(scaled.numpy(), obs.astype(np.float32) / np.float32(255))
    assert set(np.unique(obs)) == set(range(256))


def test_scale_observation_refuses_frames_that_are_not_uint8():
    with pytest.raises(FlSaliencyError, match="uint8 frames, got torch.float32"):
        scale_observation(torch.zeros(1, 4, 84, 84))


@pytest.mark.parametrize("kernel, grid", [(3, 7), (1, 7), (3, 20)])
def test_single_channel_conv_equals_the_convolution_and_its_gradients(kernel, grid):
    torch.manual_seed(kernel * grid)
    conv = torch.nn.Conv2d(16, 1, kernel, padding=kernel // 2).double()
    x = torch.randn(3, 16, grid, grid, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, grid, grid, dtype=torch.float64)
    expected = conv(x)[:, 0]
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (x, conv.weight, conv.bias))
    got = single_channel_conv(x, conv)
    got_grads = torch.autograd.grad((got * upstream).sum(), (x, conv.weight, conv.bias))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_torch_network_matches_numpy_reference_on_imported_weights(name):
    """Baselines-format random weights, imported into torch, give the NHWC numpy oracle's outputs."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n_actions = 6
    params = random_baselines_params(name, n_actions, rng)
    obs_nhwc = rng.integers(0, 256, size=(3, 84, 84, 4), dtype=np.uint8)
    expected = reference_forward(name, params, obs_nhwc)

    model = ActorCritic(name, n_actions)
    load_into(model, params)
    with torch.no_grad():
        latent, attention = model.extractor(scale_observation(torch.from_numpy(obs_nhwc.transpose(0, 3, 1, 2).copy())))
        logits, value, attention2 = model(torch.from_numpy(obs_nhwc.transpose(0, 3, 1, 2).copy()))
    got = {"latent": latent, "logits": logits, "value": value, "attention": attention}
    assert attention.shape == (3, GRIDS[name], GRIDS[name])
    torch.testing.assert_close(attention2, attention, rtol=0, atol=0)
    for key, reference in expected.items():
        ours = got[key].double().numpy()
        assert ours.shape == reference.shape, key
        scale = max(np.abs(reference).max(), 1e-12)
        # float32 sums over up to 84x84x64 terms, ordered by oneDNN per CPU: 1.8e-5 seen on an AMD EPYC.
        # A layout or weight-mapping error is off by O(1).
        assert np.abs(ours - reference).max() <= 1e-4 * scale, f"{name} {key}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_initialisation_is_orthogonal_with_baselines_gains(name):
    torch.manual_seed(0)
    model = ActorCritic(name, n_actions=4)
    for module_name, module in model.named_modules():
        if not isinstance(module, (torch.nn.Conv2d, Dense)):
            continue
        gain = {"pi": 0.01, "vf": 1.0}.get(module_name, 2**0.5)
        w = module.weight.detach().reshape(module.weight.shape[0], -1).double()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(small, gain**2 * torch.eye(small.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
        assert module.bias.abs().max() == 0


@pytest.mark.slow
def test_attention_maps_have_their_defining_properties():
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        assert ActorCritic("cnn", 4)(obs)[2].abs().max() == 0
        torch.testing.assert_close(ActorCritic("cnn_daqn", 4)(obs)[2].sum((1, 2)), torch.ones(2))
        torch.testing.assert_close(ActorCritic("cnn_rsppo", 4)(obs)[2].sum((1, 2)), 2 * torch.ones(2))
        torch.testing.assert_close(ActorCritic("cnn_sparse_fls_norm", 4)(obs)[2].sum((1, 2)), torch.ones(2))
        assert (ActorCritic("cnn_sparse_fls", 4)(obs)[2] > 0).all()
