"""``attention``: the network's own map (zero for ``cnn``, which has none), rendered onto 84x84 as
fl_saliency/agents/attention_maps.py does for every other use of it."""

from __future__ import annotations

import torch

from fl_saliency.agents.attention_maps import render_input
from fl_saliency.common.errors import FlSaliencyError


def require_attention(model) -> None:
    """One line unless the model has attention of its own (a grid and its geometry on the input)."""
    if getattr(model, "geometry", None) is None:
        raise FlSaliencyError(f"the attention method needs a network with attention of its own, which the "
                              f"{model.source.library} {model.source.algorithm} agent lacks; choose a post-hoc method")


@torch.no_grad()
def network_attention(model, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 84, 84): each cell of the network's grid map spread over its receptive field; ``actions`` unused."""
    require_attention(model)
    return render_input(model(obs)[2], model.geometry)
