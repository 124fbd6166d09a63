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
    s = Summary({"cost_usd": 20.0, "gpu_hours": 2.0, "output_tokens": 4e6}, usd_per_gpu_hour=10.0)
    assert s.cost_usd == 20.0 and s.cost_per_million_output_tokens == 5.0
    assert math.isnan(Summary({"cost_usd": 10.0, "output_tokens": 0.0}, 10.0).cost_per_million_output_tokens)


def test_summary_cost_reads_the_recorded_series_and_falls_back_to_the_exporters():
    from headroom.summary import summary_queries

    queries = summary_queries(600, 5, usd_per_gpu_hour=12.5, rule_interval_s=30)
    assert queries["cost_usd"].startswith(
        "sum(sum_over_time(model_name:headroom_cost_dollars_per_hour:sum[600s])) * 30 / 3600"
    )
    assert queries["cost_usd"].endswith("* 12.5") and "DCGM_FI_DEV_GPU_UTIL[600s]" in queries["cost_usd"]
    assert "model_name:headroom_gpus:sum[600s]" in queries["gpu_hours"]
