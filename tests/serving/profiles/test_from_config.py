"""`headroom profiles add`: a config.json becomes a profile file that loads anywhere by path, whole or not at all."""

import json

import pytest

from serving.profiles import load_profile
from tests.helpers import cli_exit_code as run
from tests.serving.profiles.test_hf_config import LLAMA_31_8B, QWEN3_30B_A3B


def write_config(folder, config):
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_a_written_profile_loads_and_matches_the_shipped_one(tmp_path, capsys):
    config = write_config(tmp_path, LLAMA_31_8B)
    out = tmp_path / "llama.yaml"
    args = ["profiles", "add", "--config", str(config), "--gpu", "H100", "--out", str(out)]
    assert run([*args, "--model-name", "meta-llama/Llama-3.1-8B-Instruct"]) == 0
    written, shipped = load_profile(str(out)), load_profile("llama-3.1-8b-h100")
    assert written.kv_capacity_tokens == pytest.approx(shipped.kv_capacity_tokens, rel=0.01)
    assert written.scheduler.max_num_seqs == 1024 and "450" in capsys.readouterr().out
    assert written.efficiency == shipped.efficiency  # a dense model: the shipped set
    assert run(args) == 2  # never over an existing file


def test_an_moe_model_on_two_gpus(tmp_path, capsys):
    config = write_config(tmp_path, QWEN3_30B_A3B)
    out = tmp_path / "qwen.yaml"
    assert run(["profiles", "add", "--config", str(config), "--gpu", "H100", "--tp", "2", "--out", str(out)]) == 0
    profile = load_profile(str(out))
    assert profile.gpus == 2 and profile.model.experts == 128 and profile.name.endswith("-h100-tp2")
    # an MoE model: the set with the launch cost of steps beyond the CUDA graphs, measured on this very model
    assert profile.efficiency.eager_step_overhead_s > 0.01 and profile.efficiency.request_overhead_s > 0


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--gpu", "B300"], "unknown GPU 'B300'"),
        (["--gpu", "L4"], "leave no KV cache"),  # 30B parameters do not fit 24 GiB
        (["--gpu", "H100", "--tp", "0"], "--tp must be at least 1"),
    ],
)
def test_bad_choices_are_named_and_nothing_is_written(tmp_path, capsys, flags, named):
    config = write_config(tmp_path, QWEN3_30B_A3B)
    out = tmp_path / "p.yaml"
    assert run(["profiles", "add", "--config", str(config), "--out", str(out), *flags]) == 2
    assert named in capsys.readouterr().err and not out.exists()
