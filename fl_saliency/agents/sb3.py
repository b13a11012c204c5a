"""Stable-Baselines3 / sb3-contrib models saved by ``model.save()``: PPO, A2C, DQN and QR-DQN with
``CnnPolicy``, read without importing either library and without unpickling anything.

The zip holds ``data`` (JSON; the entries SB3 could not write as JSON are base64 cloudpickle,
marked ``:serialized:``, and are never decoded here) and ``policy.pth`` (a state dict, read with
``torch.load(weights_only=True)``). The observation space's ``_shape`` and ``dtype`` and the
action space's ``n`` are plain JSON. SB3 trains an image policy on channels-first frames (its
``VecTransposeImage`` turns the ``VecFrameStack(4)`` (84, 84, 4) stack, oldest frame first,
into (4, 84, 84)) and divides them by 255 unless ``policy_kwargs`` says ``normalize_images=False``.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib

import torch

from fl_saliency.agents.base import OBSERVATION_SHAPE, AgentSource
from fl_saliency.agents.nature import NatureAgent, load_renamed, trunk_names
from fl_saliency.common.errors import FlSaliencyError

DATA, POLICY = "data", "policy.pth"
TRUNK_LAYERS = ("cnn.0", "cnn.2", "cnn.4", "linear.0")


def is_sb3_zip(names: list[str]) -> bool:
    return DATA in names and POLICY in names


def _plain(entry, key: str):
    """``entry[key]`` where SB3 wrote it as plain JSON (a serialized-only entry has no readable keys)."""
    return entry.get(key) if isinstance(entry, dict) else None


def read_sb3_zip(archive: zipfile.ZipFile, what: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The zip's ``data`` JSON and ``policy.pth`` state dict; one line where either is unreadable."""
    try:
        data = json.loads(archive.read(DATA))
        state = torch.load(io.BytesIO(archive.read(POLICY)), map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError) as exc:
        raise FlSaliencyError(f"{what} is a damaged Stable-Baselines3 zip ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # torch's weights-only unpickler refusing a global names it in its own error type
        raise FlSaliencyError(f"{what}: its {POLICY} is not a plain state dict ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(state, dict):
        raise FlSaliencyError(f"{what} is not a Stable-Baselines3 model zip (data or {POLICY} is not a mapping)")
    return data, state


def sb3_space(data: dict, what: str) -> tuple[int, bool]:
    """(action count, normalise images) from ``data``; one line unless it is a discrete-action
    image policy on uint8 (4, 84, 84) frames."""
    observation, action = data.get("observation_space"), data.get("action_space")
    shape, dtype = _plain(observation, "_shape"), _plain(observation, "dtype")
    if shape is None or tuple(shape) != OBSERVATION_SHAPE or dtype != "uint8":
        raise FlSaliencyError(
            f"{what} is not an Atari image policy: its observations are {dtype} {tuple(shape or ())}, "
            f"fl-saliency reads policies on uint8 (4, 84, 84) frames (SB3's CnnPolicy with VecFrameStack(n_stack=4))")
    if "Discrete" not in str(_plain(action, ":type:")) or not str(_plain(action, "n")).isdigit():
        raise FlSaliencyError(f"{what} does not have a discrete action space")
    kwargs = data.get("policy_kwargs") or {}
    # A policy_kwargs that SB3 had to pickle (an activation function, an optimizer class, ...) is not
    # read; SB3's default, normalize_images=True, applies, and load_agent(normalize_images=...) overrides it.
    normalise = kwargs.get("normalize_images", True) if ":serialized:" not in kwargs else True
    return int(_plain(action, "n")), bool(normalise)


def sb3_agent(archive: zipfile.ZipFile, what: str, normalize_images: bool | None = None) -> NatureAgent:
    """The agent of an SB3 zip (see the module's docstring).

    Args:
        archive: the open zip.
        what: its path, for messages.
        normalize_images: override what the zip says (or SB3's default) about dividing by 255.

    Returns:
        a ``NatureAgent``: PPO and A2C with their logits and value, DQN with its Q-values,
        QR-DQN with the mean of its quantiles.
    """
    data, state = read_sb3_zip(archive, what)
    n_actions, normalise = sb3_space(data, what)
    if normalize_images is not None:
        normalise = normalize_images
    scale = 255.0 if normalise else 1.0
    layout = "uint8 (4, 84, 84) channels first (SB3's VecTransposeImage of VecFrameStack(4))" + (
        ", / 255" if normalise else "")
    if any(name.startswith("mlp_extractor.") for name in state):
        raise FlSaliencyError(f"{what}: its policy has hidden layers after the CNN (net_arch), which fl-saliency "
                              "does not rebuild; only CnnPolicy's default (no net_arch) is read")
    if "action_net.weight" in state:
        algorithm = "PPO" if "clip_range" in data else "A2C"
        # Shared (SB3's default): the vf_ copies of features_extractor's tensors are the same tensors.
        separate = not all(torch.equal(t, state.get("vf_" + n, t)) for n, t in state.items()
                           if n.startswith("features_extractor."))
        agent = NatureAgent(n_actions, AgentSource("stable-baselines3", algorithm, layout, what, "NatureCNN"),
                            value=True, separate_value_trunk=separate, pixel_scale=scale)
        names = {**trunk_names("features_extractor.", TRUNK_LAYERS),
                 "scores.weight": "action_net.weight", "scores.bias": "action_net.bias",
                 "value.weight": "value_net.weight", "value.bias": "value_net.bias"}
        if separate:
            names.update(trunk_names("vf_features_extractor.", TRUNK_LAYERS, ours="value_trunk"))
        return load_renamed(agent, state, names, what)
    if "q_net.q_net.0.weight" in state or "quantile_net.quantile_net.0.weight" in state:
        quantile = "quantile_net.quantile_net.0.weight" in state
        net = "quantile_net" if quantile else "q_net"
        if f"{net}.{net}.2.weight" in state:  # net_arch's layers: Linear, ReLU, Linear, ...
            raise FlSaliencyError(f"{what}: its Q-network has hidden layers after the CNN (net_arch), which "
                                  "fl-saliency does not rebuild; only CnnPolicy's default (no net_arch) is read")
        outputs = state[f"{net}.{net}.0.weight"].shape[0]
        if outputs % n_actions:
            raise FlSaliencyError(f"{what}: its head has {outputs} outputs, not a multiple of its {n_actions} actions")
        source = AgentSource("sb3-contrib" if quantile else "stable-baselines3", "QR-DQN" if quantile else "DQN",
                             layout, what, "NatureCNN")
        agent = NatureAgent(n_actions, source, quantiles=outputs // n_actions if quantile else 0, pixel_scale=scale)
        names = {**trunk_names(f"{net}.features_extractor.", TRUNK_LAYERS),
                 "scores.weight": f"{net}.{net}.0.weight", "scores.bias": f"{net}.{net}.0.bias"}
        return load_renamed(agent, state, names, what)
    raise FlSaliencyError(f"{what}: its policy is none that fl-saliency reads (PPO, A2C, DQN or QR-DQN with "
                          f"CnnPolicy); its parameters begin {', '.join(list(state)[:3])}")
