"""`headroom k8s render`: write a kustomize overlay for a profile (see serving/k8s/render.py)."""

from __future__ import annotations

import os
from pathlib import Path

from dashboards.build import compile_mixin
from dashboards.build import render as render_mixin
from serving.engine.profile import Profile
from serving.k8s.render import ServingSettings, overlay_files
from serving.profiles import load_profile

OVERLAYS_DIR = Path(__file__).resolve().parents[1] / "serving" / "k8s" / "overlays"


def monitoring_files(profile: Profile, slo_ttft_s: float, slo_itl_s: float) -> dict[str, str]:
    """The mixin's PrometheusRule (its SLO alerts at this model's thresholds) and dashboard ConfigMaps."""
    compiled = compile_mixin({"sloByModel": {profile.model.name: {"ttftSeconds": slo_ttft_s, "tpotSeconds": slo_itl_s}}})
    built = render_mixin(compiled)
    return {name: built[name] for name in ("prometheus-rule.yaml", "dashboard-configmaps.yaml")}


def overlay(profile: Profile, out: Path, settings: ServingSettings, slo_ttft_s: float = 1.0,
            slo_itl_s: float = 0.05) -> dict[str, str]:
    return overlay_files(profile, out.resolve(), settings, monitoring_files(profile, slo_ttft_s, slo_itl_s))


def render(args) -> int:
    profile = load_profile(args.profile)
    if args.max_output_tokens < 1:
        raise ValueError(f"--max-output-tokens must be at least 1, got {args.max_output_tokens}")
    if not (args.slo_ttft > 0 and args.slo_itl > 0):
        raise ValueError(f"--slo-ttft and --slo-itl must be positive, got {args.slo_ttft:g} and {args.slo_itl:g}")
    out = Path(args.out) if args.out else OVERLAYS_DIR / profile.name
    files = overlay(profile, out, ServingSettings(args.namespace, args.max_output_tokens, args.release),
                    args.slo_ttft, args.slo_itl)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():  # each file whole or not at all
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
        print(out / name)
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--profile", required=True, help="a shipped profile name or a profile YAML file")
    parser.add_argument("--namespace", default="headroom")
    parser.add_argument("--max-output-tokens", type=int, default=4096, help="the longest answer a drain waits for")
    parser.add_argument("--slo-ttft", type=float, default=1.0, metavar="S", help="the alerts' TTFT threshold")
    parser.add_argument("--slo-itl", type=float, default=0.05, metavar="S", help="the alerts' time-per-output-token threshold")
    parser.add_argument("--release", default="kube-prometheus-stack",
                        help="the `release` label kube-prometheus-stack selects monitors and rules by")
    parser.add_argument("--out", help="the overlay's folder (default: serving/k8s/overlays/PROFILE)")
