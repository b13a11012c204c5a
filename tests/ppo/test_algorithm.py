import math

import numpy as np
import pytest
import torch

from fl_saliency.envs import PipelinedVecEnv
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.ppo.algorithm import (PPO, EpisodeStats, NonFiniteError, PPOConfig, compute_gae, explained_variance,
                             learning_rate, ppo_loss, sample_actions)


def test_gae_on_a_tiny_trajectory_with_a_done_and_a_bootstrap_value():
    rewards = np.array([[1.0], [0.0], [2.0]], np.float32)
    values = np.array([[0.5], [0.4], [0.3]], np.float32)
    dones = np.array([[0.0], [0.0], [1.0]], np.float32)  # step 2's observation began a new episode
    adv = compute_gae(rewards, values, dones, last_values=np.array([0.6], np.float32),
                      last_dones=np.array([0.0], np.float32), gamma=0.9, lam=0.8)
    # By hand: A2 = 2 + 0.9*0.6 - 0.3 = 2.24; A1 = 0 - 0.4 (episode ended) = -0.4;
    # A0 = (1 + 0.9*0.4 - 0.5) + 0.9*0.8*(-0.4) = 0.86 - 0.288 = 0.572.
    np.testing.assert_allclose(adv[:, 0], [0.572, -0.4, 2.24], rtol=1e-6)


def test_gae_cuts_the_bootstrap_at_a_final_done():
    adv = compute_gae(np.array([[1.0, 1.0]], np.float32), np.array([[0.5, 0.5]], np.float32), np.zeros((1, 2), np.float32),
                      last_values=np.array([10.0, 10.0], np.float32), last_dones=np.array([1.0, 0.0], np.float32),
                      gamma=0.5, lam=1.0)
    np.testing.assert_allclose(adv[0], [0.5, 5.5])


def neglogp_of(logits, actions):
    return -torch.log_softmax(logits, dim=1).gather(1, actions[:, None])[:, 0]


def test_policy_loss_with_clipping_active_and_its_diagnostics():
    logits = torch.tensor([[0.2, -0.3, 1.0], [0.0, 0.5, -1.0]])
    actions = torch.tensor([2, 0])
    neglogp = neglogp_of(logits, actions)
    ratios = torch.tensor([1.5, 0.5])
    old_neglogp = neglogp + torch.log(ratios)  # ratio = exp(old - new)
    old_values = torch.zeros(2)
    returns = torch.tensor([1.0, -1.0])  # advantages normalise to exactly +1, -1
    values = torch.zeros(2)  # value loss: 0.5 * mean(1, 1) = 0.5
    _, stats = ppo_loss(logits, values, actions, old_neglogp, old_values, returns, cliprange=0.1, ent_coef=0.0, vf_coef=0.0)
    # A=+1, r=1.5: max(-1.5, -1.1) = -1.1;  A=-1, r=0.5: max(0.5, 0.9) = 0.9;  mean = -0.1
    assert stats["policy_loss"].item() == pytest.approx(-0.1, abs=1e-6)
    assert stats["clipfrac"].item() == 1.0
    assert stats["approxkl"].item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2) / 2, rel=1e-5)
    assert stats["value_loss"].item() == pytest.approx(0.5)
    p = torch.softmax(logits, 1)
    assert stats["policy_entropy"].item() == pytest.approx(float(-(p * p.log()).sum(1).mean()), rel=1e-6)


def test_policy_loss_unclipped_inside_the_range():
    logits = torch.zeros(2, 2)
    actions = torch.tensor([0, 1])
    neglogp = neglogp_of(logits, actions)
    old_neglogp = neglogp + torch.log(torch.tensor([1.05, 0.98]))
    _, stats = ppo_loss(logits, torch.zeros(2), actions, old_neglogp, torch.zeros(2), torch.tensor([3.0, 1.0]),
                        cliprange=0.1, ent_coef=0.0, vf_coef=0.0)
    assert stats["policy_loss"].item() == pytest.approx((-1.05 + 0.98) / 2, abs=1e-6)
    assert stats["clipfrac"].item() == 0.0


def test_value_loss_where_the_clipped_term_wins():
    # old 0, new 0.6, return 1.0, clip 0.1: unclipped (0.6-1)^2 = 0.16, clipped (0.1-1)^2 = 0.81 -> 0.5*0.81
    logits = torch.zeros(1, 2)
    actions = torch.tensor([0])
    neglogp = neglogp_of(logits, actions)
    _, stats = ppo_loss(logits, torch.tensor([0.6]), actions, neglogp, torch.tensor([0.0]), torch.tensor([1.0]),
                        cliprange=0.1, ent_coef=0.0, vf_coef=0.5)
    assert stats["value_loss"].item() == pytest.approx(0.405, abs=1e-6)
    _, stats = ppo_loss(logits, torch.tensor([0.6]), actions, neglogp, torch.tensor([0.0]), torch.tensor([1.0]),
                        cliprange=0.1, ent_coef=0.0, vf_coef=0.5, value_clip=False)
    assert stats["value_loss"].item() == pytest.approx(0.08, abs=1e-6)  # 0.5 * (0.6-1)^2, unclipped


def test_total_loss_combines_terms_with_baselines_signs():
    logits = torch.tensor([[0.3, -0.2]])
    actions = torch.tensor([1])
    neglogp = neglogp_of(logits, actions)
    loss, stats = ppo_loss(logits, torch.tensor([0.6]), actions, neglogp, torch.tensor([0.0]), torch.tensor([1.0]),
                           cliprange=0.1, ent_coef=0.01, vf_coef=0.5)
    expected = stats["policy_loss"] - 0.01 * stats["policy_entropy"] + 0.5 * stats["value_loss"]
    assert loss.item() == pytest.approx(expected.item())


def test_linear_learning_rate_schedule():
    c = PPOConfig(lr=2.5e-4)
    assert learning_rate(c, 1, 4) == pytest.approx(2.5e-4)
    assert learning_rate(c, 2, 4) == pytest.approx(2.5e-4 * 0.75)
    assert learning_rate(c, 4, 4) == pytest.approx(2.5e-4 * 0.25)


def test_explained_variance():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(y, y) == 1.0
    assert explained_variance(np.zeros(4), y) == pytest.approx(1 - np.var(y) / np.var(y))
    assert explained_variance(y + 1.0, y) == pytest.approx(1.0)
    assert explained_variance(2 * y, y) == pytest.approx(1 - np.var(-y) / np.var(y))
    assert explained_variance(np.full(4, y.mean()), y) == pytest.approx(0.0)
    assert math.isnan(explained_variance(y, np.ones(4)))


def test_episode_stats_keep_the_last_100():
    stats = EpisodeStats()
    assert math.isnan(stats.means()["eprewmean"])
    for i in range(150):
        stats.add({"r": float(i), "l": 2 * i})
    assert stats.means() == {"eprewmean": pytest.approx(np.mean(range(50, 150))), "eplenmean": pytest.approx(2 * np.mean(range(50, 150)))}


class FakeEnv:
    """Deterministic env: reward 1 each step (``base`` + step in the observation), a done every 3rd step."""

    n_actions = 4

    def __init__(self, num_envs, base=0):
        self.num_envs = num_envs
        self.base = base
        self.t = 0

    def step_async(self, actions):
        assert len(actions) == self.num_envs
        self.t += 1

    def step_wait(self):
        done = self.t % 3 == 0
        obs = np.full((self.num_envs, 4, 84, 84), (self.base + self.t) % 256, np.uint8)
        infos = [{"episode": {"r": 3.0, "l": 3, "t": 0.0}} if done else {} for _ in range(self.num_envs)]
        return obs, np.ones(self.num_envs, np.float32), np.full(self.num_envs, done), infos


def fake_groups(*sizes) -> PipelinedVecEnv:
    """FakeEnvs taking turns: ``sizes`` environments per group."""
    return PipelinedVecEnv([FakeEnv(size, base=100 * i) for i, size in enumerate(sizes)])


@pytest.mark.slow
def test_rollout_shapes_dones_convention_and_returns():
    torch.manual_seed(0)
    c = PPOConfig(num_envs=2, nsteps=5, nminibatches=2, noptepochs=1)
    ppo = PPO(ActorCritic("cnn", 4), c, seed=0, device=torch.device("cpu"))
    obs = np.zeros((2, 4, 84, 84), np.uint8)
    rollout, obs, dones = ppo.rollout(fake_groups(2), obs, np.zeros(2, bool))
    assert rollout.obs.shape == (5, 2, 4, 84, 84) and rollout.actions.shape == (5, 2)
    # dones are stored for the observation each step starts from: after steps 3 (t=3) the next obs began an episode
    assert [o[0, 0, 0, 0] for o in rollout.obs] == [0, 1, 2, 3, 4]
    assert len(rollout.episodes) == 2 and dones.tolist() == [False, False]
    stats = ppo.update(rollout, lr=1e-3)
    assert set(stats) == {"policy_loss", "value_loss", "policy_entropy", "approxkl", "clipfrac"}


def test_rollout_over_two_groups_puts_each_group_at_its_ranks():
    torch.manual_seed(0)
    c = PPOConfig(num_envs=5, nsteps=4, nminibatches=1, noptepochs=1)
    ppo = PPO(ActorCritic("cnn", 4), c, seed=0, device=torch.device("cpu"))
    rollout, obs, dones = ppo.rollout(fake_groups(3, 2), np.zeros((5, 4, 84, 84), np.uint8), np.zeros(5, bool))
    assert [o[:, 0, 0, 0].tolist() for o in rollout.obs] == [[0] * 5, [1, 1, 1, 101, 101], [2, 2, 2, 102, 102],
                                                           [3, 3, 3, 103, 103]]
    assert obs[:, 0, 0, 0].tolist() == [4, 4, 4, 104, 104] and dones.tolist() == [False] * 5
    assert rollout.obs[2:, :, 0, 0, 0].min() >= 2 and sorted(rank for rank, _ in rollout.episodes) == [0, 1, 2, 3, 4]
    assert np.isfinite(rollout.returns).all() and rollout.actions.shape == (4, 5)


def numpy_adam(w, grads, lr, eps, placement, beta1=0.9, beta2=0.999):
    """Adam in float64 numpy, as tf.train.AdamOptimizer documents it (eps added to the uncorrected sqrt(v))
    or as torch.optim.Adam does (eps added after v's bias correction)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if placement == "tensorflow":
            w = w - lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)
        else:
            w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["tensorflow", "pytorch"])
def test_adam_steps_place_eps_1e_5_as_configured(placement):
    """Gradients of 1e-6 .. 1e-3, where eps = 1e-5 matters and the two placements differ by up to 30x."""
    model = ActorCritic("cnn", 4)
    ppo = PPO(model, PPOConfig(adam_eps_placement=placement), seed=0, device=torch.device("cpu"))
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # Adam's moves do not depend on the weights; from 0, float32 keeps them exactly
    grads = {name: [rng.normal(size=p.shape) * 10.0 ** rng.integers(-6, -2, size=p.shape) for _ in range(3)]
             for name, p in model.named_parameters()}
    for step in range(3):
        for name, p in model.named_parameters():
            p.grad = torch.empty_like(p).copy_(torch.from_numpy(grads[name][step]))  # the parameter's memory layout, as autograd's
        ppo.adam_step()
    for name, p in model.named_parameters():
        expected = numpy_adam(np.zeros(p.shape), grads[name], lr=2.5e-4, eps=1e-5, placement=placement)
        # atol: a millionth of Adam's largest step (lr), for moves that cancel over the 3 steps
        np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-4, atol=1e-6 * 2.5e-4, err_msg=name)


def test_unknown_adam_eps_placement_is_one_line():
    with pytest.raises(FlSaliencyError, match=r"^--adam-eps-placement must be one of: tensorflow, pytorch, got 'keras'$"):
        PPOConfig(adam_eps_placement="keras")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_update_changes_weights_and_clips_the_gradient_norm(precision):
    torch.manual_seed(0)
    c = PPOConfig(num_envs=2, nsteps=4, nminibatches=1, noptepochs=1, max_grad_norm=1e-3)
    model = ActorCritic("cnn", 4)
    ppo = PPO(model, c, seed=0, device=torch.device("cpu"), precision=precision)
    rollout, _, _ = ppo.rollout(fake_groups(2), np.zeros((2, 4, 84, 84), np.uint8), np.zeros(2, bool))
    seen = []
    original_step = ppo.optimizer.step

    def recording_step(*a, **k):
        seen.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())).item())
        return original_step(*a, **k)

    ppo.optimizer.step = recording_step
    before = model.pi.weight.detach().clone()
    ppo.update(rollout, lr=1e-3)
    assert seen and seen[0] <= 1e-3 * (1 + 1e-4)
    assert not torch.equal(before, model.pi.weight)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # bf16 is for the arithmetic only


@pytest.mark.slow
def test_learner_state_round_trips_exactly():
    c = PPOConfig(num_envs=2, nsteps=4, nminibatches=2, noptepochs=1)
    torch.manual_seed(0)
    a = PPO(ActorCritic("cnn_sparse_fls", 4), c, seed=3, device=torch.device("cpu"))
    rollout, _, _ = a.rollout(fake_groups(2), np.zeros((2, 4, 84, 84), np.uint8), np.zeros(2, bool))
    a.update(rollout, lr=1e-3)
    state = a.state_dict()
    torch.manual_seed(99)
    b = PPO(ActorCritic("cnn_sparse_fls", 4), c, seed=7, device=torch.device("cpu"))
    b.load_state_dict(state)
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.rng.integers(1 << 30) == b.rng.integers(1 << 30)
    after_load = torch.rand(3)  # b restored the torch RNG state saved from a
    torch.set_rng_state(state["torch_rng"])
    assert torch.equal(after_load, torch.rand(3))
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_gumbel_max_sampling_follows_the_softmax_and_reports_its_neglogp():
    from scipy.stats import chisquare

    torch.manual_seed(3)
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]]).repeat(40_000, 1)
    actions, neglogp = sample_actions(logits)
    probs = torch.softmax(logits[0].double(), 0).numpy()
    counts = np.bincount(actions.numpy(), minlength=4)
    assert chisquare(counts, probs * len(actions)).pvalue > 1e-3
    np.testing.assert_allclose(neglogp.numpy(), -np.log(probs)[actions.numpy()], rtol=1e-5)
    # A near-certain action is always drawn.
    sure, _ = sample_actions(torch.tensor([[0.0, 30.0, 0.0, 0.0]]).repeat(1000, 1))
    assert (sure == 1).all()


@pytest.mark.slow
def test_bf16_precision_runs_the_network_in_bfloat16_and_hands_back_float32():
    from fl_saliency.agents.inference import autocast

    torch.manual_seed(0)
    model = ActorCritic("cnn_sparse_fls", 4)
    obs = np.random.default_rng(0).integers(0, 256, (6, 4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        with autocast(torch.device("cpu"), "bf16"):
            logits_bf16, _, _ = model(torch.from_numpy(obs))
        with autocast(torch.device("cpu"), "fp32"):
            logits_fp32, _, _ = model(torch.from_numpy(obs))
    assert logits_bf16.dtype == torch.bfloat16 and logits_fp32.dtype == torch.float32
    assert not torch.equal(logits_bf16.float(), logits_fp32)
    torch.testing.assert_close(logits_bf16.float(), logits_fp32, rtol=0, atol=0.05 * logits_fp32.abs().max().item())

    ppo = PPO(model, PPOConfig(num_envs=2, nsteps=8, nminibatches=2, noptepochs=2), seed=0, device=torch.device("cpu"),
              precision="bf16")
    actions, values, neglogps = ppo.act(obs)
    assert actions.dtype == np.int64 and values.dtype == np.float32 and neglogps.dtype == np.float32
    assert np.all(neglogps > 0)


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown precision 'fp8'; choose one of: fp32, bf16"):
        PPO(ActorCritic("cnn", 4), PPOConfig(), seed=0, device=torch.device("cpu"), precision="fp8")


def test_gradients_clipped_by_their_global_norm_as_tensorflow():
    """TF's clip_by_global_norm: g * max_norm / max(||g||, max_norm), the norm as exact as float64 (numpy oracle)."""
    from fl_saliency.ppo.algorithm import clip_by_global_norm

    rng = np.random.default_rng(0)
    for scale in (1e-4, 1.0):  # below and above max_norm 0.5
        grads = [rng.normal(0, scale * 1e-3, shape).astype(np.float32) for shape in ((3136, 512), (512,), (4, 8, 8, 32))]
        params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        clip_by_global_norm(params, 0.5)
        norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))
        for p, g in zip(params, grads):
            np.testing.assert_allclose(p.grad.numpy(), g * 0.5 / max(norm, 0.5), rtol=3e-7)


def _learner_and_rollout():
    """One minibatch, one step: the losses are computed before the only step changes the weights."""
    torch.manual_seed(0)
    c = PPOConfig(num_envs=2, nsteps=4, nminibatches=1, noptepochs=1)
    model = ActorCritic("cnn", 4)
    ppo = PPO(model, c, seed=0, device=torch.device("cpu"))
    rollout, _, _ = ppo.rollout(fake_groups(2), np.zeros((2, 4, 84, 84), np.uint8), np.zeros(2, bool))
    return ppo, rollout


@pytest.mark.slow
def test_nan_weights_are_named_as_a_nonfinite_loss_not_a_categorical_traceback():
    ppo, rollout = _learner_and_rollout()
    with torch.no_grad():
        ppo.model.pi.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError) as raised:
        ppo.update(rollout, lr=1e-3)
    assert raised.value.quantity == "the loss (policy_loss, policy_entropy, approxkl)"


@pytest.mark.slow
def test_a_step_that_makes_the_weights_infinite_names_the_first_weight():
    ppo, rollout = _learner_and_rollout()
    with pytest.raises(NonFiniteError) as raised:
        ppo.update(rollout, lr=float("inf"))
    assert raised.value.quantity == f"the weight {next(iter(ppo.model.state_dict()))}"


def test_a_finite_update_passes_the_check():
    ppo, rollout = _learner_and_rollout()
    losses = ppo.update(rollout, lr=1e-3)
    assert all(math.isfinite(v) for v in losses.values())
