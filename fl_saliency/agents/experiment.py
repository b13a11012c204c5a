"""This project's networks as agents: an experiment folder (``config.json`` + ``model.pkl``, ours
or the paper's released runs) or an ``ActorCritic`` in memory."""

from __future__ import annotations

import os

import torch
from torch import nn

from fl_saliency.agents.base import Agent, AgentSource, check_action_count
from fl_saliency.agents.networks import ActorCritic

OBSERVATION = "uint8 (4, 84, 84) channels first, / 255"


def actor_critic_last_conv(model: ActorCritic) -> nn.Conv2d | None:
    """The last convolution ``c3`` of one of the 15 networks (the FLS ones keep theirs in ``features``)."""
    extractor = model.extractor
    layer = getattr(getattr(extractor, "features", extractor), "c3", None)
    return layer if isinstance(layer, nn.Conv2d) else None


class ExperimentAgent(Agent):
    """One of the 15 networks with its policy and value heads; its attention is the network's own.

    Args:
        model: the ``ActorCritic``; its outputs are passed through unchanged.
        source: where it came from.

    Example:
        >>> from fl_saliency.agents.networks import ActorCritic
        >>> agent = ExperimentAgent(ActorCritic("cnn_sparse_fls", 4))
        >>> agent.n_actions, agent.has_value, agent.has_attention
        (4, True, True)
    """

    has_value = True
    scores_kind = "logits"

    def __init__(self, model: ActorCritic, source: AgentSource | None = None):
        super().__init__()
        self.model = model
        self.n_actions = model.n_actions
        self.geometry = model.geometry
        self.source = source or AgentSource("fl-saliency", "PPO", OBSERVATION, network=model.network)

    @property
    def network(self) -> str:
        return self.model.network

    @property
    def has_attention(self) -> bool:
        # ``cnn`` returns an all-zero map (the explain method keeps scoring it), but it has no attention.
        return self.model.network != "cnn"

    @property
    def last_conv(self) -> nn.Conv2d | None:
        return actor_critic_last_conv(self.model)

    @property
    def torch_module(self) -> nn.Module:
        return self.model

    def forward(self, obs: torch.Tensor):
        return self.model(obs)

    def forward_scaled(self, x: torch.Tensor):
        return self.model.forward_scaled(x)


def experiment_agent(experiment_dir: str | os.PathLike) -> tuple[ExperimentAgent, object]:
    """An experiment folder's network as an agent, with its ``Experiment`` (config.json: game and protocol)."""
    from fl_saliency.agents.checkpoint import load_model

    model, experiment = load_model(experiment_dir)
    return ExperimentAgent(model, AgentSource("fl-saliency", "PPO", OBSERVATION, str(experiment_dir),
                                              experiment.network, experiment.env_name)), experiment


def load_experiment_agent(experiment_dir: str | os.PathLike, env_name: str | None = None) -> ExperimentAgent:
    """An experiment folder's network as an agent (fl_saliency.agents.checkpoint's loader, the same checks).

    Args:
        experiment_dir: a folder with ``config.json`` and ``model.pkl``.
        env_name: when given, the game the agent must fit (its action count is checked).

    Returns:
        the ``ExperimentAgent`` on the CPU.

    Example:
        >>> agent = load_experiment_agent("runs/breakout_cnn_sparse_fls")  # doctest: +SKIP
    """
    agent, _ = experiment_agent(experiment_dir)
    check_action_count(agent.n_actions, env_name, str(experiment_dir))
    return agent
