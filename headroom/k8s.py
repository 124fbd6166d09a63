"""`headroom k8s render`: write a kustomize overlay for a profile (see serving/k8s/render.py)."""

from __future__ import annotations

from pathlib import Path

from dashboards.build import compile_mixin
from dashboards.build import render as render_mixin
from dashboards.build import write as write_files
from exporters.gateway.tenants import KeyRing
from serving.engine.profile import Profile
from serving.k8s.render import KEYS_NAME, ServingSettings, overlay_files
from serving.profiles import list_profiles, load_profile

OVERLAYS_DIR = Path(__file__).resolve().parents[1] / "serving" / "k8s" / "overlays"


def slo_rule(profile: Profile, slo_ttft_s: float, slo_itl_s: float) -> str:
    """The mixin's PrometheusRule with its SLO alerts at this model's thresholds (the dashboards do not depend on it)."""
    compiled = compile_mixin(
        {"sloByModel": {profile.model.name: {"ttftSeconds": slo_ttft_s, "tpotSeconds": slo_itl_s}}}
    )
    return render_mixin(compiled)["prometheus-rule.yaml"]


def overlay(profile: Profile, out: Path, settings: ServingSettings, with_keys: bool = False) -> dict[str, str]:
    return overlay_files(
        profile,
        out.resolve(),
        settings,
        slo_rule(profile, settings.slo_ttft_s, settings.slo_itl_s),
        KEYS_NAME if with_keys else None,
    )


def overlay_name(profile: Profile, settings: ServingSettings) -> str:
    """The shipped overlay's folder: the profile's name, with `-keda` where KEDA scales."""
    return profile.name + ("-keda" if settings.scaler == "keda" else "")


def settings_from_args(args) -> ServingSettings:
    return ServingSettings(
        namespace=args.namespace,
        max_output_tokens=args.max_output_tokens,
        release=args.release,
        slo_ttft_s=args.slo_ttft,
        slo_itl_s=args.slo_itl,
        min_replicas=args.replicas_min,
        max_replicas=args.replicas_max,
        prometheus_url=args.prometheus_url,
        price_per_gpu_hour=args.price,
        scaler=args.scaler,
    )


def shipped_profile(name: str) -> Profile:
    """A shipped profile: the autoscaler in Headroom's image loads its profile by name."""
    if name not in list_profiles():
        raise ValueError(
            f"--profile {name!r}: render takes a shipped profile (the autoscaler in Headroom's image "
            f"loads it by name); shipped: {', '.join(list_profiles())}"
        )
    return load_profile(name)


def gateway_keys(path: str) -> str:
    """The keys file's text, checked as the gateway checks it (errors name the line, never a key)."""
    KeyRing.from_file(Path(path))
    return Path(path).read_text()


def render(args) -> int:
    profile = shipped_profile(args.profile)
    settings = settings_from_args(args)
    keys = gateway_keys(args.keys_file) if args.keys_file else None
    out = Path(args.out) if args.out else OVERLAYS_DIR / overlay_name(profile, settings)
    files = overlay(profile, out, settings, with_keys=keys is not None)
    if keys is not None:  # credentials: readable by the owner only, and kept out of git beside them
        files = {**files, KEYS_NAME: keys, ".gitignore": f"{KEYS_NAME}\n"}
    for path in write_files(files, out, private=frozenset({KEYS_NAME})):  # the overlay whole or not at all
        print(path)
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--profile", required=True, help="a shipped profile's name (headroom profiles lists them)")
    parser.add_argument("--namespace", default="headroom")
    parser.add_argument("--max-output-tokens", type=int, default=4096, help="the longest answer a drain waits for")
    parser.add_argument(
        "--slo-ttft",
        type=float,
        default=1.0,
        metavar="S",
        help="the SLO's TTFT threshold: the autoscaler's target, the gateway's SLI and the alerts",
    )
    parser.add_argument(
        "--slo-itl",
        type=float,
        default=0.05,
        metavar="S",
        help="the SLO's time per output token: the autoscaler's target, the gateway's SLI and the alerts",
    )
    parser.add_argument(
        "--release",
        default="kube-prometheus-stack",
        help="the `release` label kube-prometheus-stack selects monitors and rules by",
    )
    parser.add_argument(
        "--keys-file",
        metavar="FILE",
        help="the gateway's API keys (YAML, key: tenant): copied into "
        "the overlay (owner-only, git-ignored) as the Secret headroom-gateway-keys; without it, create "
        "that Secret yourself",
    )
    parser.add_argument("--replicas-min", type=int, default=1, metavar="N", help="the autoscaler's lower bound")
    parser.add_argument("--replicas-max", type=int, default=8, metavar="N", help="the autoscaler's upper bound")
    parser.add_argument(
        "--prometheus-url", default=ServingSettings.prometheus_url, help="the Prometheus the autoscaler (and KEDA) read"
    )
    parser.add_argument(
        "--price",
        type=float,
        default=None,
        metavar="USD",
        help="price of one GPU-hour (default: the lowest on-demand price listed for the profile's GPU)",
    )
    parser.add_argument(
        "--scaler",
        choices=("headroom", "keda"),
        default="headroom",
        help="headroom: the autoscaler writes vLLM's replica count; keda: it exports the count and a "
        "KEDA ScaledObject applies it",
    )
    parser.add_argument("--out", help="the overlay's folder (default: serving/k8s/overlays/PROFILE)")
