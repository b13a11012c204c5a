"""The agent a command runs on: ``--agent PATH`` (anything ``load_agent`` reads) or ``--experiment-dir DIR``
(this project's folders, as before agents existed), exactly one; and the game it plays: ``--env-name``,
else the one its file records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fl_saliency.agents.base import Agent, check_action_count
from fl_saliency.agents.cleanrl import CLEANRL_NETWORKS
from fl_saliency.agents.experiment import experiment_agent
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.settings import check_settings, setting

AGENT_HELP = ("the agent: an experiment folder or its model.pkl, a Stable-Baselines3 zip (PPO, A2C, DQN, QR-DQN "
              "with CnnPolicy), a CleanRL ppo_atari/dqn_atari state dict or a TorchScript file; instead of "
              "--experiment-dir")
ENV_NAME_HELP = "the agent's game (e.g. BreakoutNoFrameskip-v4), for agents whose file does not record it"


def experiment_dir_setting():
    """``--experiment-dir``: the way to name an agent before agents existed. Without a default, so that it keeps
    its place among the settings' positional fields in Python; None (``--agent`` instead) is allowed."""
    return setting(help="folder with model.pkl and config.json (ours or the paper's); or use --agent")


def agent_setting():
    """``--agent PATH``: any agent ``load_agent`` reads."""
    return setting(None, metavar="PATH", help=AGENT_HELP)


@dataclass
class AgentOptions:
    """What an agent file does not say about itself, for ``load_agent``; every command that takes ``--agent``
    has these flags."""

    cleanrl_network: str | None = setting(None, choices=CLEANRL_NETWORKS,
                                          help="a CleanRL state dict's network, where its keys do not say")
    sb3_images: str | None = setting(None, choices=("scaled", "raw"),
                                     help="an SB3 zip's image normalisation where its policy_kwargs cannot be read: "
                                          "scaled (/ 255, SB3's default) or raw")
    module_input: str = setting("pixels", choices=("pixels", "scaled"),
                                help="what a TorchScript module takes: float frames of 0-255 pixel values, or / 255")
    channels_last: bool = setting(False, help="a TorchScript module takes frames (N, 84, 84, 4)")

    def __post_init__(self):
        check_settings(self)

    def load_options(self) -> dict:
        """``load_agent``'s keyword arguments."""
        return {"network": self.cleanrl_network,
                "normalize_images": None if self.sb3_images is None else self.sb3_images == "scaled",
                "scaled_input": self.module_input == "scaled", "channels_last": self.channels_last}


def chosen_path(experiment_dir: Path | None, agent: Path | None) -> Path:
    """The one path given; one line unless exactly one of the two is."""
    if (experiment_dir is None) == (agent is None):
        raise FlSaliencyError("an agent is required: --agent PATH or --experiment-dir DIR"
                              if agent is None else "give --agent or --experiment-dir, not both")
    return Path(agent if agent is not None else experiment_dir)


def is_experiment(path: Path) -> bool:
    """An experiment folder or its model.pkl: this project's networks, with their config.json."""
    return path.is_dir() or (path.suffix == ".pkl" and path.is_file())


def load_chosen(path: Path, options: AgentOptions | None = None):
    """``(agent, experiment)`` for ``path``: an experiment folder (or its model.pkl) gives its ``ExperimentAgent``
    and its ``Experiment`` (config.json: game and protocol), any other agent file ``load_agent``'s agent (read
    with ``options``) and None."""
    from fl_saliency.agents.loader import load_agent

    if is_experiment(path):
        return experiment_agent(path if path.is_dir() else path.parent)
    return load_agent(path, **(options or AgentOptions()).load_options()), None


def game_of(agent: Agent, env_name: str | None) -> str:
    """The game an agent plays: ``env_name``, else the one its file records; one line where neither names one."""
    game = env_name or agent.source.env_name
    if not game:
        raise FlSaliencyError(f"{agent.source.path or 'the agent'} ({agent.source.library} {agent.source.algorithm}) "
                              "does not record its game; name it with --env-name (e.g. BreakoutNoFrameskip-v4)")
    return game


def scored_game(agent: Agent, env_name: str | None) -> str:
    """``game_of``, with the agent's action count checked against the game's minimal set, or the full set of 18
    (the frames scored do not depend on the action set): one line where it is neither."""
    game = game_of(agent, env_name)
    check_action_count(agent.n_actions, game, agent.source.path or "the agent", agent.n_actions == 18)
    return game


def agent_label(agent: Agent) -> str:
    """How messages name an agent: the network of this project's, else its library and algorithm."""
    if agent.source.library == "fl-saliency":
        return agent.source.network
    return f"{agent.source.library} {agent.source.algorithm}"
