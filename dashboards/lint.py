"""A lint of the mixin's PromQL (pure): the mistakes published vLLM dashboards make, caught before a user sees
"No data" or a wrong number. Each check returns the problems it found in one expression, as sentences."""

from __future__ import annotations

import re

_NAME = re.compile(
    r"(?<![\w:\"$])([a-zA-Z_:][\w:]*)(?=\s*[{\[)]|\s*$|\s+(?:by|without|and|or|unless|on|/|\*|\+|-|>|<|==|!=))"
)
_COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
_RANGE_FUNCTIONS = ("rate", "irate", "increase")
_KEYWORDS = {
    "sum",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "avg",
    "max",
    "min",
    "count",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "histogram_quantile",
    "label_replace",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "count_over_time",
    "predict_linear",
    "absent",
    "clamp_min",
    "clamp_max",
    "topk",
    "bottomk",
    "time",
    "timestamp",
    "vector",
    "scalar",
    "abs",
    "delta",
    "deriv",
    "changes",
    "resets",
    "bool",
    "offset",
    "le",
    "quantile_over_time",
    "sum_over_time",
    "last_over_time",
    "absent_over_time",
}


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects (recorded series included), not functions, labels or keywords."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", without_labels
    )
    return {n for n in _NAME.findall(without_groupings) if n not in _KEYWORDS and not n.replace(".", "").isdigit()}


def _enclosing_function(expr: str, index: int) -> str | None:
    """The name of the innermost call whose parentheses hold `index`."""
    depth = 0
    for i in range(index - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth == 0:
                match = re.search(r"([a-zA-Z_]+)\s*$", expr[:i])
                return match.group(1) if match else None
            depth -= 1
    return None


def counters_without_rate(expr: str) -> list[str]:
    """A counter (or a histogram's _bucket, _count, _sum) must be read through rate, irate or increase."""
    problems = []
    for match in re.finditer(r"[a-zA-Z_:][\w:]*", expr):
        name = match.group(0)
        if ":" in name and name.count(":") == 2 and not name.startswith("vllm:"):
            continue  # a recorded series (level:metric:operations) is already a rate or a ratio
        if name.endswith(_COUNTER_SUFFIXES) and name in metric_names(expr):
            if _enclosing_function(expr, match.start()) not in _RANGE_FUNCTIONS:
                problems.append(f"counter {name} is not read through rate() or increase()")
    return problems


def sums_without_counts(expr: str) -> list[str]:
    """A histogram's _sum means nothing without its _count (an average is rate(_sum) / rate(_count))."""
    names = metric_names(expr)
    return [
        f"{n} without {n[:-4]}_count" for n in sorted(names) if n.endswith("_sum") and f"{n[:-4]}_count" not in names
    ]


def quantiles_without_le(expr: str) -> list[str]:
    """histogram_quantile over buckets aggregated without `le` returns nothing or nonsense."""
    problems = []
    for match in re.finditer(r"histogram_quantile\s*\(", expr):
        depth, i = 1, match.end()
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        inner = expr[match.end() : i]
        if not re.search(r"\bby\s*\([^)]*\ble\b", inner):
            problems.append("histogram_quantile over an aggregation without `le` in its by (...)")
    return problems


def unknown_vllm_series(expr: str, known: set[str]) -> list[str]:
    """Every vllm: series named exists in a real vLLM scrape or the emulator's (so a rename fails a test)."""
    problems = []
    for name in sorted(n for n in metric_names(expr) if n.startswith("vllm:")):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if name not in known and base not in known:
            problems.append(f"{name} is in no vLLM 0.20.2 scrape nor the emulator's")
    return problems


def lint(expr: str, known_vllm: set[str]) -> list[str]:
    return (
        counters_without_rate(expr)
        + sums_without_counts(expr)
        + quantiles_without_le(expr)
        + unknown_vllm_series(expr, known_vllm)
    )


def exposition_names(text: str) -> set[str]:
    """Family and sample names in a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
