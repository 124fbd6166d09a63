"""`headroom k8s render` from the command line: the flags reach the overlay; bad settings are named and write nothing."""

import yaml

from tests.helpers import cli_exit_code as exit_code


def test_flags_reach_the_autoscaler_the_gateway_and_keda(tmp_path, capsys):
    out = tmp_path / "ours"
    code = exit_code(
        [
            "k8s",
            "render",
            "--profile",
            "llama-3.1-8b-h100",
            "--namespace",
            "llm",
            "--replicas-min",
            "2",
            "--replicas-max",
            "5",
            "--slo-ttft",
            "0.5",
            "--price",
            "2.5",
            "--scaler",
            "keda",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    written = {p.name for p in out.iterdir()}
    assert {"kustomization.yaml", "scaled-object.yaml", "autoscaler-config.yaml", "gateway-config.yaml"} <= written
    assert len(capsys.readouterr().out.splitlines()) == len(written)  # one line per file written
    autoscaler = yaml.safe_load(yaml.safe_load((out / "autoscaler-config.yaml").read_text())["data"]["autoscaler.yaml"])
    (target,) = autoscaler["targets"]
    assert (target["min_replicas"], target["max_replicas"], target["price_per_gpu_hour"]) == (2, 5, 2.5)
    assert target["slo"]["ttft_s"] == 0.5 and target["actuator"] == {
        "kind": "metric",
        "namespace": "llm",
        "workload": "vllm",
    }
    gateway = yaml.safe_load(yaml.safe_load((out / "gateway-config.yaml").read_text())["data"]["gateway.yaml"])
    assert gateway["backends"]["kubernetes_service"] == "llm/vllm"
    assert yaml.safe_load((out / "kustomization.yaml").read_text().split("\n", 1)[1])["namespace"] == "llm"
    assert yaml.safe_load((out / "namespace.yaml").read_text())["metadata"]["name"] == "llm"
    assert 'le="0.5"' in (out / "prometheus-rule.yaml").read_text()  # the alerts burn on the same SLO


def test_bad_settings_are_named_and_nothing_is_written(tmp_path, capsys):
    for argv, words in (
        (["--replicas-min", "5", "--replicas-max", "2"], "got min 5 and max 2"),
        (["--slo-itl", "0"], "must be positive"),
        (["--max-output-tokens", "0"], "at least 1"),
    ):
        code = exit_code(["k8s", "render", "--profile", "llama-3.1-8b-h100", *argv, "--out", str(tmp_path / "x")])
        assert code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_keys_file_becomes_the_gateways_secret_kept_private(tmp_path):
    from tests.serving.k8s.test_render import kustomize

    keys = tmp_path / "keys.yaml"
    keys.write_text("sk-team-a-0123456789: team-a\n")
    out = tmp_path / "ours"
    assert (
        exit_code(["k8s", "render", "--profile", "llama-3.1-8b-h100", "--keys-file", str(keys), "--out", str(out)]) == 0
    )
    assert (out / "gateway-keys.yaml").stat().st_mode & 0o077 == 0 and (
        out / ".gitignore"
    ).read_text() == "gateway-keys.yaml\n"
    docs = kustomize(out)
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "headroom-gateway")
    mounted = {v["secret"]["secretName"] for v in gateway["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert mounted == {secret["metadata"]["name"]} and secret["metadata"]["name"].startswith("headroom-gateway-keys-")
    assert set(secret["data"]) == {"keys.yaml"}


def test_a_bad_keys_file_or_a_profile_file_is_refused(tmp_path, capsys):
    keys = tmp_path / "keys.yaml"
    keys.write_text("short: team-a\n")
    assert (
        exit_code(
            ["k8s", "render", "--profile", "llama-3.1-8b-h100", "--keys-file", str(keys), "--out", str(tmp_path / "x")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "line 1: API keys are strings of at least 8 characters" in err and "short" not in err.split("line 1")[1]
    assert exit_code(["k8s", "render", "--profile", str(keys), "--out", str(tmp_path / "x")]) == 2
    assert "render takes a shipped profile" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
