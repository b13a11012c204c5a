"""Stable-Baselines3 zips: the agent's outputs equal SB3's own on the same observations."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from fl_saliency.agents import load_agent
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.methods import METHODS
from fl_saliency.methods.perturbation import perturbation_scores

ATOL = 1e-5


def sb3_tensor(model, observations):
    """SB3's own input tensor for VecFrameStack observations: its obs_to_tensor transposes them."""
    return model.policy.obs_to_tensor(observations)[0]


def sb3_logits(policy, obs):
    """policy.action_net on the policy's latent features, SB3's own modules."""
    features = policy.extract_features(obs)  # (actor's, critic's) where they do not share the extractor
    features = features[0] if isinstance(features, tuple) else features
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


@pytest.mark.slow
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
        "n_actions": 4, "scores_kind": "logits", "has_value": True, "has_attention": False}


@pytest.mark.slow
def test_dqn_q_values_equal_sb3s(sb3_models, sb3_observations, sb3_frames):
    model, path = sb3_models["dqn"]
    agent = load_agent(path)
    scores, value, _ = agent(sb3_frames)
    with torch.no_grad():
        q = model.policy.q_net(sb3_tensor(model, sb3_observations))
    torch.testing.assert_close(scores, q, atol=ATOL, rtol=1e-5)
    assert value is None and not agent.has_value and agent.source.algorithm == "DQN" and agent.scores_kind == "q-values"
    np.testing.assert_array_equal(scores.argmax(1).numpy(), model.predict(sb3_observations, deterministic=True)[0])


@pytest.mark.slow
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


ACTIONS = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])


@pytest.mark.slow
def test_gradient_equals_autograd_on_sb3s_policy(sb3_models, sb3_observations, sb3_frames):
    model, path = sb3_models["ppo"]
    maps = METHODS["gradient"](load_agent(path), sb3_frames, ACTIONS)
    x = sb3_tensor(model, sb3_observations).float().requires_grad_()  # SB3 divides by 255 itself
    sb3_logits(model.policy, x).gather(1, ACTIONS[:, None]).sum().backward()
    expected = (x.grad * 255).abs().amax(dim=1)  # the maps are d/d(obs / 255)
    assert expected.amax() > 0
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-5 * float(expected.amax()))


def scipy_perturbation_scores(output, frame: torch.Tensor) -> np.ndarray:
    """Greydanus et al.'s score grid (17, 17) of one stack by hand: scipy's blurs and masks, SB3's module."""
    y, x = np.ogrid[:84, :84]
    crosses = [((y - i) ** 2 + (x - j) ** 2 <= 1).astype(float) for i in range(0, 84, 5) for j in range(0, 84, 5)]
    m = np.stack([ndimage.gaussian_filter(cross, 5) for cross in crosses])
    m = (m / m.max(axis=(1, 2), keepdims=True))[:, None]
    image = frame.double().numpy() / 255
    blurred = ndimage.gaussian_filter(image, sigma=(0, 3, 3))
    perturbed = image * (1 - m) + blurred * m
    with torch.no_grad():
        reference = output(torch.from_numpy(image[None] * 255).float())
        diff = reference - output(torch.from_numpy(perturbed * 255).float())
    return (0.5 * diff.square().sum(dim=1)).numpy().reshape(17, 17)


@pytest.mark.slow
@pytest.mark.parametrize("critic", [False, True])
def test_perturbation_equals_greydanus_by_hand_on_sb3s_policy(critic, sb3_models, sb3_frames):
    model, path = sb3_models["ppo"]
    output = (lambda x: model.policy.predict_values(x)) if critic else (lambda x: sb3_logits(model.policy, x))
    expected = scipy_perturbation_scores(output, sb3_frames[5])
    scores = perturbation_scores(load_agent(path), sb3_frames[5:6], critic=critic)[0].numpy()
    assert expected.max() > 0
    np.testing.assert_allclose(scores, expected, rtol=2e-3, atol=2e-3 * expected.max())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["smoothgrad", "integrated-gradients", "rise", "perturbation"])
def test_every_forward_method_equals_itself_on_sb3s_module(method, sb3_models, sb3_frames):
    """The same method code on SB3's own policy (wrapped as a plain callable): the rebuilt network changes nothing."""
    from fl_saliency.agents import agent_from_module

    model, path = sb3_models["ppo"]
    agent = load_agent(path)  # before seeding: building the network draws its initial weights
    oracle = agent_from_module(lambda x: (sb3_logits(model.policy, x), model.policy.predict_values(x)))
    frames, actions = sb3_frames[:2], ACTIONS[:2]
    torch.manual_seed(0)
    ours = METHODS[method](agent, frames, actions)
    torch.manual_seed(0)
    theirs = METHODS[method](oracle, frames, actions)
    assert theirs.amax() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4 * float(theirs.amax()))


@pytest.mark.slow
def test_gradcam_equals_captum_on_sb3s_last_convolution(sb3_models, sb3_observations, sb3_frames):
    from captum.attr import LayerAttribution, LayerGradCam

    model, path = sb3_models["ppo"]
    maps = METHODS["gradcam"](load_agent(path), sb3_frames, ACTIONS)
    cam = LayerGradCam(lambda x: sb3_logits(model.policy, x), model.policy.features_extractor.cnn[4]).attribute(
        sb3_tensor(model, sb3_observations).float(), target=ACTIONS, relu_attributions=True)
    expected = LayerAttribution.interpolate(cam.detach(), (84, 84), "bilinear")[:, 0]
    assert expected.amax() > 0
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-5 * float(expected.amax()))


def one_line_error(call, match: str) -> str:
    with pytest.raises(FlSaliencyError, match=match) as error:
        call()
    assert "\n" not in str(error.value)
    return str(error.value)


def test_methods_an_agent_cannot_give_are_one_line(untrained_zips, sb3_frames):
    dqn = load_agent(untrained_zips["dqn"])
    one_line_error(lambda: METHODS["perturbation-critic"](dqn, sb3_frames[:1], ACTIONS[:1]),
                   "perturbation-critic needs a value head, which the stable-baselines3 DQN agent lacks")
    one_line_error(lambda: METHODS["attention"](dqn, sb3_frames[:1], ACTIONS[:1]),
                   "attention method needs a network with attention of its own")


def test_a_truncated_zip_is_one_line(untrained_zips, tmp_path):
    data = untrained_zips["ppo"].read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    one_line_error(lambda: load_agent(tmp_path / "cut.zip"), "cut.zip is a damaged zip file, truncated or corrupt")


def test_a_non_image_policy_is_one_line(sb3, tmp_path):
    sb3.PPO("MlpPolicy", "CartPole-v1", device="cpu").save(tmp_path / "cartpole.zip")
    one_line_error(lambda: load_agent(tmp_path / "cartpole.zip"),
                   r"cartpole.zip is not an Atari image policy: its observations are float32 \(4,\)")


def test_the_wrong_action_count_is_one_line(untrained_zips):
    one_line_error(lambda: load_agent(untrained_zips["ppo"], env_name="MsPacmanNoFrameskip-v4"),
                   "ppo.zip has 4 actions but MsPacmanNoFrameskip-v4 has 9 .minimal action set.")


def test_a_zip_that_is_no_agent_is_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as archive:
        archive.writestr("notes.txt", "hello")
    one_line_error(lambda: load_agent(tmp_path / "notes.zip"), "notes.zip is not an agent fl-saliency reads")


def test_a_corrupt_policy_in_a_whole_zip_is_one_line(untrained_zips, tmp_path):
    data = bytearray(untrained_zips["ppo"].read_bytes())
    with zipfile.ZipFile(untrained_zips["ppo"]) as archive:
        info = archive.getinfo("policy.pth")
    middle = info.header_offset + 100 + info.compress_size // 2
    data[middle : middle + 64] = bytes(64)
    (tmp_path / "corrupt.zip").write_bytes(bytes(data))
    one_line_error(lambda: load_agent(tmp_path / "corrupt.zip"), "corrupt.zip is a damaged Stable-Baselines3 zip")


@pytest.mark.slow
def test_loading_a_zip_imports_neither_sb3_nor_training(untrained_zips):
    code = ("import sys; from fl_saliency.agents import load_agent; load_agent(sys.argv[1]); "
            "print(sorted(m for m in ('stable_baselines3', 'sb3_contrib', 'fl_saliency.ppo.algorithm', 'fl_saliency.envs') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(untrained_zips["dqn"])], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert out.stdout.strip() == "[]"
