"""`headroom k8s render`: write a kustomize overlay for a profile (see serving/k8s/render.py)."""

from __future__ import annotations

import os
from pathlib import Path

from serving.k8s.render import ServingSettings, overlay_files
from serving.profiles import load_profile

OVERLAYS_DIR = Path(__file__).resolve().parents[1] / "serving" / "k8s" / "overlays"


def render(args) -> int:
    profile = load_profile(args.profile)
    if args.max_output_tokens < 1:
        raise ValueError(f"--max-output-tokens must be at least 1, got {args.max_output_tokens}")
    out = Path(args.out) if args.out else OVERLAYS_DIR / profile.name
    files = overlay_files(profile, out.resolve(), ServingSettings(args.namespace, args.max_output_tokens))
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
    parser.add_argument("--out", help="the overlay's folder (default: serving/k8s/overlays/PROFILE)")
