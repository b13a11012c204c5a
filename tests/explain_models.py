"""Tiny models with closed-form saliency for the explain tests: they have the one method the
explain functions call, ``forward_scaled(x) -> (logits, value, attention)``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fl_saliency.agents.networks import sparse_block


class Linear(nn.Module):
    """logits = W x, value = v x: d logit_a / dx = W_a everywhere."""

    def __init__(self, n_actions: int = 3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(n_actions, 4 * 84 * 84, generator=g) / 100
        self.v = torch.randn(4 * 84 * 84, generator=g) / 100

    def forward_scaled(self, x):
        flat = x.flatten(1)
        return flat @ self.w.T, flat @ self.v, x.new_zeros(len(x), 7, 7)


class Quadratic(Linear):
    """logit_a = sum_i W_ai x_i^2: integrated gradients from 0 in m right Riemann steps = W_a x^2 (m + 1) / m."""

    def forward_scaled(self, x):
        return super().forward_scaled(x.square())


class ConvThenLinear(nn.Module):
    """The Nature CNN's convolutions, then logits linear in the rectified c3 output ReLU(Z):
    d logit_a / dZ = V_a [Z > 0], so Grad-CAM on c3 = ReLU(sum_k mean(V_ak [Z_k > 0]) Z_k)."""

    network = "conv_then_linear"

    def __init__(self, n_actions: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.extractor = nn.Module()
        self.extractor.features = sparse_block()
        self.v = torch.randn(n_actions, 64, 7, 7)

    def forward_scaled(self, x):
        a = self.extractor.features(x)
        return torch.einsum("bkhw,akhw->ba", a, self.v), a.sum((1, 2, 3)), a[:, 0]


@pytest.fixture(autouse=True)
def one_thread():
    """Single-sample forward passes on a loaded 2-core machine run ~10x slower with 2 torch threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
