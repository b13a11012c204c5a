"""Independent plain-numpy reference ("oracle") for the fifteen feature extractors.

This module restates /work/docs/spec/networks.md in NHWC numpy, following the original
TensorFlow 1 / OpenAI Baselines layout (HWIO conv weights, conv biases of shape [1, out, 1, 1],
NHWC flatten order). It deliberately does not import torch or fl_saliency: it is meant to be
an independent check of the PyTorch port, computed in float64.

Public API
----------
NETWORK_NAMES
    The 15 network names, in the spec's table order.
random_baselines_params(network, n_actions, rng, scale=0.1)
    A Baselines-format checkpoint dict of random float32 weights (plus optimizer slots).
reference_forward(network, params, obs)
    Forward pass: 'latent', 'logits', 'value', 'attention' (float64).

Helpers that are also public (and tested on their own): conv2d, upsample_ones, softplus,
softplus_base2, spatial_softmax, elu, is_optimizer_slot, param_count.
"""

from __future__ import annotations

import math

import numpy as np

NETWORK_NAMES: tuple[str, ...] = (
    "cnn",
    "cnn_daqn",
    "cnn_rsppo",
    "cnn_rsppo_nopad",
    "cnn_sparse_fls",
    "cnn_sparse_fls_pool",
    "cnn_sparse_fls_norm",
    "cnn_sparse_fls_1x1",
    "cnn_sparse_fls_sp2",
    "cnn_sparse_fls_norelu",
    "cnn_sparse_fls_norelu_pool",
    "cnn_sparse_fls_h1",
    "cnn_sparse_fls_x3",
    "cnn_dense_fls",
    "cnn_dense_fls_norelu",
)

PREFIX = "ppo2_model/pi/"

# Networks built on the 'sparse' (Nature CNN) block with a single FLS module after c3.
_SPARSE_FLS = {
    # name: (FLS kernel, base2, final ReLU on c3, head kind)
    "cnn_sparse_fls": (3, False, True, "flatten"),
    "cnn_sparse_fls_pool": (3, False, True, "pool"),
    "cnn_sparse_fls_norm": (3, False, True, "norm"),
    "cnn_sparse_fls_1x1": (1, False, True, "flatten"),
    "cnn_sparse_fls_sp2": (3, True, True, "flatten"),
    "cnn_sparse_fls_norelu": (3, False, False, "flatten"),
    "cnn_sparse_fls_norelu_pool": (3, False, False, "pool"),
}
_DENSE_FLS = {
    # name: final ReLU on c3
    "cnn_dense_fls": True,
    "cnn_dense_fls_norelu": False,
}

# Conv layer specs: (name, out channels, kernel, stride, padding)
_SPARSE_CONVS = (("c1", 32, 8, 4, "VALID"), ("c2", 64, 4, 2, "VALID"), ("c3", 64, 3, 1, "VALID"))
_DENSE_CONVS = (("c1", 32, 7, 1, "SAME"), ("c2", 64, 5, 1, "SAME"), ("c3", 64, 3, 1, "SAME"))


# ---------------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------------


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: str) -> np.ndarray:
    """2-D convolution (cross-correlation, as TF's conv2d) in NHWC with HWIO weights.

    x: (B, H, W, C); w: (k, k, C, O); b: anything with O elements (e.g. [1, O, 1, 1]) or None.
    padding: 'VALID' (none) or 'SAME' (k // 2 zeros on every side; the spec only uses odd k
    with stride 1 for SAME, where this equals TF's SAME).
    Computed as a sum over the k*k kernel offsets of strided-slice @ w[i, j], in float64.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    kh, kw, cin, cout = w.shape
    if x.shape[-1] != cin:
        raise ValueError(f"conv2d: input has {x.shape[-1]} channels, weight expects {cin}")
    if padding == "SAME":
        ph, pw = kh // 2, kw // 2
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    elif padding != "VALID":
        raise ValueError(f"unknown padding {padding!r}")
    bsz, hp, wp, _ = x.shape
    ho = (hp - kh) // stride + 1
    wo = (wp - kw) // stride + 1
    out = np.zeros((bsz, ho, wo, cout), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            out += patch @ w[i, j]
    if b is not None:
        out += np.asarray(b, dtype=np.float64).reshape(cout)
    return out


def upsample_ones(a: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Transposed convolution of (B, h, w) maps with an all-ones k x k kernel, no padding,
    no output padding: output (B, (h-1)*stride + k, (w-1)*stride + k).
    Written as an explicit scatter-add."""
    a = np.asarray(a, dtype=np.float64)
    bsz, h, w = a.shape
    out = np.zeros((bsz, (h - 1) * stride + k, (w - 1) * stride + k), dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[:, i * stride : i * stride + k, j * stride : j * stride + k] += a[:, i, j][:, None, None]
    return out


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)), computed stably."""
    return np.logaddexp(0.0, z)


def softplus_base2(z: np.ndarray) -> np.ndarray:
    """softplus(z * ln 2) / ln 2 = log2(1 + 2**z)."""
    ln2 = math.log(2.0)
    return softplus(z * ln2) / ln2


def spatial_softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the spatial positions of (B, H, W, C), separately per batch item and channel."""
    bsz, h, w, c = z.shape
    flat = z.reshape(bsz, h * w, c)
    flat = flat - flat.max(axis=1, keepdims=True)
    e = np.exp(flat)
    return (e / e.sum(axis=1, keepdims=True)).reshape(bsz, h, w, c)


def is_optimizer_slot(name: str) -> bool:
    return "/Adam" in name or "beta1_power" in name or "beta2_power" in name


def param_count(params: dict[str, np.ndarray]) -> int:
    """Total number of model parameters (optimizer slots excluded)."""
    return int(sum(np.asarray(v).size for k, v in params.items() if not is_optimizer_slot(k)))


# ---------------------------------------------------------------------------------------------
# parameter layout
# ---------------------------------------------------------------------------------------------


def _layout(network: str, n_actions: int) -> list[tuple[str, str, tuple[int, ...], float]]:
    """List of (kind, name, shape, gain) in a fixed order. kind: 'conv' or 'dense'.
    The gain is only used by random_baselines_params (weights ~ N(0,1) * gain / sqrt(fan_in))."""
    if network not in NETWORK_NAMES:
        raise ValueError(f"unknown network {network!r}")
    r2 = math.sqrt(2.0)
    L: list[tuple[str, str, tuple[int, ...], float]] = []

    def conv(name, cin, cout, k, gain=r2):
        L.append(("conv", name, (k, k, cin, cout), gain))

    def fls(scope, cin, k, gain2=1.0):
        conv(scope + "h1", cin, 256, k)
        conv(scope + "h2", 256, 1, k, gain2)

    convs = _DENSE_CONVS if network in _DENSE_FLS else _SPARSE_CONVS
    cin = 4
    for name, cout, k, _s, _p in convs:
        conv(name, cin, cout, k)
        if network == "cnn_sparse_fls_h1" and name == "c1":
            fls("h1/", cout, 3)
        if network == "cnn_sparse_fls_x3":
            fls({"c1": "h1/", "c2": "h2/", "c3": "h3/"}[name], cout, 3)
        cin = cout

    fc_in = 7 * 7 * 64
    fc_gain = r2
    if network == "cnn_daqn":
        conv("h1", 64, 256, 1, 1.0)
        conv("h2", 256, 1, 1, 3.0)
        fc_in = 64
    elif network in ("cnn_rsppo", "cnn_rsppo_nopad"):
        # features are unit-norm over 64 channels, so boost h1 to get O(1) pre-activations;
        # features x A is ~1/(8 * 24.5) of a plain ReLU feature, so boost fc1 accordingly.
        conv("h1", 64, 512, 1, 8.0)
        conv("h2", 512, 2, 1, 2.0)
        fc_gain = r2 * 60.0
    elif network in _SPARSE_FLS:
        k, _base2, _fr, head = _SPARSE_FLS[network]
        fls("", 64, k)
        if head == "pool":
            fc_in = 64
            fc_gain = r2 / 20.0  # sum over 49 positions of feature x A
        elif head == "norm":
            fc_gain = r2 * 30.0  # A ~ 1/49 per position
    elif network in _DENSE_FLS:
        fls("", 64, 3)
        fc_in = 64
        fc_gain = r2 / 3000.0  # sum over 7056 positions of feature x A
    if network == "cnn_sparse_fls_x3":
        fc_gain = r2 * 3.0  # three maps of ~0.7 multiplied in along the way
    L.append(("dense", "fc1", (fc_in, 512), fc_gain))
    return L


def random_baselines_params(
    network: str, n_actions: int, rng: np.random.Generator, scale: float = 0.1
) -> dict[str, np.ndarray]:
    """A Baselines-format checkpoint dict of random float32 weights for `network`.

    Weights: N(0, 1) * gain / sqrt(fan_in) (gain chosen per layer so activations stay O(1)
    for random uint8 observations); every bias: N(0, 1) * `scale` (non-zero on purpose).
    Conv weights [k, k, in, out], conv biases [1, out, 1, 1]; dense weights [in, out], biases [out].
    Heads: 'ppo2_model/pi/w:0' [512, n_actions], 'ppo2_model/pi/b:0' [n_actions],
    'ppo2_model/vf/w:0' [512, 1], 'ppo2_model/vf/b:0' [1].
    Also holds optimizer slots ('.../Adam:0', '.../Adam_1:0', 'beta1_power:0', 'beta2_power:0')
    that a loader must ignore (filled with garbage values).
    """
    params: dict[str, np.ndarray] = {}

    def weight(shape, gain):
        fan_in = int(np.prod(shape[:-1]))
        return (rng.standard_normal(shape) * (gain / math.sqrt(fan_in))).astype(np.float32)

    def bias(n):
        return (rng.standard_normal(n) * scale).astype(np.float32)

    for kind, name, shape, gain in _layout(network, n_actions):
        params[PREFIX + name + "/w:0"] = weight(shape, gain)
        cout = shape[-1]
        params[PREFIX + name + "/b:0"] = bias(cout).reshape((1, cout, 1, 1) if kind == "conv" else (cout,))
    # heads: logits of order 1, value of order 1
    params[PREFIX + "w:0"] = weight((512, n_actions), 1.0)
    params[PREFIX + "b:0"] = bias(n_actions)
    params["ppo2_model/vf/w:0"] = weight((512, 1), 1.0)
    params["ppo2_model/vf/b:0"] = bias(1)
    # optimizer slots, to be ignored by any loader
    c1w = PREFIX + "c1/w:0"
    params[PREFIX + "c1/w/Adam:0"] = (rng.standard_normal(params[c1w].shape) * 100.0).astype(np.float32)
    params[PREFIX + "c1/w/Adam_1:0"] = np.abs(rng.standard_normal(params[c1w].shape) * 100.0).astype(np.float32)
    params["ppo2_model/vf/w/Adam:0"] = np.full((512, 1), 7.0, dtype=np.float32)
    params["beta1_power:0"] = np.asarray(0.9**3, dtype=np.float32)
    params["beta2_power:0"] = np.asarray(0.999**3, dtype=np.float32)
    return params


# ---------------------------------------------------------------------------------------------
# forward pass
# ---------------------------------------------------------------------------------------------


def reference_forward(network: str, params: dict[str, np.ndarray], obs: np.ndarray) -> dict[str, np.ndarray]:
    """Forward pass of `network` with Baselines-format `params` on obs (B, 84, 84, 4) uint8 NHWC.

    Returns float64 arrays: 'latent' (B, 512) after fc1 + ReLU, 'logits' (B, n_actions),
    'value' (B,), 'attention' (B, H, W), the map on its own grid (7x7 all-zero for cnn; 20x20
    for h1 / x3, x3 being A1 + up(A2) + up(A3); 84x84 for dense; the sum of the two softmax maps
    for rsppo; the normalised map for fls_norm).
    """
    if network not in NETWORK_NAMES:
        raise ValueError(f"unknown network {network!r}")
    obs = np.asarray(obs)
    if obs.ndim != 4 or obs.shape[1:] != (84, 84, 4):
        raise ValueError(f"obs must be (B, 84, 84, 4), got {obs.shape}")

    def P(name):
        return np.asarray(params[PREFIX + name], dtype=np.float64)

    def cv(x, name, stride, padding):
        return conv2d(x, P(name + "/w:0"), P(name + "/b:0"), stride, padding)

    def fls(x, scope, k, base2=False):
        h = relu(cv(x, scope + "h1", 1, "SAME"))
        z = cv(h, scope + "h2", 1, "SAME")
        a = softplus_base2(z) if base2 else softplus(z)
        return a[..., 0]  # (B, H, W)

    # True division of float32(obs) by 255 (in float32, as the original), then up to float64.
    x = (obs.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    bsz = x.shape[0]

    def flatten(f):  # NHWC order: (row, column, channel)
        return f.reshape(bsz, -1)

    def pool(f, a):  # weighted sum-pool over positions
        return np.einsum("bhwc,bhw->bc", f, a)

    if network in _DENSE_FLS:
        f = x
        for i, (name, _c, _k, s, p) in enumerate(_DENSE_CONVS):
            f = cv(f, name, s, p)
            if i < 2 or _DENSE_FLS[network]:
                f = relu(f)
        att = fls(f, "", 3)
        h = pool(f, att)

    elif network in ("cnn_sparse_fls_h1", "cnn_sparse_fls_x3"):
        x3 = network == "cnn_sparse_fls_x3"
        f = x
        maps = []
        for name, _c, _k, s, p in _SPARSE_CONVS:
            f = relu(cv(f, name, s, p))
            scope = {"c1": "h1/", "c2": "h2/", "c3": "h3/"}[name]
            if name == "c1" or x3:
                a = fls(f, scope, 3)
                f = f * a[..., None]
                maps.append(a)
        h = flatten(f)
        if x3:
            att = maps[0] + upsample_ones(maps[1], 4, 2) + upsample_ones(maps[2], 8, 2)
        else:
            att = maps[0]

    else:
        # sparse block variants
        f = x
        if network == "cnn_rsppo":
            f = np.pad(f, ((0, 0), (1, 1), (1, 1), (0, 0)))
        final_relu = not (network in _SPARSE_FLS and not _SPARSE_FLS[network][2])
        for i, (name, _c, _k, s, p) in enumerate(_SPARSE_CONVS):
            f = cv(f, name, s, p)
            if i < 2 or final_relu:
                f = relu(f)

        if network == "cnn":
            att = np.zeros((bsz, 7, 7), dtype=np.float64)
            h = flatten(f)
        elif network == "cnn_daqn":
            a1 = np.tanh(cv(f, "h1", 1, "VALID"))
            z = cv(a1, "h2", 1, "VALID")
            att = spatial_softmax(z)[..., 0]
            h = pool(f, att)
        elif network in ("cnn_rsppo", "cnn_rsppo_nopad"):
            sq = np.sum(f * f, axis=-1, keepdims=True)
            f = f * (1.0 / np.sqrt(np.maximum(sq, 1e-12)))
            a1 = elu(cv(f, "h1", 1, "VALID"))
            z = cv(a1, "h2", 1, "VALID")  # (B, 7, 7, 2)
            att = spatial_softmax(z).sum(axis=-1)
            h = flatten(f * att[..., None])
        else:
            k, base2, _fr, head = _SPARSE_FLS[network]
            att = fls(f, "", k, base2)
            if head == "norm":
                att = att / att.reshape(bsz, -1).sum(axis=1)[:, None, None]
            if head == "pool":
                h = pool(f, att)
            else:
                h = flatten(f * att[..., None])

    latent = relu(h @ P("fc1/w:0") + P("fc1/b:0"))
    logits = latent @ P("w:0") + P("b:0")
    value = (latent @ np.asarray(params["ppo2_model/vf/w:0"], dtype=np.float64)
             + np.asarray(params["ppo2_model/vf/b:0"], dtype=np.float64))[:, 0]
    return {"latent": latent, "logits": logits, "value": value, "attention": att}
