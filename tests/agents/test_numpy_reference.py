"""Self-checks of the plain-numpy oracle (tests/numpy_reference.py) against hand-computable facts
only; nothing here compares against fl_saliency."""

from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference as R  # noqa: E402
from helpers import TABLE_2  # noqa: E402

N_ACTIONS = 4

ATT_SHAPE = {n: (7, 7) for n in R.NETWORK_NAMES}
ATT_SHAPE.update({"cnn_sparse_fls_h1": (20, 20), "cnn_sparse_fls_x3": (20, 20),
                  "cnn_dense_fls": (84, 84), "cnn_dense_fls_norelu": (84, 84)})


def _obs(seed=0, batch=2):
    return np.random.default_rng(seed).integers(0, 256, (batch, 84, 84, 4), dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def _params(network):
    return R.random_baselines_params(network, N_ACTIONS, np.random.default_rng(1234))


@functools.lru_cache(maxsize=None)
def _forward(network):
    return R.reference_forward(network, _params(network), _obs())


def _zero_params(network):
    """All-zero weights and biases with the right keys and shapes (no optimizer slots)."""
    return {k: np.zeros_like(v) for k, v in _params(network).items() if not R.is_optimizer_slot(k)}


# --------------------------------------------------------------------------- primitives


def _naive_conv(x, w, b, stride, padding):
    k = w.shape[0]
    if padding == "SAME":
        p = k // 2
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    B, H, W, C = x.shape
    O = w.shape[3]
    ho, wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.zeros((B, ho, wo, O))
    for n in range(B):
        for r in range(ho):
            for c in range(wo):
                for o in range(O):
                    s = b.reshape(-1)[o]
                    for i in range(k):
                        for j in range(k):
                            for ch in range(C):
                                s += x[n, r * stride + i, c * stride + j, ch] * w[i, j, ch, o]
                    out[n, r, c, o] = s
    return out


@pytest.mark.parametrize("k,stride,padding,size", [
    (3, 1, "VALID", 6), (4, 2, "VALID", 9), (8, 4, "VALID", 12), (2, 3, "VALID", 8),
    (3, 1, "SAME", 5), (5, 1, "SAME", 6), (1, 1, "SAME", 4), (3, 2, "SAME", 7),
])
def test_conv2d_matches_naive_loop(k, stride, padding, size):
    rng = np.random.default_rng(k * 100 + stride)
    x = rng.standard_normal((2, size, size + 1, 3))
    w = rng.standard_normal((k, k, 3, 2))
    b = rng.standard_normal((1, 2, 1, 1))
    got = R.conv2d(x, w, b, stride, padding)
    want = _naive_conv(x, w, b, stride, padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv2d_output_sizes_of_the_blocks():
    x = np.zeros((1, 84, 84, 4))
    assert R.conv2d(x, np.zeros((8, 8, 4, 32)), None, 4, "VALID").shape == (1, 20, 20, 32)
    assert R.conv2d(np.zeros((1, 86, 86, 4)), np.zeros((8, 8, 4, 32)), None, 4, "VALID").shape == (1, 20, 20, 32)
    assert R.conv2d(np.zeros((1, 20, 20, 32)), np.zeros((4, 4, 32, 64)), None, 2, "VALID").shape == (1, 9, 9, 64)
    assert R.conv2d(np.zeros((1, 9, 9, 64)), np.zeros((3, 3, 64, 64)), None, 1, "VALID").shape == (1, 7, 7, 64)
    assert R.conv2d(x, np.zeros((7, 7, 4, 32)), None, 1, "SAME").shape == (1, 84, 84, 32)


@pytest.mark.parametrize("n,k,i,j", [(9, 4, 0, 0), (9, 4, 3, 7), (9, 4, 8, 8), (7, 8, 0, 6), (7, 8, 4, 2), (7, 8, 6, 6)])
def test_upsample_one_hot(n, k, i, j):
    a = np.zeros((1, n, n))
    a[0, i, j] = 1.0
    up = R.upsample_ones(a, k, 2)
    assert up.shape == (1, 20, 20)
    want = np.zeros((20, 20))
    want[2 * i : 2 * i + k, 2 * j : 2 * j + k] = 1.0
    np.testing.assert_array_equal(up[0], want)


def test_upsample_coverage_counts():
    up2 = R.upsample_ones(np.ones((1, 9, 9)), 4, 2)[0]
    up3 = R.upsample_ones(np.ones((1, 7, 7)), 8, 2)[0]
    assert up2[0, 0] == 1 and up2[10, 10] == 4 and up2[19, 19] == 1 and up2[0, 10] == 2
    assert up3[0, 0] == 1 and up3[10, 10] == 16 and up3[19, 19] == 1 and up3[0, 10] == 4
    assert up2.sum() == 81 * 16 and up3.sum() == 49 * 64


def test_activation_primitives():
    assert R.softplus(np.array(0.0)) == pytest.approx(math.log(2.0))
    assert R.softplus(np.array(1000.0)) == pytest.approx(1000.0)
    assert R.softplus(np.array(-1000.0)) >= 0.0 and np.isfinite(R.softplus(np.array(-1000.0)))
    assert R.softplus_base2(np.array(0.0)) == pytest.approx(1.0)
    assert R.softplus_base2(np.array(1.0)) == pytest.approx(math.log2(3.0))
    assert R.softplus_base2(np.array(-2.0)) == pytest.approx(math.log2(1.25))
    np.testing.assert_allclose(R.elu(np.array([-1.0, 0.0, 2.0])), [math.exp(-1) - 1, 0.0, 2.0])
    z = np.random.default_rng(0).standard_normal((2, 7, 7, 3)) * 50
    s = R.spatial_softmax(z)
    np.testing.assert_allclose(s.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert np.all(s >= 0)


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("network,count", sorted(TABLE_2.items()))
def test_param_count_matches_table2(network, count):
    assert R.param_count(_params(network)) == count


def test_param_layout_and_slots():
    p = _params("cnn_sparse_fls_x3")
    for k, v in p.items():
        if not k.startswith("beta"):
            assert v.dtype == np.float32, k
    assert p["ppo2_model/pi/c1/w:0"].shape == (8, 8, 4, 32)
    assert p["ppo2_model/pi/c1/b:0"].shape == (1, 32, 1, 1)
    assert p["ppo2_model/pi/h1/h1/w:0"].shape == (3, 3, 32, 256)
    assert p["ppo2_model/pi/h2/h1/w:0"].shape == (3, 3, 64, 256)
    assert p["ppo2_model/pi/h3/h2/w:0"].shape == (3, 3, 256, 1)
    assert p["ppo2_model/pi/fc1/w:0"].shape == (3136, 512)
    assert p["ppo2_model/pi/fc1/b:0"].shape == (512,)
    assert p["ppo2_model/pi/w:0"].shape == (512, N_ACTIONS)
    assert p["ppo2_model/pi/b:0"].shape == (N_ACTIONS,)
    assert p["ppo2_model/vf/w:0"].shape == (512, 1)
    assert p["ppo2_model/vf/b:0"].shape == (1,)
    for k in ("ppo2_model/pi/c1/w/Adam:0", "ppo2_model/pi/c1/w/Adam_1:0", "beta1_power:0", "beta2_power:0"):
        assert k in p and R.is_optimizer_slot(k)
    assert np.all(p["ppo2_model/pi/c1/b:0"] != 0)
    q = _params("cnn_sparse_fls")
    assert q["ppo2_model/pi/h1/w:0"].shape == (3, 3, 64, 256)
    assert q["ppo2_model/pi/h2/b:0"].shape == (1, 1, 1, 1)
    assert R.param_count(_params("cnn_rsppo_nopad")) == TABLE_2["cnn_rsppo"]


# --------------------------------------------------------------------------- forward, random weights


@pytest.mark.slow
@pytest.mark.parametrize("network", R.NETWORK_NAMES)
def test_forward_shapes(network):
    out = _forward(network)
    assert out["latent"].shape == (2, 512)
    assert out["logits"].shape == (2, N_ACTIONS)
    assert out["value"].shape == (2,)
    assert out["attention"].shape == (2,) + ATT_SHAPE[network]
    for v in out.values():
        assert np.all(np.isfinite(v))
    assert np.all(out["latent"] >= 0) and np.any(out["latent"] > 0)


def test_network_names():
    assert len(R.NETWORK_NAMES) == 15 and len(set(R.NETWORK_NAMES)) == 15
    assert R.NETWORK_NAMES[0] == "cnn" and R.NETWORK_NAMES[-1] == "cnn_dense_fls_norelu"


def test_cnn_attention_all_zero():
    np.testing.assert_array_equal(_forward("cnn")["attention"], 0.0)


def test_daqn_attention_sums_to_one():
    np.testing.assert_allclose(_forward("cnn_daqn")["attention"].sum(axis=(1, 2)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("network", ["cnn_rsppo", "cnn_rsppo_nopad"])
def test_rsppo_attention_sums_to_two(network):
    np.testing.assert_allclose(_forward(network)["attention"].sum(axis=(1, 2)), 2.0, rtol=1e-12)


def test_fls_norm_attention_sums_to_one():
    np.testing.assert_allclose(_forward("cnn_sparse_fls_norm")["attention"].sum(axis=(1, 2)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("network", [n for n in R.NETWORK_NAMES if "fls" in n])
def test_fls_maps_positive(network):
    assert np.all(_forward(network)["attention"] > 0)


def test_rsppo_padding_changes_output():
    p = _params("cnn_rsppo")
    a = R.reference_forward("cnn_rsppo", p, _obs())
    b = R.reference_forward("cnn_rsppo_nopad", p, _obs())
    assert not np.allclose(a["logits"], b["logits"])


def test_optimizer_slots_are_ignored():
    p = dict(_params("cnn_sparse_fls"))
    base = _forward("cnn_sparse_fls")
    for k in list(p):
        if R.is_optimizer_slot(k):
            p[k] = np.asarray(p[k]) * 0 + 123.0
    out = R.reference_forward("cnn_sparse_fls", p, _obs())
    np.testing.assert_array_equal(out["logits"], base["logits"])


# --------------------------------------------------------------------------- forward, hand-built weights


def _set_heads(p, fc_rows):
    """fc1 picks the given input indices into latent units 0..; logits/value read latent unit 0."""
    for unit, idx in enumerate(fc_rows):
        p["ppo2_model/pi/fc1/w:0"][idx, unit] = 1.0
    p["ppo2_model/pi/w:0"][0, :] = np.arange(1, N_ACTIONS + 1)
    p["ppo2_model/vf/w:0"][0, 0] = 1.0


def test_cnn_passthrough_scaling_and_channel_order():
    # c1/c2/c3 copy a single input value: c1 ch0 at (r,c) reads input pixel (4r, 4c), frame 3
    p = _zero_params("cnn")
    p["ppo2_model/pi/c1/w:0"][0, 0, 3, 0] = 1.0
    p["ppo2_model/pi/c2/w:0"][0, 0, 0, 0] = 1.0
    p["ppo2_model/pi/c3/w:0"][0, 0, 0, 0] = 1.0
    _set_heads(p, [0])
    obs = _obs(5)
    out = R.reference_forward("cnn", p, obs)
    want = obs[:, 0, 0, 3].astype(np.float32) / np.float32(255.0)
    np.testing.assert_allclose(out["latent"][:, 0], want, rtol=1e-7)
    np.testing.assert_allclose(out["value"], want, rtol=1e-7)
    np.testing.assert_allclose(out["logits"], want[:, None] * np.arange(1, N_ACTIONS + 1), rtol=1e-7)


def test_cnn_flatten_is_nhwc():
    # c3 output is the bias only: channel c holds c + 1 everywhere; NHWC index (r*7+col)*64+ch
    p = _zero_params("cnn")
    p["ppo2_model/pi/c3/b:0"][0, :, 0, 0] = np.arange(1, 65)
    idx = (2 * 7 + 3) * 64 + 5
    _set_heads(p, [idx])
    out = R.reference_forward("cnn", p, _obs())
    np.testing.assert_allclose(out["latent"][:, 0], 6.0)


def test_rsppo_padding_by_hand():
    # c1 kernel tap (1, 1): with padding it reads input pixel (0, 0), without it pixel (1, 1)
    obs = np.zeros((2, 84, 84, 4), dtype=np.uint8)
    obs[0, 0, 0, 3] = 200  # sample 0: only (0, 0) lit
    obs[1, 1, 1, 3] = 200  # sample 1: only (1, 1) lit
    for name, lit in (("cnn_rsppo", [1, 0]), ("cnn_rsppo_nopad", [0, 1])):
        p = _zero_params(name)
        p["ppo2_model/pi/c1/w:0"][1, 1, 3, 0] = 1.0
        p["ppo2_model/pi/c2/w:0"][0, 0, 0, 0] = 1.0
        p["ppo2_model/pi/c3/w:0"][0, 0, 0, 0] = 1.0
        _set_heads(p, [0])
        out = R.reference_forward(name, p, obs)
        # zero h2 -> both softmax maps uniform -> A = 2/49; the L2-normalised feature is 1 (or 0)
        np.testing.assert_allclose(out["attention"], 2.0 / 49.0, rtol=1e-12)
        np.testing.assert_allclose(out["latent"][:, 0], np.array(lit) * 2.0 / 49.0, rtol=1e-12)


def test_daqn_uniform_attention_is_mean_pool():
    p = _zero_params("cnn_daqn")
    p["ppo2_model/pi/c3/b:0"][0, :, 0, 0] = np.arange(1, 65)
    _set_heads(p, [7])
    out = R.reference_forward("cnn_daqn", p, _obs())
    np.testing.assert_allclose(out["attention"], 1.0 / 49.0, rtol=1e-12)
    np.testing.assert_allclose(out["latent"][:, 0], 8.0, rtol=1e-12)


def test_fls_constant_map_and_sp2():
    for name, fn in (("cnn_sparse_fls", R.softplus), ("cnn_sparse_fls_sp2", R.softplus_base2)):
        p = _zero_params(name)
        p["ppo2_model/pi/h2/b:0"][...] = 0.5
        p["ppo2_model/pi/c3/b:0"][0, :, 0, 0] = np.arange(1, 65)
        _set_heads(p, [(6 * 7 + 6) * 64 + 9])
        out = R.reference_forward(name, p, _obs())
        a = float(fn(np.array(0.5)))
        np.testing.assert_allclose(out["attention"], a, rtol=1e-12)
        np.testing.assert_allclose(out["latent"][:, 0], 10.0 * a, rtol=1e-12)


def test_x3_attention_composition_by_hand():
    p = _zero_params("cnn_sparse_fls_x3")
    bs = {"h1": 0.3, "h2": -0.4, "h3": 1.2}
    for scope, b in bs.items():
        p[f"ppo2_model/pi/{scope}/h2/b:0"][...] = b
    _set_heads(p, [0])
    att = R.reference_forward("cnn_sparse_fls_x3", p, _obs())["attention"]
    s1, s2, s3 = (float(R.softplus(np.float64(np.float32(bs[k])))) for k in ("h1", "h2", "h3"))
    np.testing.assert_allclose(att[:, 0, 0], s1 + s2 + s3, rtol=1e-12)
    np.testing.assert_allclose(att[:, 10, 10], s1 + 4 * s2 + 16 * s3, rtol=1e-12)
    np.testing.assert_allclose(att[:, 0, 10], s1 + 2 * s2 + 4 * s3, rtol=1e-12)


def test_h1_attention_is_the_c1_map():
    p = _zero_params("cnn_sparse_fls_h1")
    p["ppo2_model/pi/h1/h2/b:0"][...] = -0.7
    _set_heads(p, [0])
    att = R.reference_forward("cnn_sparse_fls_h1", p, _obs())["attention"]
    np.testing.assert_allclose(att, float(R.softplus(np.float64(np.float32(-0.7)))), rtol=1e-12)


@pytest.mark.slow
def test_dense_constant_map_pool():
    p = _zero_params("cnn_dense_fls")
    p["ppo2_model/pi/h2/b:0"][...] = 0.0
    p["ppo2_model/pi/c3/b:0"][0, :, 0, 0] = np.arange(1, 65)
    _set_heads(p, [3])
    out = R.reference_forward("cnn_dense_fls", p, _obs())
    np.testing.assert_allclose(out["attention"], math.log(2.0), rtol=1e-12)
    np.testing.assert_allclose(out["latent"][:, 0], 4.0 * 84 * 84 * math.log(2.0), rtol=1e-12)


def test_norelu_keeps_negative_features():
    for name in ("cnn_sparse_fls_norelu", "cnn_sparse_fls"):
        p = _zero_params(name)
        p["ppo2_model/pi/c3/b:0"][...] = -1.0
        p["ppo2_model/pi/fc1/w:0"][0, 0] = -1.0
        out = R.reference_forward(name, p, _obs())
        want = math.log(2.0) if name.endswith("norelu") else 0.0
        np.testing.assert_allclose(out["latent"][:, 0], want, rtol=1e-12)
