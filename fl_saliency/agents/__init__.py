"""Agents from any library behind one interface (``Agent``): called on uint8 frames (N, 4, 84, 84),
an agent returns ``(scores (N, A), value (N,) or None, attention or None)``.

``load_agent(path)`` reads an experiment folder of this project, a Stable-Baselines3 zip, a
CleanRL state dict or a TorchScript file; ``agent_from_module`` wraps any module or callable.
"""

from fl_saliency.agents.base import Agent, AgentSource, check_action_count, check_observations
from fl_saliency.agents.experiment import ExperimentAgent, load_experiment_agent
from fl_saliency.agents.loader import agent_from_module, describe_agent, load_agent
from fl_saliency.agents.module import ModuleAgent, load_torchscript
from fl_saliency.agents.nature import NatureAgent

__all__ = ["Agent", "AgentSource", "ExperimentAgent", "ModuleAgent", "NatureAgent", "agent_from_module",
           "check_action_count", "check_observations", "describe_agent", "load_agent", "load_experiment_agent",
           "load_torchscript"]
