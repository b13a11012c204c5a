"""CleanRL checkpoints: a state dict saved by ``torch.save(agent.state_dict(), path)`` from
``ppo_atari.py``'s ``Agent`` (``network`` = the Nature CNN as one ``nn.Sequential``, ``actor``,
``critic``) or ``dqn_atari.py``'s ``QNetwork`` (the Nature CNN and its Q head in one
``nn.Sequential``, ``network``). Both divide the uint8 frames by 255; the environment chain is
SB3's Atari wrappers with gymnasium's ``FrameStack(4)``: (4, 84, 84), oldest frame first.
"""

from __future__ import annotations

import torch

from fl_saliency.agents.base import AgentSource
from fl_saliency.agents.nature import NatureAgent, load_renamed, trunk_names
from fl_saliency.common.errors import FlSaliencyError

CLEANRL_NETWORKS = ("ppo_atari", "dqn_atari")
TRUNK_LAYERS = ("network.0", "network.2", "network.4", "network.7")
OBSERVATION = "uint8 (4, 84, 84) channels first (gymnasium FrameStack(4)), / 255"


def recognise_cleanrl(state: dict) -> str | None:
    """``"ppo_atari"``, ``"dqn_atari"`` or None, from a state dict's keys."""
    keys = set(state)
    trunk = {f"{layer}.{kind}" for layer in TRUNK_LAYERS for kind in ("weight", "bias")}
    if keys == trunk | {"actor.weight", "actor.bias", "critic.weight", "critic.bias"}:
        return "ppo_atari"
    if keys == trunk | {"network.9.weight", "network.9.bias"}:
        return "dqn_atari"
    return None


def cleanrl_agent(state: dict, what: str, network: str | None = None) -> NatureAgent:
    """The agent of a CleanRL state dict.

    Args:
        state: the tensors, as ``torch.load(path, weights_only=True)`` returns them.
        what: the file, for messages.
        network: ``"ppo_atari"`` or ``"dqn_atari"``; None recognises it from the keys.

    Returns:
        a ``NatureAgent``: ``ppo_atari`` with its logits and value, ``dqn_atari`` with its Q-values.

    Example:
        >>> state = torch.load("breakout_ppo.cleanrl_model", weights_only=True)  # doctest: +SKIP
        >>> agent = cleanrl_agent(state, "breakout_ppo.cleanrl_model")  # doctest: +SKIP
    """
    found = recognise_cleanrl(state)
    if network is not None and network not in CLEANRL_NETWORKS:
        raise FlSaliencyError(f"unknown CleanRL network {network!r}; choose from: {', '.join(CLEANRL_NETWORKS)}")
    network = network or found
    if network is None:
        keys = ", ".join(list(state)[:6]) + (", ..." if len(state) > 6 else "")
        raise FlSaliencyError(
            f"{what} is a state dict of an unknown layout (keys: {keys}); fl-saliency reads CleanRL's ppo_atari "
            "Agent (network.*, actor.*, critic.*) and dqn_atari QNetwork (network.0 to network.9)")
    head = "actor" if network == "ppo_atari" else "network.9"
    weight = state.get(f"{head}.weight")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise FlSaliencyError(f"{what} has no {head}.weight of CleanRL's {network}")
    ppo = network == "ppo_atari"
    agent = NatureAgent(weight.shape[0], AgentSource("cleanrl", "PPO" if ppo else "DQN", OBSERVATION, what, network),
                        value=ppo)
    names = {**trunk_names("", TRUNK_LAYERS), "scores.weight": f"{head}.weight", "scores.bias": f"{head}.bias"}
    if ppo:
        names.update({"value.weight": "critic.weight", "value.bias": "critic.bias"})
    return load_renamed(agent, state, names, what)
