"""docs/cluster-aws.yaml, the README's `ray up` example, against Ray's own cluster-config schema and defaults."""

from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "cluster-aws.yaml"


def test_the_example_cluster_config_is_valid_for_ray_up():
    config = prepare_config(yaml.safe_load(CONFIG.read_text()))
    validate_config(config)
    head, worker = config["available_node_types"]["head"], config["available_node_types"]["gpu_worker"]
    assert head["resources"] == {"CPU": 0} and worker["min_workers"] >= 1
    assert all(".venv/bin/ray" in command for command in config["worker_start_ray_commands"])


def test_a_misspelt_key_is_refused_by_the_same_check():
    config = yaml.safe_load(CONFIG.read_text())
    config["available_node_types"]["gpu_worker"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(config))
