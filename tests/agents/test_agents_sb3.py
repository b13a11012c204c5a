"""Stable-Baselines3 zips: the agent's outputs equal SB3's own on the same observations."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from scipy import ndimage

from fl_saliency.agents import load_agent
from fl_saliency.errors import FlSaliencyError
from fl_saliency.explain import METHODS
from fl_saliency.explain.perturbation import masks, perturbation_scores

ATOL = 1e-5


def sb3_tensor(model, observations):
    """SB3's own input tensor for VecFrameStack observations: its obs_to_tensor transposes them."""
    return model.policy.obs_to_tensor(observations)[0]


def sb3_logits(policy, obs):
    """policy.action_net on the policy's latent features, SB3's own modules."""
    features = policy.extract_features(obs)  # (actor's, critic's) where they do not share the extractor
    features = features[0] if isinstance(features, tuple) else features
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


def test_ppo_logits_and_value_equal_sb3s(sb3_models, sb3_observations, sb3_frames):
    model, path = sb3_models["ppo"]
    agent = load_agent(path, env_name="BreakoutNoFrameskip-v4")
    scores, value, attention = agent(sb3_frames)
    obs = sb3_tensor(model, sb3_observations)
    with torch.no_grad():
        logits = sb3_logits(model.policy, obs)
        distribution = model.policy.get_distribution(obs).distribution.logits
        values = model.policy.predict_values(obs)[:, 0]
    torch.testing.assert_close(scores, logits, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(torch.log_softmax(scores, dim=1), distribution, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(value, values, atol=ATOL, rtol=1e-5)
    assert attention is None and scores.std() > 0
    assert agent.describe() == {
        "library": "stable-baselines3", "algorithm": "PPO", "network": "NatureCNN", "path": str(path), "env_name": "",
        "observation": "uint8 (4, 84, 84) channels first (SB3's VecTransposeImage of VecFrameStack(4)), / 255",
        "n_actions": 4, "has_value": True, "has_attention": False}


def test_dqn_q_values_equal_sb3s(sb3_models, sb3_observations, sb3_frames):
    model, path = sb3_models["dqn"]
    agent = load_agent(path)
    scores, value, _ = agent(sb3_frames)
    with torch.no_grad():
        q = model.policy.q_net(sb3_tensor(model, sb3_observations))
    torch.testing.assert_close(scores, q, atol=ATOL, rtol=1e-5)
    assert value is None and not agent.has_value and agent.source.algorithm == "DQN"
    np.testing.assert_array_equal(scores.argmax(1).numpy(), model.predict(sb3_observations, deterministic=True)[0])


@pytest.mark.parametrize("variant", ["a2c", "separate-value", "no-normalisation", "qrdqn"])
def test_untrained_variants_equal_sb3s(variant, sb3, sb3_env, sb3_observations, sb3_frames, tmp_path):
    if variant == "qrdqn":
        contrib = pytest.importorskip("sb3_contrib")
        model = contrib.QRDQN("CnnPolicy", sb3_env, buffer_size=100, seed=1, device="cpu")
    elif variant == "a2c":
        model = sb3.A2C("CnnPolicy", sb3_env, seed=1, device="cpu")
    else:
        kwargs = {"share_features_extractor": False} if variant == "separate-value" else {"normalize_images": False}
        model = sb3.PPO("CnnPolicy", sb3_env, policy_kwargs=kwargs, seed=1, device="cpu")
    model.save(tmp_path / "model.zip")
    agent = load_agent(tmp_path / "model.zip", env_name="Breakout")
    scores, value, _ = agent(sb3_frames)
    obs = sb3_tensor(model, sb3_observations)
    with torch.no_grad():
        if variant == "qrdqn":
            expected = model.policy.quantile_net(obs).mean(dim=1)
            assert agent.describe()["library"] == "sb3-contrib" and agent.source.algorithm == "QR-DQN"
            assert agent.quantiles == 200 and value is None
        else:
            expected = sb3_logits(model.policy, obs)
            torch.testing.assert_close(value, model.policy.predict_values(obs)[:, 0], atol=ATOL, rtol=1e-5)
            assert agent.source.algorithm == ("A2C" if variant == "a2c" else "PPO")
            assert (agent.value_trunk is not None) == (variant == "separate-value")
            assert agent.pixel_scale == (1.0 if variant == "no-normalisation" else 255.0)
    torch.testing.assert_close(scores, expected, atol=ATOL, rtol=1e-5)
    assert expected.std() > 0
