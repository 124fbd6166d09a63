#!/bin/bash
# Here, after prep.sh: what an MoE run adds to the dense payload, in .vcarry/p04 (about 33 MiB, carried with p03):
# vLLM's MoE kernels (_moe_C, which prep.sh leaves out for dense models) and Qwen3-30B-A3B's model folder.
# usage: PY=<python with tokenizers> bash bench/vllm_device/prep_moe.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
W=${WORK:-/tmp/vprep}; PY=${PY:-python3}
D="$REPO/.vcarry/p04"; rm -rf "$D" "$W/moe"; mkdir -p "$D" "$W/moe/model"
[ -f "$W"/whl/vllm-0.20.2-*.whl ] || "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_35_x86_64 -d "$W/whl" "vllm==0.20.2"
unzip -q -o "$W"/whl/vllm-0.20.2-*.whl vllm/_moe_C.abi3.so -d "$W/moe"
xz -9 -T0 -c "$W/moe/vllm/_moe_C.abi3.so" > "$D/moe_C.abi3.so.xz"
"$PY" "$HERE/make_model.py" "$W/moe/model" qwen3-30b-a3b
tar -czf "$D/model_moe.tgz" -C "$W/moe/model" .
du -sh "$D"/*
