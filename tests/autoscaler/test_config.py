"""autoscaler.yaml: the shipped example loads; every mistake names its key and value."""

from pathlib import Path

import pytest

from autoscaler.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "autoscaler" / "examples" / "autoscaler.yaml"
TARGET = {"name": "m", "capacity": {"rps": 10}}


def test_the_shipped_example_is_valid():
    config = load_config(EXAMPLE)
    assert config.targets[0].actuator.kind == "dry-run" and config.interval_s == 15


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"targets": [{**TARGET, "max_replicas": 0}]}, ["targets.0.max_replicas", "got 0"]),
        ({"targets": [{**TARGET, "min_replicas": 5, "max_replicas": 2}]}, ["min_replicas 5 is above max_replicas 2"]),
        ({"targets": [{**TARGET, "capacity": {}}]}, ["targets.0.capacity", "exactly one of rps, file or profile"]),
        ({"targets": [{**TARGET, "actuator": {"kind": "kubernetes"}}]}, ["namespace and workload"]),
        ({"targets": [{**TARGET, "actuator": {"kind": "helm"}}]}, ["targets.0.actuator.kind", "'helm'"]),
        ({"targets": [TARGET, TARGET]}, ["unique", "m given twice"]),
        ({"targets": [TARGET], "intervl_s": 5}, ["intervl_s", "Extra inputs are not permitted"]),
        ({"targets": []}, ["targets"]),
        ({"targets": [TARGET], "prometheus": {"stale_after_s": -1}}, ["prometheus.stale_after_s", "got -1"]),
    ],
)
def test_errors_name_the_key_and_value(raw, words):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "autoscaler.yaml")
    for word in words:
        assert word in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_each_target_exports_its_gpu_price_and_gpus_per_replica():
    from autoscaler.metrics import AutoscalerMetrics
    from headroom.autoscale import build_loop

    config = parse_config(
        {
            "targets": [
                {"name": "a", "gpu": "H100", "price_per_gpu_hour": 3.5, "gpus_per_replica": 4, "capacity": {"rps": 2}},
                {"name": "b", "gpu": "H100", "capacity": {"rps": 2}},
            ]
        }
    )
    metrics = AutoscalerMetrics()
    build_loop(config, metrics, source=object())
    value = metrics.registry.get_sample_value
    assert value("headroom_gpu_price_dollars_per_hour", {"model_name": "a", "gpu": "H100"}) == 3.5
    assert value("headroom_gpus_per_replica", {"model_name": "a"}) == 4
    assert value("headroom_gpu_price_dollars_per_hour", {"model_name": "b", "gpu": "H100"}) > 0  # the listed price
    assert value("headroom_gpus_per_replica", {"model_name": "b"}) == 1
