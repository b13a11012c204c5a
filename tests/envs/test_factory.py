"""The backend factory (fl_saliency/envs/factory.py): bad settings are one clear error."""

from __future__ import annotations

import pytest

from fl_saliency.envs import make_pipelined_vec_env, make_vec_env
from fl_saliency.common.errors import FlSaliencyError


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(FlSaliencyError, match="unknown env backend 'gpu'.*baselines"):
        make_vec_env("Breakout", 1, 0, backend="gpu", asynchronous=False)


def test_num_env_must_be_positive():
    with pytest.raises(FlSaliencyError, match="at least 1"):
        make_vec_env("Breakout", 0, 0, backend="baselines", asynchronous=False)


def test_env_workers_must_be_positive():
    with pytest.raises(FlSaliencyError, match="--env-workers must be at least 1, got 0"):
        make_pipelined_vec_env("Breakout", 4, 0, workers=0)
