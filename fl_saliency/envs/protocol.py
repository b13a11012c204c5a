"""The emulation protocol of an environment id: the paper's v4, or v5 (Machado et al. 2018) as ale-py registers it.

v4 (``<Game>NoFrameskip-v4`` or a plain name; the default): no sticky actions, the minimal action
set, gym's v4 time limit of 400,000 emulator frames (SpaceInvaders: 300,000). v5 (``ALE/<Game>-v5``):
the settings of ale-py's registration, sticky actions with repeat_action_probability 0.25 and a cap
of 108,000 emulator frames (27,000 agent steps), the minimal action set. Both run the paper's
wrapper chain: the ALE steps one frame per ``act`` and MaxAndSkip(4) does the frameskip, so the ALE
applies the sticky actions frame by frame, exactly as ale-py's own frameskip loop does. Either
version may take another repeat_action_probability or the full action set (18 actions).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import parse_env_id, v5_id
from fl_saliency.common.settings import setting

VERSIONS = ("v4", "v5")


def repeat_action_probability_setting():
    return setting(None, min=0, max=1, help="sticky actions: the probability that the ALE repeats the previous "
                                            "action on a frame (default: 0.25 for ALE/<Game>-v5, 0 for v4 ids)")


def full_action_space_setting():
    return setting(False, help="all 18 Atari actions instead of the game's minimal action set")


@dataclass(frozen=True)
class Protocol:
    """The ALE settings of an environment; ``config.json`` records them under ``protocol``."""

    version: str
    repeat_action_probability: float
    full_action_space: bool
    max_episode_frames: int

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    def overridden(self, repeat_action_probability: float | None = None, full_action_space: bool = False) -> Protocol:
        """This protocol with another sticky-action probability (when one is given) or the full action set (when asked)."""
        sticky = self.repeat_action_probability if repeat_action_probability is None else repeat_action_probability
        return dataclasses.replace(self, repeat_action_probability=float(sticky),
                                   full_action_space=self.full_action_space or bool(full_action_space))


def v4_frame_limit(game: str) -> int:
    """gym's NoFrameskip-v4 registration: max_episode_steps = frameskip x 100,000 (SpaceInvaders' frameskip is 3)."""
    return 300_000 if game == "SpaceInvaders" else 400_000


def protocol_of(env_name: str, repeat_action_probability: float | None = None,
                full_action_space: bool = False) -> Protocol:
    """The protocol of an environment id, with another sticky-action probability or the full action set if asked."""
    game, version = parse_env_id(env_name)
    if version == "v4":
        default = Protocol("v4", 0.0, False, v4_frame_limit(game))
    else:
        import gymnasium

        registered = gymnasium.spec(v5_id(game)).kwargs
        default = Protocol("v5", float(registered["repeat_action_probability"]), registered["full_action_space"],
                           int(registered["max_num_frames_per_episode"]))
    return default.overridden(repeat_action_probability, full_action_space)


def protocol_of_config(config: dict) -> Protocol:
    """The protocol a config.json records; one without (older runs, the paper's models) ran its id's defaults."""
    recorded = config.get("protocol")
    if recorded is None:
        return protocol_of(config["env_name"])
    version = parse_env_id(config["env_name"])[1]
    try:
        protocol = Protocol(**recorded)
    except TypeError:
        raise FlSaliencyError(f"config.json: 'protocol' must hold {', '.join(f.name for f in dataclasses.fields(Protocol))}"
                              f", got {recorded!r}") from None
    if (protocol.version != version or not isinstance(protocol.full_action_space, bool)
            or not isinstance(protocol.repeat_action_probability, (int, float))
            or not 0 <= protocol.repeat_action_probability <= 1
            or not isinstance(protocol.max_episode_frames, int) or protocol.max_episode_frames < 1):
        raise FlSaliencyError(f"config.json: 'protocol' {recorded!r} is not a valid {version} protocol of "
                              f"{config['env_name']}")
    return protocol
