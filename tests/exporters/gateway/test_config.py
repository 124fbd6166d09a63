import pytest

from exporters.gateway.config import GatewayConfigError, load_gateway_config, parse_gateway_config


def test_defaults_and_files_beside_the_config(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "port: 9000\nkeys_file: keys.yaml\nbackends: {file_sd: targets.json}\nmodels: {llama: {max_queue: 8}}\n"
    )
    config = load_gateway_config(path)
    assert config.port == 9000 and config.keys_file == tmp_path / "keys.yaml"
    assert config.backends.file_sd == tmp_path / "targets.json" and config.models["llama"].max_queue == 8
    assert parse_gateway_config(None).max_in_flight_per_backend == 256


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"prot": 1}, "prot"),
        ({"models": {"m": {"max_queue": -1}}}, "models.m.max_queue"),
        ({"backends": {"kubernetes_service": "vllm"}}, "namespace/name"),
        ({"routing": "random"}, "routing"),
        ([1], "mapping"),
        ({"backends": {"static": ["nonsense"]}}, "'nonsense' is not host:port"),
        ({"backends": {"static": ["127.0.0.1:99999"]}}, "port '99999'"),
        ({"backends": {"static": ["a b:80"]}}, "not a host name"),
        ({"limits": {"header_timeout_s": 0}}, "limits.header_timeout_s"),
        ({"tls": {"cert_file": "c.pem"}}, "tls.key_file"),
    ],
)
def test_bad_config_names_the_key(raw, named):
    with pytest.raises(GatewayConfigError, match=named.replace(".", r"\.")):
        parse_gateway_config(raw)


def test_unreadable_or_bad_yaml_names_the_file(tmp_path):
    with pytest.raises(GatewayConfigError, match="cannot read"):
        load_gateway_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: [\n")
    with pytest.raises(GatewayConfigError, match="bad.yaml: not valid YAML"):
        load_gateway_config(bad)


def test_flags_are_checked_like_the_file(tmp_path):
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "headroom", "gateway", "--backend", "127.0.0.1:99999", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "port '99999'" in run.stderr
