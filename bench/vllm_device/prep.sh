#!/bin/bash
# Here (a machine with PyPI): the payload the GPU host needs, staged in parts of at most 45 MiB under .vcarry/pNN
# (git-ignored): vLLM 0.20.2 without its FlashAttention 2 kernels (Hopper runs FA3) and, for dense models, without
# _moe_C; the dependencies the host lacks (deps_pins.txt); the dummy-weight model folder (make_model.py).
# usage: PY=<python with tokenizers> bash bench/vllm_device/prep.sh [MODEL]   (MODEL: llama-3.1-8b, or moe to keep _moe_C)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
W=${WORK:-/tmp/vprep}; rm -rf "$W"; mkdir -p "$W/whl" "$W/stage/site" "$W/stage/model"
PY=${PY:-python3}
MODEL=${1:-llama-3.1-8b}
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp"
for p in manylinux_2_35 manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1 manylinux_2_5; do
  PLAT="$PLAT --platform ${p}_x86_64"
done
"$PY" -m pip download -q --no-deps $PLAT -d "$W/whl" "vllm==0.20.2"
"$PY" -m pip download -q --no-deps $PLAT -d "$W/whl" -r "$HERE/deps_pins.txt"
for f in "$W"/whl/*.whl; do unzip -q -o "$f" -d "$W/stage/site"; done
rm -f "$W/stage/site/xgrammar/lib/libxgrammar.a"                       # a static library, unused at run time
strip --strip-debug "$W/stage/site/xgrammar/libxgrammar_bindings.so"   # 53 MB of debug symbols
rm -f "$W/stage/site/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so"         # FA2: Hopper uses FA3 (imported in try/except)
[ "$MODEL" = moe ] || rm -f "$W/stage/site/vllm/_moe_C.abi3.so"       # dense models never load it
find "$W/stage/site" -name __pycache__ -type d -prune -exec rm -rf {} +
"$PY" "$HERE/make_model.py" "$W/stage/model"
(cd "$W/stage" && tar -cf - site model | xz -9 -T0 -q > "$W/payload.tar.xz")   # xz: the host may lack zstd
rm -rf "$REPO"/.vcarry/p[0-9][0-9]
(cd "$W" && split -b 45M -d -a 2 payload.tar.xz chunk.)
i=0
for c in "$W"/chunk.*; do
  i=$((i + 1)); d=$(printf "%s/.vcarry/p%02d" "$REPO" $i); mkdir -p "$d"; mv "$c" "$d/"
done
(cd "$W" && sha256sum payload.tar.xz | cut -d' ' -f1) > "$REPO/.vcarry/p01/payload.sha256"
du -sh "$W/payload.tar.xz" "$REPO"/.vcarry/p*/
