"""``load_agent``: any agent file or folder fl-saliency reads, recognised from its contents."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch
from torch import nn

from fl_saliency.agents.base import Agent, check_action_count
from fl_saliency.agents.cleanrl import cleanrl_agent
from fl_saliency.agents.experiment import ExperimentAgent, load_experiment_agent
from fl_saliency.agents.module import ModuleAgent, load_torchscript
from fl_saliency.agents.sb3 import is_sb3_zip, sb3_agent
from fl_saliency.common.errors import FlSaliencyError

ZIP_MAGIC = b"PK\x03\x04"
KINDS = "an experiment folder, a Stable-Baselines3 zip, a CleanRL state dict or a TorchScript file"


def load_agent(path: str | os.PathLike, *, env_name: str | None = None, full_action_space: bool = False,
               network: str | None = None, normalize_images: bool | None = None,
               scaled_input: bool = False, channels_last: bool = False) -> Agent:
    """Load an agent from a file or folder, recognised from its contents.

    Args:
        path: one of: an experiment folder of this project or of the paper's released runs
            (``config.json`` + ``model.pkl``) or its ``model.pkl``; a Stable-Baselines3 / sb3-contrib ``.zip`` from
            ``model.save()`` (PPO, A2C, DQN, QR-DQN with ``CnnPolicy``); a CleanRL state dict
            (``torch.save(agent.state_dict(), path)`` of ``ppo_atari`` or ``dqn_atari``); a
            TorchScript file (``torch.jit.save``) mapping uint8 (N, 4, 84, 84) to action scores
            or (scores, value).
        env_name: the game the agent plays; when given, its action count must match the game's.
        full_action_space: check against all 18 actions rather than the game's minimal set.
        network: a CleanRL state dict's network, ``"ppo_atari"`` or ``"dqn_atari"``, where its
            keys do not say.
        normalize_images: an SB3 zip's image scaling where its ``policy_kwargs`` could not be read.
        scaled_input: a TorchScript module takes the frames divided by 255 (``ModuleAgent``'s option).
        channels_last: a TorchScript module takes (N, 84, 84, 4) (``ModuleAgent``'s option).

    Returns:
        an ``Agent`` on the CPU, in eval mode.

    Raises:
        FlSaliencyError: one line, for a missing, damaged or unknown file, a non-image policy, or
            an action count that is not the game's.

    Example:
        >>> import os, tempfile, torch
        >>> from fl_saliency import load_agent
        >>> net = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 4)))
        >>> path = os.path.join(tempfile.mkdtemp(), "breakout.pt")
        >>> torch.jit.save(net, path)
        >>> agent = load_agent(path, env_name="BreakoutNoFrameskip-v4")
        >>> scores, value, attention = agent(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
        >>> tuple(scores.shape), value, agent.source.library
        ((2, 4), None, 'torchscript')
    """
    path = Path(path)
    what = str(path)
    if path.is_dir():
        return load_experiment_agent(path, env_name)
    if path.suffix == ".pkl" and path.is_file():  # a model.pkl: the experiment folder it lies in
        return load_experiment_agent(path.parent, env_name)
    if not path.is_file():
        if not os.path.lexists(path):
            raise FlSaliencyError(f"agent not found: {path}")
        from fl_saliency.agents.checkpoint import open_regular

        open_regular(path, "checkpoint").close()  # says what it is instead: a loop, a FIFO, a device
    agent = _load_file(path, what, network, normalize_images, scaled_input, channels_last)
    check_action_count(agent.n_actions, env_name, what, full_action_space)
    return agent


def _load_file(path: Path, what: str, network, normalize_images, scaled_input, channels_last) -> Agent:
    from fl_saliency.agents.checkpoint import open_regular

    with open_regular(path, "agent") as file:  # an unreadable file is one line too
        magic = file.read(4)
    if magic == ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if is_sb3_zip(names):
                    return sb3_agent(archive, what, normalize_images)
        except zipfile.BadZipFile as exc:
            raise FlSaliencyError(f"{what} is a damaged zip file, truncated or corrupt ({exc})") from None
        # torch.save and torch.jit.save both write zips; only TorchScript's hold code.
        if any("/code/" in name for name in names):
            return load_torchscript(what, scaled_input=scaled_input, channels_last=channels_last)
    if magic[:1] != b"\x80" and magic != ZIP_MAGIC:  # neither a (legacy) torch pickle nor a zip
        raise FlSaliencyError(f"{what} is not an agent fl-saliency reads ({KINDS}): it is neither a zip nor a file "
                              "of torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights-only refusals differ by torch version; all mean "not ours"
        raise FlSaliencyError(f"{what} is not an agent fl-saliency reads ({KINDS}): "
                              f"{str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise FlSaliencyError(f"{what} is not a state dict of tensors ({KINDS}); save a CleanRL agent with "
                              "torch.save(agent.state_dict(), path)")
    return cleanrl_agent(state, what, network)


def agent_from_module(module: nn.Module | Agent, **options: bool) -> Agent:
    """Any torch module or callable as an agent; an ``Agent`` is returned as it is.

    Args:
        module: an ``Agent``; one of this project's ``ActorCritic`` networks; or a module or callable
            mapping frames (N, 4, 84, 84) to action scores (N, A) or to (scores, value, ...).
        **options: ``scaled_input`` and ``channels_last`` for a plain module (see ``ModuleAgent``).

    Returns:
        the ``Agent``.

    Example:
        >>> import torch
        >>> agent = agent_from_module(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 18)))
        >>> agent.n_actions
        18
    """
    from fl_saliency.agents.networks import ActorCritic

    if isinstance(module, Agent):
        return module
    if isinstance(module, ActorCritic):
        return ExperimentAgent(module)
    return ModuleAgent(module, **options)


def describe_agent(path: str | os.PathLike, **options) -> dict:
    """What an agent file is, for ``inspect``: ``load_agent(path, **options).describe()``.

    Returns:
        a dict with ``library``, ``algorithm``, ``network``, ``path``, ``env_name``,
        ``observation``, ``n_actions``, ``scores_kind``, ``has_value``, ``has_attention``.

    Example:
        >>> describe_agent("breakout_dqn.zip")["algorithm"]  # doctest: +SKIP
        'DQN'
    """
    return load_agent(path, **options).describe()
