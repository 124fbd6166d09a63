"""The KEDA ScaledObject's query, as rendered, in promtool against the series two autoscaler replicas export: it
follows the leader's count, and the other's when the lease changes hands."""

import shutil
import subprocess

import yaml

from serving.k8s.render import ServingSettings, scaled_object
from serving.profiles import load_profile


def test_the_query_follows_the_leaders_count_across_a_handover(tmp_path):
    profile = load_profile("llama-3.1-8b-h100")
    (trigger,) = scaled_object(profile, ServingSettings(namespace="llm", scaler="keda"))["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    desired = 'headroom_autoscaler_desired_replicas{{namespace="llm",target="{}",instance="{}",job="autoscaler"}}'
    leader = 'headroom_autoscaler_leader{{namespace="llm",instance="{}",job="autoscaler"}}'
    other = 'headroom_autoscaler_desired_replicas{{namespace="other",target="{}",instance="c",job="autoscaler"}}'
    tests = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [  # a leads for 4 samples, then b; a namespace beside it asks for 40
                    {"series": desired.format(profile.model.name, "a"), "values": "5x8"},
                    {"series": desired.format(profile.model.name, "b"), "values": "3x8"},
                    {"series": leader.format("a"), "values": "1 1 1 1 0 0 0 0 0"},
                    {"series": leader.format("b"), "values": "0 0 0 0 1 1 1 1 1"},
                    {"series": other.format(profile.model.name), "values": "40x8"},
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": "30s", "exp_samples": [{"labels": "{}", "value": 5}]},
                    {"expr": query, "eval_time": "90s", "exp_samples": [{"labels": "{}", "value": 3}]},
                ],
            }
        ],
    }
    path = tmp_path / "keda.test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus (make install)"
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
