"""Pure pieces of the local stack: Prometheus config, PromQL summary arithmetic, file_sd groups."""

import math

from headroom.prometheus import scrape_config
from headroom.summary import Summary, summary_queries


def test_scrape_config_has_file_sd_jobs_and_gateway(tmp_path):
    cfg = scrape_config(tmp_path, "127.0.0.1:8080", 5)
    assert cfg["global"]["scrape_interval"] == "5s"
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["vllm"]["file_sd_configs"][0]["files"] == [str(tmp_path / "replicas.json")]
    assert jobs["dcgm"]["file_sd_configs"][0]["files"] == [str(tmp_path / "gpus.json")]
    assert jobs["dcgm"]["honor_labels"] is True
    assert jobs["gateway"]["static_configs"][0]["targets"] == ["127.0.0.1:8080"]


def test_summary_queries_use_contract_names():
    q = summary_queries(70, 5, 60)
    assert "vllm:generation_tokens_total" in q["output_tokens_per_s"] and "/ 60" in q["output_tokens_per_s"]
    assert "vllm:time_to_first_token_seconds_bucket" in q["ttft_p95_s"]
    assert "DCGM_FI_DEV_GPU_UTIL" in q["gpu_hours"] and "* 5 / 3600" in q["gpu_hours"]


def test_cost_per_million_tokens():
    s = Summary({"gpu_hours": 2.0, "output_tokens": 4e6}, usd_per_gpu_hour=10.0)
    assert s.cost_usd == 20.0 and s.cost_per_million_output_tokens == 5.0
    assert math.isnan(Summary({"gpu_hours": 1.0, "output_tokens": 0.0}, 10.0).cost_per_million_output_tokens)
