"""Is a saliency map faithful to the agent it explains? Two checks, for any method of fl_saliency.methods.

- Deletion and insertion AUC (Petsiuk et al. 2018, "RISE", section 4.2): the input's pixels are
  changed in the map's order, most salient first (ties by pixel index), ``STEP`` = 84 pixels a
  step (84 steps, 85 points from 0 to all 7056 pixels), the same pixels in all four stacked frames.
  Deletion starts from the observation and replaces pixels by their blurred version; insertion
  starts from the blurred observation and restores pixels. The blur is a Gaussian of sigma 5
  (RISE's insertion blur, ``gkern(11, 5)``; here scipy's ``gaussian_filter``, radius 4 sigma,
  each frame on its own). The curve follows the softmax of the agent's action scores (a policy's
  probabilities; for a Q-network, the softmax of its Q-values) at the action the map explains
  (the highest-scoring one on the original observation); its AUC is the trapezoid over
  the fraction of pixels changed. A faithful map has a low deletion and a high insertion AUC.
- Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"):
  the layers with parameters are re-initialised cascading from the top (the heads, then the
  extractor's layers from last to first), each with the weights the network's own initialisation
  draws (fixed seed; for agents of other libraries, each layer's ``reset_parameters()``, PyTorch's
  default initialisation; not for TorchScript agents, whose layers forward hooks do not see);
  after each layer every method's maps of the same observations (explaining the same actions)
  are compared to the original maps by Spearman's rank correlation. A method
  whose mean correlation is still above ``RANDOMISATION_THRESHOLD`` = 0.9 once all layers are
  randomised barely depends on the model, and is flagged. Not 0.5: on an untrained ``cnn`` and
  random inputs, ``gradient`` keeps a correlation of 0.60 and ``integrated-gradients`` 0.55 after
  every layer is re-drawn (their drop comes with the policy head, the convolutions change little
  more), a similarity shared by any two weight draws of the architecture, not a failure to depend
  on the weights; a map that copies the input keeps 1.0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from fl_saliency.common.rundir import FAITHFULNESS_FILE
from fl_saliency.agents.choice import AgentOptions, chosen_path, load_chosen, scored_game
from fl_saliency.agents.experiment import ExperimentAgent
from fl_saliency.agents.networks import ActorCritic, scale_observation
from fl_saliency.common.device import device_setting, resolve_device
from fl_saliency.common.errors import FlSaliencyError, warn
from fl_saliency.common.io import atomic_write_json, locked_output_dir
from fl_saliency.common.settings import check_settings, same_as, setting
from fl_saliency.envs.games import parse_game
from fl_saliency.methods import METHODS, check_agent_methods, check_methods, greedy_actions
from fl_saliency.methods.perturbation import gaussian_filter
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset, DatasetError
from fl_saliency.scoring.atari_head.env import agent_observations
from fl_saliency.scoring.benchmark import SaliencySettings
from fl_saliency.scoring.gaze_metrics import bootstrap_ci, nanmean_std_count

STEP = 84
BLUR_SIGMA = 5.0
RANDOMISATION_THRESHOLD = 0.9
RANDOMISATION_SEED = 2018  # not 0: a model initialised with seed 0 and never trained would be re-drawn as itself
PERTURBED_INPUTS_PER_PASS = 256


def changed_masks(maps: torch.Tensor, step: int = STEP) -> torch.Tensor:
    """(N, S+1, H*W) bool: at point k, the first min(k*step, H*W) pixels of the map's order
    (descending saliency, ties by pixel index) are changed; S = ceil(H*W / step)."""
    flat = maps.flatten(1)
    pixels = flat.shape[1]
    order = torch.sort(-flat.float(), dim=1, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels, device=flat.device).expand_as(order))
    counts = torch.arange(math.ceil(pixels / step) + 1, device=flat.device).mul(step).clamp(max=pixels)
    return rank[:, None, :] < counts[None, :, None]


def fractions(pixels: int = 84 * 84, step: int = STEP) -> np.ndarray:
    """The fraction of pixels changed at each point of the curves."""
    return np.minimum(np.arange(math.ceil(pixels / step) + 1) * step, pixels) / pixels


def action_probabilities(model, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The policy's probability of ``actions`` on scaled inputs ``x``, in forward passes of PERTURBED_INPUTS_PER_PASS."""
    n = PERTURBED_INPUTS_PER_PASS
    probs = [torch.softmax(model.forward_scaled(x[i : i + n])[0], dim=1) for i in range(0, len(x), n)]
    return torch.cat(probs).gather(1, actions[:, None])[:, 0]


def deletion_insertion_curves(model, obs: torch.Tensor, actions: torch.Tensor, maps: torch.Tensor,
                              step: int = STEP, sigma: float = BLUR_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion): each (N, S+1) float64, the probability of ``actions`` as pixels change."""
    x = scale_observation(obs)
    blurred = gaussian_filter(x, sigma)
    masks = changed_masks(maps.to(x.device), step)
    deletion, insertion = [], []
    with torch.no_grad():
        for n in range(len(x)):
            m = masks[n].view(-1, 1, *x.shape[-2:]).to(x.dtype)  # (S+1, 1, H, W): the same pixels in every frame
            deleted = x[n] * (1 - m) + blurred[n] * m
            inserted = blurred[n] * (1 - m) + x[n] * m
            a = actions[n].expand(len(m))
            deletion.append(action_probabilities(model, deleted, a))
            insertion.append(action_probabilities(model, inserted, a))
    return torch.stack(deletion).double().cpu().numpy(), torch.stack(insertion).double().cpu().numpy()


def curve_auc(curves: np.ndarray, step: int = STEP, pixels: int = 84 * 84) -> np.ndarray:
    """(N,) trapezoid area under each curve over the fraction of pixels changed."""
    return np.trapezoid(curves, fractions(pixels, step), axis=-1)


def parameter_layers(model: torch.nn.Module, obs: torch.Tensor) -> list[str]:
    """The names of the modules holding parameters of their own, top first: the reverse of the order
    a forward pass on ``obs`` calls them in (registration order need not be that order)."""
    called, hooks = [], []
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: called.append(name)))
    try:
        with torch.no_grad():
            model(obs[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return list(dict.fromkeys(called))[::-1]


def fresh_weights(model: torch.nn.Module, seed: int = RANDOMISATION_SEED) -> torch.nn.Module:
    """A copy of ``model`` with weights drawn anew under ``seed``: one of the 15 networks by its own
    initialisation, any other agent by each layer's ``reset_parameters()`` (PyTorch's default initialisation)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(model, ActorCritic):
            return ActorCritic(model.network, model.n_actions).to(next(model.parameters()).device)
        fresh = copy.deepcopy(model).cpu()  # drawn on the CPU, as the 15 networks are: the same weights on any device
        for name, module in fresh.named_modules():
            if any(True for _ in module.parameters(recurse=False)):
                if not hasattr(module, "reset_parameters"):
                    raise FlSaliencyError(f"the randomisation check cannot re-initialise layer {name!r} "
                                          f"({type(module).__name__}: no reset_parameters()); pass --no-randomisation")
                module.reset_parameters()
        return fresh.to(next(model.parameters()).device)


def cascading_randomisation(model: torch.nn.Module, obs: torch.Tensor, actions: torch.Tensor,
                            methods: dict[str, callable], seed: int = RANDOMISATION_SEED) -> dict[str, dict]:
    """Per method: {layers, spearman (mean correlation with the original maps after each layer is
    randomised, cumulatively), flagged}. ``model`` (one of the 15 networks or an agent) is left as it was."""
    fresh = fresh_weights(model, seed)
    randomised = copy.deepcopy(model)
    original = {name: method(model, obs, actions).double().cpu().numpy() for name, method in methods.items()}
    layers = parameter_layers(model, obs)
    correlations = {name: [] for name in methods}
    for layer in layers:
        source = fresh.get_submodule(layer)
        with torch.no_grad():
            for pname, p in randomised.get_submodule(layer).named_parameters(recurse=False):
                p.copy_(getattr(source, pname))
        for name, method in methods.items():
            maps = method(randomised, obs, actions).double().cpu().numpy()
            correlations[name].append(mean_spearman(original[name], maps))
    # JSON has no NaN: an undefined correlation (every map constant) is null
    return {name: {"layers": layers, "spearman": [None if np.isnan(v) else v for v in c],
                   "flagged": bool(np.isfinite(c[-1]) and c[-1] > RANDOMISATION_THRESHOLD)}
            for name, c in correlations.items()}


def mean_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """The mean over maps of Spearman's rank correlation of map a[i] with map b[i] (a constant map: undefined, left out)."""
    values = []
    for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        undefined = x.min() == x.max() or y.min() == y.max()
        values.append(np.nan if undefined else spearmanr(x, y).statistic)
    mean, _, count = nanmean_std_count(values)
    return mean if count else float("nan")


@dataclass
class FaithfulnessSettings:
    """Deletion/insertion AUC and the randomisation check of saliency methods on Atari-HEAD observations."""

    experiment_dir: Path | None = same_as(SaliencySettings, "experiment_dir")
    atari_head_dir: Path = setting(help="Atari-HEAD dataset whose frames of the agent's game give the observations")
    output_dir: Path = setting(help="where faithfulness.json goes")
    method: list[str] = same_as(SaliencySettings, "method")
    max_maps: int = setting(32, min=1, help="observations explained: the first ones of the game's trials")
    step: int = setting(STEP, min=1, max=84 * 84, help="pixels changed per step of the deletion and insertion curves")
    randomisation: bool = setting(True, help="also run the model-randomisation check (not on TorchScript agents, "
                                             "whose layers cannot be re-initialised one by one)")
    device: str = device_setting()
    force: bool = setting(False, help="overwrite a faithfulness.json already in --output-dir")
    agent: Path | None = same_as(SaliencySettings, "agent")
    env_name: str | None = same_as(SaliencySettings, "env_name")
    agent_options: AgentOptions = field(default_factory=AgentOptions)

    def __post_init__(self):
        check_settings(self)
        chosen_path(self.experiment_dir, self.agent)
        check_methods(self.method)


def first_observations(dataset: AtariHeadDataset, game: str, count: int, echo=print) -> np.ndarray:
    """(<= count, 4, 84, 84) uint8: the agent's observations of the game's trials, in trial order."""
    observations = []
    for trial in dataset.trials(game):
        try:
            for obs in agent_observations(lambda: dataset.frames(trial)):
                observations.append(obs)
                if len(observations) == count:
                    return np.stack(observations)
        except DatasetError as exc:
            echo(f"skipped {exc}")  # the message starts with the trial
    if not observations:
        raise FlSaliencyError(f"no {game} observation could be read from {dataset.root}")
    return np.stack(observations)


def auc_summary(values: np.ndarray) -> dict:
    mean, std, count = nanmean_std_count(values)
    low, high = bootstrap_ci(values)
    return {"mean": mean if count else None, "std": std if count else None, "count": count,
            "ci_low": None if np.isnan(low) else low, "ci_high": None if np.isnan(high) else high}


def run_faithfulness(settings: FaithfulnessSettings, echo=print) -> dict:
    # Locked (and checked writable) before the long work: an unwritable or busy folder fails at once.
    with locked_output_dir(settings.output_dir):
        return _score(settings, echo)


def _score(settings: FaithfulnessSettings, echo) -> dict:
    out = settings.output_dir / FAITHFULNESS_FILE
    if out.exists() and not settings.force:
        raise FlSaliencyError(f"{out} already exists; pass --force to overwrite it")
    device = resolve_device(settings.device)
    agent, _ = load_chosen(chosen_path(settings.experiment_dir, settings.agent), settings.agent_options)
    env_name = scored_game(agent, settings.env_name)
    check_agent_methods(agent, settings.method)
    if settings.randomisation and agent.source.library == "torchscript":
        raise FlSaliencyError(f"the randomisation check cannot run on the TorchScript agent {agent.source.path} "
                              "(its layers cannot be hooked and re-initialised one by one); pass --no-randomisation")
    # The 15 networks as themselves: their layers keep the names faithfulness.json has always given them.
    model = (agent.model if isinstance(agent, ExperimentAgent) else agent).to(device).eval()
    game = parse_game(env_name)
    obs = torch.from_numpy(first_observations(AtariHeadDataset(settings.atari_head_dir), game, settings.max_maps,
                                              echo)).to(device)
    if len(obs) < settings.max_maps:
        warn(f"{settings.atari_head_dir} holds {len(obs)} {game} observations: explaining {len(obs)}, "
             f"not --max-maps {settings.max_maps}")
    with torch.no_grad():
        actions = greedy_actions(model(obs)[0])
    methods = {name: METHODS[name] for name in settings.method}
    randomisation = cascading_randomisation(model, obs, actions, methods) if settings.randomisation else None
    results = {}
    for name, method in methods.items():
        deletion, insertion = deletion_insertion_curves(model, obs, actions, method(model, obs, actions), settings.step)
        results[name] = {"deletion_auc": auc_summary(curve_auc(deletion, settings.step)),
                         "insertion_auc": auc_summary(curve_auc(insertion, settings.step)),
                         "randomisation": randomisation[name] if randomisation else None}
        r = results[name]
        line = (f"{name}: deletion AUC {r['deletion_auc']['mean']:.3f} (lower is better), insertion AUC "
                f"{r['insertion_auc']['mean']:.3f} (higher is better)")
        if randomisation:
            last = randomisation[name]["spearman"][-1]
            line += (f", Spearman after all layers randomised {'undefined' if last is None else f'{last:.3f}'}"
                     f"{' FLAGGED' if r['randomisation']['flagged'] else ''}")
        echo(line)
    summary = {"experiment_dir": str(settings.experiment_dir) if settings.experiment_dir else None,
               "agent": agent.describe(), "network": agent.source.network, "env_name": env_name, "maps": len(obs),
               "step": settings.step, "blur_sigma": BLUR_SIGMA,
               "randomisation_threshold": RANDOMISATION_THRESHOLD, "randomisation_seed": RANDOMISATION_SEED,
               "methods": results}
    atomic_write_json(summary, out)
    echo(f"results in {out}")
    return summary
