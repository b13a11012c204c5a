"""PPO2 as OpenAI Baselines runs it on Atari (docs/spec/protocol.md, section 2), in one readable module.

One update: roll out ``nsteps`` steps in each of ``num_envs`` environments with inference
under no-grad; compute GAE advantages; then ``noptepochs`` epochs over the shuffled batch in
``nminibatches`` minibatches, each minimising

    loss = pg_loss - ent_coef * entropy + vf_coef * vf_loss

with the clipped surrogate policy loss and Baselines' max-form clipped value loss,
advantages normalised per minibatch, the global gradient norm clipped, Adam with eps 1e-5
(where TensorFlow adds it), and a learning rate decaying linearly to 0 over the run. Three
switches turn it into Stable-Baselines3's PPO: ``value_clip=False``, ``vf_coef=1.0`` (SB3 does not
halve the squared error) and ``adam_eps_placement="pytorch"``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.distributions import Categorical

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import ActorCritic, scale_observation
from fl_saliency.agents.checkpoint import ADAM_BETAS, AdamState
from fl_saliency.agents.inference import autocast, check_precision, first_nonfinite_parameter, inference_threads
from fl_saliency.common.settings import check_settings, setting

if TYPE_CHECKING:  # the rollout steps any vector env; importing the environments is not needed for that
    from fl_saliency.envs.vec_env import VecEnv

LOSS_NAMES = ("policy_loss", "value_loss", "policy_entropy", "approxkl", "clipfrac")
EPS_PLACEMENTS = ("tensorflow", "pytorch")


@dataclass
class PPOConfig:
    """Baselines PPO2's Atari defaults; ``num_envs x nsteps`` agent steps per update."""

    num_envs: int = setting(8, flag="--num-env", min=1, help="parallel environments")
    nsteps: int = setting(128, min=1, help="steps per environment per update")
    nminibatches: int = setting(4, min=1, help="minibatches per epoch; must divide num_env x nsteps")
    noptepochs: int = setting(4, min=1, help="passes over each rollout")
    lr: float = setting(2.5e-4, min=0, help="initial learning rate, decays linearly to 0 (0: the weights stay, Adam's state goes on)")
    cliprange: float = setting(0.1, above=0, help="PPO clip range of the probability ratio (and the value), constant")
    value_clip: bool = setting(True, help="clip the value change to --cliprange as Baselines does "
                                          "(--no-value-clip: plain squared error, as SB3's default)")
    ent_coef: float = setting(0.01, min=0, help="entropy bonus weight")
    vf_coef: float = setting(0.5, min=0, help="value loss weight")
    max_grad_norm: float = setting(0.5, above=0, help="global gradient norm clip")
    gamma: float = setting(0.99, min=0, max=1, help="discount")
    lam: float = setting(0.95, min=0, max=1, help="GAE lambda")
    adam_eps: float = setting(1e-5, above=0, help="Adam's epsilon")
    adam_eps_placement: str = setting("tensorflow", choices=EPS_PLACEMENTS,
                                      help="tensorflow: eps before v's bias correction, as Baselines; "
                                           "pytorch: after it, as SB3")

    def __post_init__(self):
        check_settings(self)
        if self.batch_size % self.nminibatches:
            raise FlSaliencyError(f"num_env x nsteps = {self.batch_size} does not split into {self.nminibatches} minibatches")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.nsteps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.nminibatches

    def to_dict(self) -> dict:
        return asdict(self)


def learning_rate(config: PPOConfig, update: int, n_updates: int) -> float:
    """Baselines: lr x (1 - (update - 1) / n_updates) for updates numbered from 1."""
    return config.lr * (1.0 - (update - 1.0) / n_updates)


def compute_gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_values: np.ndarray,
                last_dones: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """GAE advantages (T, N). ``dones[t]`` says the observation of step t began a new episode (Baselines' convention)."""
    advantages = np.zeros_like(rewards)
    last_gae = np.zeros_like(last_values)
    for t in reversed(range(len(rewards))):
        next_nonterminal = 1.0 - (last_dones if t == len(rewards) - 1 else dones[t + 1])
        next_values = last_values if t == len(rewards) - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_values * next_nonterminal - values[t]
        advantages[t] = last_gae = delta + gamma * lam * next_nonterminal * last_gae
    return advantages


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - predicted] / Var[target]; NaN when the target is constant."""
    variance = np.var(target)
    return float("nan") if variance == 0 else float(1.0 - np.var(target - predicted) / variance)


def sample_actions(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions drawn as Baselines draws them, by the Gumbel-max trick (argmax of logits - log(-log u)),
    and their -log p. Also cheaper than building a torch Categorical per step."""
    gumbel = -torch.log(-torch.log(torch.rand_like(logits)))
    actions = torch.argmax(logits + gumbel, dim=1)
    neglogp = -torch.log_softmax(logits, dim=1).gather(1, actions[:, None]).squeeze(1)
    return actions, neglogp


def ppo_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor, old_neglogp: torch.Tensor,
             old_values: torch.Tensor, returns: torch.Tensor, cliprange: float, ent_coef: float, vf_coef: float,
             value_clip: bool = True):
    """The PPO2 loss of one minibatch and its diagnostics (all as tensors). ``value_clip=False`` drops the
    clipped value term, leaving 0.5 x the mean squared error."""
    advantages = returns - old_values
    advantages = (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)

    # Not validated: non-finite logits would raise here, mid-update; PPO.update names them once per update instead.
    distribution = Categorical(logits=logits, validate_args=False)
    neglogp = -distribution.log_prob(actions)
    entropy = distribution.entropy().mean()

    vf_losses = (values - returns) ** 2
    if value_clip:
        values_clipped = old_values + (values - old_values).clamp(-cliprange, cliprange)
        vf_losses = torch.maximum(vf_losses, (values_clipped - returns) ** 2)
    vf_loss = 0.5 * vf_losses.mean()

    ratio = torch.exp(old_neglogp - neglogp)
    pg_loss = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1.0 - cliprange, 1.0 + cliprange)).mean()

    loss = pg_loss - ent_coef * entropy + vf_coef * vf_loss
    stats = {
        "policy_loss": pg_loss,
        "value_loss": vf_loss,
        "policy_entropy": entropy,
        "approxkl": 0.5 * ((neglogp - old_neglogp) ** 2).mean(),
        "clipfrac": ((ratio - 1.0).abs() > cliprange).float().mean(),
    }
    return loss, stats


def clip_by_global_norm(parameters, max_norm: float) -> None:
    """Scale all gradients by max_norm / max(global norm, max_norm), as TensorFlow's clip_by_global_norm
    in Baselines. The norm is a sum of squares (cascade-summed, as TF's): torch's float32 vector_norm
    of the 1.6M fc1 gradients is ~1e-4 off on a CPU, and that error would scale every step."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.sqrt(torch.stack([(g * g).sum() for g in grads]).sum())
    torch._foreach_mul_(grads, max_norm / torch.clamp(norm, min=max_norm))


class NonFiniteError(FlSaliencyError):
    """An update made the loss or the weights NaN or infinite; ``quantity`` names which."""

    def __init__(self, quantity: str):
        super().__init__(f"{quantity} became non-finite (NaN or inf)")
        self.quantity = quantity


@dataclass
class Rollout:
    """``nsteps x num_envs`` transitions and what the update needs from them."""

    obs: np.ndarray  # (T, N, 4, 84, 84) uint8
    actions: np.ndarray  # (T, N) int64
    values: np.ndarray  # (T, N) float32
    neglogps: np.ndarray  # (T, N) float32
    returns: np.ndarray  # (T, N) float32
    episodes: list[tuple[int, dict]]  # (rank, Monitor episode) finished during the rollout


class PPO:
    """The learner: an actor-critic, its Adam optimizer, and the minibatch shuffling RNG."""

    def __init__(self, model: ActorCritic, config: PPOConfig, seed: int, device: torch.device, precision: str = "fp32"):
        self.model = model.to(device)
        self.config = config
        self.device = device
        self.precision = check_precision(precision)
        # fused: one kernel for all parameters, ~6x faster per step on a CPU than the per-tensor loop.
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS, eps=config.adam_eps,
                                          fused=True)
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sampled actions, values and -log p(action) for a batch of observations."""
        with autocast(self.device, self.precision):
            logits, values, _ = self.model(torch.from_numpy(obs).to(self.device))
        actions, neglogp = sample_actions(logits.float())
        values = values.float()
        return actions.cpu().numpy(), values.cpu().numpy(), neglogp.cpu().numpy()

    def rollout(self, envs: VecEnv, obs: np.ndarray, dones: np.ndarray) -> tuple[Rollout, np.ndarray, np.ndarray]:
        """Step the environments for nsteps from ``obs``; returns the rollout and the observation/dones to continue from.

        Turn by turn (one turn of all environments, or the groups of a ``PipelinedVecEnv``): take
        the turn's step that ended, act on its observations, start its next step. With groups the
        network acts for one while the others' environments step.
        """
        c = self.config
        obs, dones = obs.copy(), dones.copy()
        mb_obs = np.empty((c.nsteps, *obs.shape), np.uint8)
        mb_actions = np.empty((c.nsteps, c.num_envs), np.int64)
        mb_values, mb_neglogps, mb_rewards, mb_dones = (np.empty((c.nsteps, c.num_envs), np.float32) for _ in range(4))
        episodes = []
        with inference_threads(self.device):
            for t in range(c.nsteps + 1):
                for ranks in envs.turns:
                    if t > 0:
                        obs[ranks], mb_rewards[t - 1, ranks], dones[ranks], infos = envs.step_wait()
                        episodes += [(ranks.start + i, info["episode"]) for i, info in enumerate(infos) if "episode" in info]
                    if t < c.nsteps:
                        mb_obs[t, ranks], mb_dones[t, ranks] = obs[ranks], dones[ranks]
                        mb_actions[t, ranks], mb_values[t, ranks], mb_neglogps[t, ranks] = self.act(obs[ranks])
                        envs.step_async(mb_actions[t, ranks])
            _, last_values, _ = self.act(obs)
        advantages = compute_gae(mb_rewards, mb_values, mb_dones, last_values, dones.astype(np.float32), c.gamma, c.lam)
        rollout = Rollout(mb_obs, mb_actions, mb_values, mb_neglogps, advantages + mb_values, episodes)
        return rollout, obs, dones

    def update(self, rollout: Rollout, lr: float) -> dict[str, float]:
        """noptepochs x nminibatches gradient steps on the rollout; the mean of each loss statistic."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        to_device = lambda a: torch.from_numpy(a.reshape(c.batch_size, *a.shape[2:])).to(self.device)
        obs, actions, values, neglogps, returns = map(
            to_device, (rollout.obs, rollout.actions, rollout.values, rollout.neglogps, rollout.returns)
        )
        obs = scale_observation(obs)  # once for all epochs
        totals = torch.zeros(len(LOSS_NAMES), device=self.device)
        # The step at which each statistic first went non-finite (n_steps if never), kept on the device: no sync.
        n_steps = c.noptepochs * c.nminibatches
        first_nonfinite = torch.full((len(LOSS_NAMES),), n_steps, device=self.device)
        step = 0
        for _ in range(c.noptepochs):
            order = torch.from_numpy(self.rng.permutation(c.batch_size)).to(self.device)
            for start in range(0, c.batch_size, c.minibatch_size):
                idx = order[start : start + c.minibatch_size]
                with autocast(self.device, self.precision):
                    logits, new_values, _ = self.model.forward_scaled(obs[idx])
                loss, stats = ppo_loss(logits.float(), new_values.float(), actions[idx], neglogps[idx], values[idx],
                                       returns[idx], c.cliprange, c.ent_coef, c.vf_coef, c.value_clip)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_by_global_norm(self.model.parameters(), c.max_grad_norm)
                self.adam_step()
                values_now = torch.stack([stats[name].detach() for name in LOSS_NAMES])
                totals += values_now
                first_nonfinite = torch.minimum(first_nonfinite,
                                                torch.where(torch.isfinite(values_now), n_steps, step))
                step += 1
        means = (totals / n_steps).cpu().numpy()
        first = first_nonfinite.cpu()
        if first.min() < n_steps:
            names = [name for name, at in zip(LOSS_NAMES, first) if at == first.min()]
            raise NonFiniteError(f"the loss ({', '.join(names)})")
        weight = first_nonfinite_parameter(self.model)
        if weight is not None:
            raise NonFiniteError(f"the weight {weight}")
        return {name: float(v) for name, v in zip(LOSS_NAMES, means)}

    def adam_step(self) -> None:
        """One Adam step, by default as Baselines' TensorFlow AdamOptimizer takes it. TF adds eps to sqrt(v)
        before v's bias correction, PyTorch after it; dividing eps by sqrt(1 - beta2^t) makes the two one.
        The difference is large early on: 32x the eps at the first step, 8x at the 16th."""
        if self.config.adam_eps_placement == "tensorflow":
            state = self.optimizer.state.get(next(iter(self.model.parameters())))
            step = int(state["step"]) + 1 if state else 1
            _, beta2 = self.optimizer.defaults["betas"]
            for group in self.optimizer.param_groups:
                group["eps"] = self.config.adam_eps / math.sqrt(1.0 - beta2**step)
        self.optimizer.step()

    def adam_state(self) -> AdamState:
        """The optimizer's step count and moments (zeros before the first step)."""
        named = dict(self.model.named_parameters())
        state = {name: self.optimizer.state.get(p, {}) for name, p in named.items()}
        moment = lambda name, key: state[name][key].detach() if key in state[name] else torch.zeros_like(named[name])
        return AdamState(
            step=int(next(iter(state.values())).get("step", 0)),
            exp_avg={name: moment(name, "exp_avg") for name in named},
            exp_avg_sq={name: moment(name, "exp_avg_sq") for name in named},
        )

    def load_adam_state(self, adam: AdamState) -> None:
        """Continue from ``adam``: the next step is step ``adam.step + 1`` with these moments."""
        for name, p in self.model.named_parameters():
            self.optimizer.state[p] = {
                "step": torch.tensor(float(adam.step), dtype=torch.float32, device=p.device),
                "exp_avg": torch.empty_like(p).copy_(adam.exp_avg[name]),
                "exp_avg_sq": torch.empty_like(p).copy_(adam.exp_avg_sq[name]),
            }

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


class EpisodeStats:
    """eprewmean / eplenmean over the last 100 Monitor episodes (NaN before the first)."""

    def __init__(self, maxlen: int = 100):
        self.rewards: deque[float] = deque(maxlen=maxlen)
        self.lengths: deque[int] = deque(maxlen=maxlen)

    def add(self, episode: dict) -> None:
        self.rewards.append(episode["r"])
        self.lengths.append(episode["l"])

    def means(self) -> dict[str, float]:
        mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
        return {"eprewmean": mean(self.rewards), "eplenmean": mean(self.lengths)}

    def state_dict(self) -> dict:
        return {"rewards": list(self.rewards), "lengths": list(self.lengths)}

    def load_state_dict(self, state: dict) -> None:
        self.rewards.extend(state["rewards"])
        self.lengths.extend(state["lengths"])
