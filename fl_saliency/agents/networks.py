"""The fifteen feature extractors of the paper and the actor-critic that sits on them.

Each extractor maps a uint8 stack of 4 frames (B, 4, 84, 84) to the 512-d latent that both
heads read and to its attention map on its own grid (B, H, W). Layer names mirror the
TensorFlow scopes of the original (``c1``, ``h1``, ``fc1``, ...) so that checkpoint.py can
translate names mechanically; see ``docs/spec/networks.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fl_saliency.common.errors import FlSaliencyError

LATENT_SIZE = 512
SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class AttentionGeometry:
    """How a map on the feature grid spreads over the 84x84 input (docs/spec/networks.md, "Rendering")."""

    grid: int
    receptive_field: int
    stride: int
    padding: int


SPARSE_GEOMETRY = AttentionGeometry(grid=7, receptive_field=36, stride=8, padding=0)
FIRST_LAYER_GEOMETRY = AttentionGeometry(grid=20, receptive_field=8, stride=4, padding=0)
DENSE_GEOMETRY = AttentionGeometry(grid=84, receptive_field=13, stride=1, padding=6)


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, same: bool = False) -> nn.Conv2d:
    """A convolution as Baselines builds it: VALID, or SAME with k // 2 on each side (k is odd)."""
    if same and kernel % 2 == 0:
        raise ValueError("SAME padding here is only defined for odd kernels")
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2 if same else 0)


def scale_observation(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [0, 1], channels-last in memory."""
    if obs.dtype != torch.uint8:
        raise FlSaliencyError(f"observations must be uint8 frames, got {obs.dtype}")
    # A true division, as the original: float32(x) * (1/255) differs in the last bit. Channels-last
    # memory (the values and their NCHW indexing are unchanged) makes CPU convolutions ~1.5x faster;
    # rearranging the uint8 bytes before converting halves the cost of a whole rollout's scaling.
    return obs.contiguous(memory_format=torch.channels_last).float().div_(255.0)


def flatten_nhwc(x: torch.Tensor) -> torch.Tensor:
    """Flatten in Baselines' (row, column, channel) order so fc1 weights import one to one."""
    return x.permute(0, 2, 3, 1).flatten(1)


def weighted_sum_pool(features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Per channel, the sum over positions of feature x attention: (B,C,H,W), (B,H,W) -> (B,C)."""
    return torch.einsum("bchw,bhw->bc", features, attention)


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over all positions, separately per channel: (B,C,H,W) -> (B,C,H,W)."""
    b, c, h, w = logits.shape
    return torch.softmax(logits.reshape(b, c, h * w), dim=2).reshape(b, c, h, w)


class Dense(nn.Module):
    """A fully connected layer with its weight stored (in, out), TensorFlow's layout (checkpoints import
    it as is). For the 4-16 rows of an acting batch, x @ W ran 1.4-2.3x as fast as the x @ W.T of
    nn.Linear's (out, in) weight on an Intel Xeon with AMX, 0.85-0.9x as fast on an AMD EPYC (Zen 4);
    training, the same on both (benchmarks/dense_layout.py)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight)


class ConvBlock(nn.Module):
    """Three convolutions c1, c2, c3 with ReLUs; the last ReLU optional (the ``_norelu`` networks)."""

    def __init__(self, c1: nn.Conv2d, c2: nn.Conv2d, c3: nn.Conv2d, final_relu: bool = True):
        super().__init__()
        self.c1, self.c2, self.c3 = c1, c2, c3
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = self.c3(x)
        return F.relu(x) if self.final_relu else x


def sparse_block(final_relu: bool = True) -> ConvBlock:
    """The Nature CNN: 84x84 -> 7x7x64."""
    return ConvBlock(conv(4, 32, 8, stride=4), conv(32, 64, 4, stride=2), conv(64, 64, 3, stride=1), final_relu)


def dense_block(final_relu: bool = True) -> ConvBlock:
    """Stride-1 SAME convolutions: 84x84 -> 84x84x64."""
    return ConvBlock(conv(4, 32, 7, same=True), conv(32, 64, 5, same=True), conv(64, 64, 3, same=True), final_relu)


def single_channel_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)[:, 0]`` for a SAME convolution with one output channel, computed as one 1x1 product
    per kernel position, shifted and summed: the same sum, about twice as fast forward and backward
    on a CPU, where oneDNN runs a single output channel at ~7 GMAC/s (a 256-channel one at ~100)."""
    k = conv.kernel_size[0]
    pad = k // 2
    weights = conv.weight[0].permute(1, 2, 0).reshape(k * k, -1, 1, 1)  # position (a, b) -> row a * k + b
    taps = F.pad(F.conv2d(x, weights), (pad, pad, pad, pad))
    h, w = x.shape[2:]
    return sum(taps[:, a * k + b, a : a + h, b : b + w] for a in range(k) for b in range(k)) + conv.bias


class FLS(nn.Module):
    """The free-lunch saliency module: a positive one-channel map (B,H,W) over its input's grid."""

    def __init__(self, in_channels: int, kernel: int = 3, base2: bool = False):
        super().__init__()
        self.h1 = conv(in_channels, 256, kernel, same=True)
        self.h2 = conv(256, 1, kernel, same=True)
        self.base2 = base2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = single_channel_conv(F.relu(self.h1(x)), self.h2)
        if self.base2:
            return F.softplus(z * math.log(2.0)) / math.log(2.0)
        return F.softplus(z)


class FeatureExtractor(nn.Module):
    """Base of the fifteen networks: ``forward(scale_observation(obs)) -> (latent (B,512), attention (B,H,W))``."""

    geometry: AttentionGeometry

    def __init__(self, fc_inputs: int):
        super().__init__()
        self.fc1 = Dense(fc_inputs, LATENT_SIZE)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(x))


class PlainCNN(FeatureExtractor):
    """``cnn``: the Nature CNN; its attention map is all zeros."""

    geometry = SPARSE_GEOMETRY

    def __init__(self):
        super().__init__(64 * 7 * 7)
        self.features = sparse_block()

    def forward(self, x):
        x = self.features(x)
        attention = x.new_zeros(x.shape[0], x.shape[2], x.shape[3])
        return self.latent(flatten_nhwc(x)), attention


class DAQN(FeatureExtractor):
    """``cnn_daqn``: tanh attention, softmax over the 49 positions, weighted sum-pool."""

    geometry = SPARSE_GEOMETRY

    def __init__(self):
        super().__init__(64)
        self.features = sparse_block()
        self.h1 = conv(64, 256, 1)
        self.h2 = conv(256, 1, 1)

    def forward(self, x):
        x = self.features(x)
        attention = spatial_softmax(self.h2(torch.tanh(self.h1(x))))[:, 0]
        return self.latent(weighted_sum_pool(x, attention)), attention


class RSPPO(FeatureExtractor):
    """``cnn_rsppo`` / ``cnn_rsppo_nopad``: L2-normalised features, two softmax maps summed."""

    geometry = SPARSE_GEOMETRY

    def __init__(self, pad: bool):
        super().__init__(64 * 7 * 7)
        self.features = sparse_block()
        self.h1 = conv(64, 512, 1)
        self.h2 = conv(512, 2, 1)
        self.pad = pad

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (1, 1, 1, 1))
        x = self.features(x)
        # tf.nn.l2_normalize clamps the squared norm; it does not add an epsilon.
        x = x * torch.rsqrt(x.square().sum(dim=1, keepdim=True).clamp_min(1e-12))
        attention = spatial_softmax(self.h2(F.elu(self.h1(x)))).sum(dim=1)
        return self.latent(flatten_nhwc(x * attention[:, None])), attention


class SparseFLS(FeatureExtractor):
    """The ``cnn_sparse_fls*`` family with one FLS module on the 7x7 features."""

    geometry = SPARSE_GEOMETRY

    def __init__(self, kernel: int = 3, base2: bool = False, final_relu: bool = True,
                 pool: bool = False, normalise: bool = False):
        super().__init__(64 if pool else 64 * 7 * 7)
        self.features = sparse_block(final_relu)
        self.fls = FLS(64, kernel, base2)
        self.pool = pool
        self.normalise = normalise

    def forward(self, x):
        x = self.features(x)
        attention = self.fls(x)
        if self.normalise:
            attention = attention / attention.sum(dim=(1, 2), keepdim=True)
        if self.pool:
            return self.latent(weighted_sum_pool(x, attention)), attention
        return self.latent(flatten_nhwc(x * attention[:, None])), attention


class DenseFLS(FeatureExtractor):
    """``cnn_dense_fls`` / ``_norelu``: FLS on 84x84 features, weighted sum-pool."""

    geometry = DENSE_GEOMETRY

    def __init__(self, final_relu: bool = True):
        super().__init__(64)
        self.features = dense_block(final_relu)
        self.fls = FLS(64)

    def forward(self, x):
        x = self.features(x)
        attention = self.fls(x)
        return self.latent(weighted_sum_pool(x, attention)), attention


def upsample_ones(attention: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Transposed convolution of (B,H,W) with an all-ones kernel, no padding."""
    ones = attention.new_ones(1, 1, kernel, kernel)
    return F.conv_transpose2d(attention[:, None], ones, stride=stride)[:, 0]


class LayerwiseFLS(FeatureExtractor):
    """``cnn_sparse_fls_h1`` (FLS after c1) and ``cnn_sparse_fls_x3`` (after each of c1, c2, c3).

    Each module has its own scope (``h1``, ``h2``, ``h3``, named after the conv it follows) and
    multiplies into that conv's ReLU output before the next layer.
    """

    geometry = FIRST_LAYER_GEOMETRY

    def __init__(self, all_layers: bool):
        super().__init__(64 * 7 * 7)
        self.c1 = conv(4, 32, 8, stride=4)
        self.c2 = conv(32, 64, 4, stride=2)
        self.c3 = conv(64, 64, 3, stride=1)
        self.h1 = FLS(32)
        if all_layers:
            self.h2 = FLS(64)
            self.h3 = FLS(64)
        self.all_layers = all_layers

    def forward(self, x):
        x = F.relu(self.c1(x))
        a1 = self.h1(x)
        x = F.relu(self.c2(x * a1[:, None]))
        if self.all_layers:
            a2 = self.h2(x)
            x = x * a2[:, None]
        x = F.relu(self.c3(x))
        attention = a1
        if self.all_layers:
            a3 = self.h3(x)
            x = x * a3[:, None]
            attention = a1 + upsample_ones(a2, 4, 2) + upsample_ones(a3, 8, 2)
        return self.latent(flatten_nhwc(x)), attention


NETWORKS: dict[str, Callable[[], FeatureExtractor]] = {
    "cnn": PlainCNN,
    "cnn_daqn": DAQN,
    "cnn_rsppo": lambda: RSPPO(pad=True),
    "cnn_rsppo_nopad": lambda: RSPPO(pad=False),
    "cnn_sparse_fls": SparseFLS,
    "cnn_sparse_fls_pool": lambda: SparseFLS(pool=True),
    "cnn_sparse_fls_norm": lambda: SparseFLS(normalise=True),
    "cnn_sparse_fls_1x1": lambda: SparseFLS(kernel=1),
    "cnn_sparse_fls_sp2": lambda: SparseFLS(base2=True),
    "cnn_sparse_fls_norelu": lambda: SparseFLS(final_relu=False),
    "cnn_sparse_fls_norelu_pool": lambda: SparseFLS(final_relu=False, pool=True),
    "cnn_sparse_fls_h1": lambda: LayerwiseFLS(all_layers=False),
    "cnn_sparse_fls_x3": lambda: LayerwiseFLS(all_layers=True),
    "cnn_dense_fls": DenseFLS,
    "cnn_dense_fls_norelu": lambda: DenseFLS(final_relu=False),
}


def check_network_name(name: str) -> str:
    if name not in NETWORKS:
        raise FlSaliencyError(f"unknown network {name!r}; choose one of: {', '.join(NETWORKS)}")
    return name


class ActorCritic(nn.Module):
    """A feature extractor with Baselines' policy (``pi``) and value (``vf``) heads on its latent."""

    def __init__(self, network: str, n_actions: int, initialise: bool = True):
        """``initialise=False`` skips Baselines' orthogonal init (seconds of QR) for weights about to be loaded."""
        super().__init__()
        self.network = check_network_name(network)
        self.n_actions = n_actions
        self.extractor = NETWORKS[network]()
        self.pi = Dense(LATENT_SIZE, n_actions)
        self.vf = Dense(LATENT_SIZE, 1)
        if initialise:
            self.reset_parameters()
        self.to(memory_format=torch.channels_last)

    @property
    def geometry(self) -> AttentionGeometry:
        return self.extractor.geometry

    def reset_parameters(self) -> None:
        """Baselines' init: orthogonal, gain sqrt(2) everywhere but the heads (0.01 and 1); zero biases."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, Dense)):
                gain = 0.01 if module is self.pi else 1.0 if module is self.vf else SQRT2
                nn.init.orthogonal_(module.weight, gain=gain)
                nn.init.zeros_(module.bias)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 (B,4,84,84) -> policy logits (B,A), value (B,), attention map (B,H,W)."""
        return self.forward_scaled(scale_observation(obs))

    def forward_scaled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same from ``scale_observation(obs)``: a PPO update scales its rollout once, not per epoch."""
        latent, attention = self.extractor(x)
        return self.pi(latent), self.vf(latent)[:, 0], attention


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
