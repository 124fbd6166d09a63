#!/bin/bash
# On the GPU host, from the repository root: bash bench/vllm_device/device.sh STAGE...
# Stages: probe stash setup serve gpu grid metrics stopserve latency collect. The payload's parts come in
# .vcarry/pNN, one or two a call (a call carries at most 64 MiB); they wait in /tmp/pay while the machine stays warm.
# Env: GRID (a, b, m, l1, l2, p or x: which runs), DEADLINE_S (no run starts after this many seconds), CALL (names this call's logs),
# MODEL (llama, the default, or qwen3-moe: Qwen3-30B-A3B from .vcarry/p04, staged by prep_moe.sh, after `moe`).
S=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$S/../.." && pwd)
R=/tmp/vl      # site/ (vLLM and the dependencies) and model/
W=/tmp/vwork   # results/ and logs/, kept while the machine stays warm
mkdir -p /tmp/pay $W/results $W/logs
export PYTHONUNBUFFERED=1 PYTHONPATH=$R/site VLLM_USE_FLASHINFER_SAMPLER=0 TVM_FFI_DISABLE_TORCH_C_DLPACK=1 \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
T0=$(date +%s); CALL=${CALL:-c}; DEADLINE=$((T0 + ${DEADLINE_S:-470}))
[ -e $W/logs/call_$CALL ] || touch -d @$((T0 - 1)) $W/logs/call_$CALL  # what `collect` counts as this call's
el() { echo "[t+$(( $(date +%s) - T0 ))s]"; }
fetch() { python3 -c "import sys,urllib.request;sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1],timeout=5).read())" "$1"; }
if [ "${MODEL:-llama}" = qwen3-moe ]; then
  MODEL_DIR=$R/model_moe; export SERVED_MODEL=Qwen/Qwen3-30B-A3B; MAX_LEN=8192  # 61 GB of weights leave ~5 GB of KV
else
  MODEL_DIR=$R/model; export SERVED_MODEL=meta-llama/Llama-3.1-8B-Instruct; MAX_LEN=20480
fi
SERVE_ARGS="--served-model-name $SERVED_MODEL --load-format dummy --max-model-len $MAX_LEN
  --gpu-memory-utilization 0.9 --attention-backend FLASH_ATTN"
# name:input:output:concurrency:prompts:rate:seed[:prefix]; closed loops (concurrency > 0) get several waves
GRID_a="warmup:256:64:16:32:inf:99
i128_o128_c1:128:128:1:8:inf:11 i128_o128_c8:128:128:8:48:inf:12 i128_o128_c32:128:128:32:160:inf:13
i128_o128_c128:128:128:128:512:inf:14 i128_o128_c256:128:128:256:768:inf:15
i1024_o256_c1:1024:256:1:6:inf:21 i1024_o256_c8:1024:256:8:40:inf:22 i1024_o256_c32:1024:256:32:128:inf:23
i1024_o256_c128:1024:256:128:384:inf:24
i4096_o256_c1:4096:256:1:5:inf:31 i4096_o256_c8:4096:256:8:32:inf:32 i4096_o256_c32:4096:256:32:96:inf:33
i4096_o256_c128:4096:256:128:256:inf:34"
GRID_p="poisson_r5_i1024_o256:1024:256:0:240:5:71 poisson_r10_i1024_o256:1024:256:0:300:10:72
poisson_r20_i1024_o256:1024:256:0:400:20:73 poisson_r40_i1024_o256:1024:256:0:600:40:74
poisson_r2_i8192_o256:8192:256:0:120:2:75 poisson_r1_i16384_o128:16384:128:0:60:1:76"
GRID_b="i8192_o256_c1:8192:256:1:4:inf:41 i8192_o256_c8:8192:256:8:24:inf:42 i8192_o256_c32:8192:256:32:64:inf:43
i16384_o128_c1:16384:128:1:3:inf:51 i16384_o128_c8:16384:128:8:16:inf:52 i16384_o128_c32:16384:128:32:48:inf:53
prefix3072_i1024_o256_c8:1024:256:8:40:inf:61:3072 prefix3072_i1024_o256_c32:1024:256:32:128:inf:62:3072
prefix12288_i4096_o128_c8:4096:128:8:24:inf:63:12288 $GRID_p"
# the closed loops again with 8 to 10 waves each (4 to 6 where one wave takes over 15 s), so the first wave weighs
# little; L1 fits one call after setup and serve, L2 the next
GRID_l1="warmup:256:64:16:32:inf:99
i128_o128_c1:128:128:1:32:inf:111 i1024_o256_c1:1024:256:1:16:inf:121 i4096_o256_c1:4096:256:1:12:inf:131
i8192_o256_c1:8192:256:1:8:inf:141 i16384_o128_c1:16384:128:1:8:inf:151
i128_o128_c8:128:128:8:80:inf:112 i128_o128_c32:128:128:32:320:inf:113 i128_o128_c128:128:128:128:1280:inf:114
i128_o128_c256:128:128:256:2048:inf:115 i1024_o256_c8:1024:256:8:80:inf:122 i1024_o256_c32:1024:256:32:320:inf:123
i1024_o256_c128:1024:256:128:1024:inf:124"
GRID_l2="i4096_o256_c8:4096:256:8:80:inf:132 i4096_o256_c32:4096:256:32:256:inf:133
i8192_o256_c8:8192:256:8:64:inf:142 i16384_o128_c8:16384:128:8:64:inf:152 i8192_o256_c32:8192:256:32:192:inf:143
i4096_o256_c128:4096:256:128:512:inf:134 i16384_o128_c32:16384:128:32:128:inf:153"
# the shared-prefix points with 8 to 10 waves each, on their own seeds
GRID_x="warmup:256:64:16:32:inf:99 prefix3072_i1024_o256_c8:1024:256:8:80:inf:161:3072
prefix3072_i1024_o256_c32:1024:256:32:320:inf:162:3072 prefix12288_i4096_o128_c8:4096:128:8:64:inf:163:12288"
GRID_m="warmup:256:64:16:32:inf:99
i128_o128_c1:128:128:1:8:inf:11 i128_o128_c8:128:128:8:48:inf:12 i128_o128_c32:128:128:32:160:inf:13
i1024_o256_c1:1024:256:1:6:inf:21 i1024_o256_c8:1024:256:8:40:inf:22 i1024_o256_c32:1024:256:32:128:inf:23
i4096_o256_c1:4096:256:1:5:inf:31 i4096_o256_c8:4096:256:8:32:inf:32
poisson_r5_i1024_o256:1024:256:0:240:5:71"
for stage in "$@"; do
echo "$(el) ===== stage $stage"
case $stage in
probe)
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv
  nproc; free -g | head -2; df -h /tmp | tail -1
  python3 -c "import torch,sys;print(sys.version);print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" ;;
stash)
  for d in .vcarry/p[0-9][0-9]; do [ -d "$d" ] && cp -n "$d"/* /tmp/pay/; done; ls -la /tmp/pay ;;
setup)
  got=$(cd /tmp/pay && cat chunk.* | sha256sum | cut -d' ' -f1); want=$(cat /tmp/pay/payload.sha256)
  [ "$got" = "$want" ] || { echo "payload checksum $got, expected $want: a part is missing"; exit 3; }
  rm -rf $R; mkdir -p $R
  cat /tmp/pay/chunk.* | python3 -c "import sys,tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('$R')"
  du -sh $R/site $R/model
  python3 -c "import vllm, vllm.entrypoints.cli.main, vllm.benchmarks.serve; print('vllm', vllm.__version__)" 2>&1 | tail -2 ;;
moe)  # the MoE kernels dense payloads leave out, and the MoE model folder (.vcarry/p04, staged into /tmp/pay)
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('/tmp/pay/moe_C.abi3.so.xz'), open('$R/site/vllm/_moe_C.abi3.so','wb'))"
  rm -rf $R/model_moe; mkdir -p $R/model_moe; tar -xzf /tmp/pay/model_moe.tgz -C $R/model_moe
  ls -la $R/site/vllm/_moe_C.abi3.so $R/model_moe ;;
serve)
  if fetch http://localhost:8000/health >/dev/null 2>&1; then echo "server already up"; continue; fi
  date +%s.%N > $W/logs/server_start_epoch
  setsid nohup python3 -m vllm.entrypoints.cli.main serve $MODEL_DIR $SERVE_ARGS --port 8000 \
    > $W/logs/server.log 2>&1 < /dev/null &
  echo $! > $W/logs/server.pid
  python3 "$S/wait_ready.py" http://localhost:8000/health "$(cat $W/logs/server_start_epoch)" "$(cat $W/logs/server.pid)" \
    $W/results/cold_start_seconds.txt
  grep -E "KV cache|num_gpu_blocks|Maximum concurrency|max_num_seqs|max_num_batched|FlashAttention|backend|took" \
    $W/logs/server.log | head -30
  fetch http://localhost:8000/metrics > $W/results/metrics_idle.txt ;;
gpu)
  PYTHONPATH=$REPO:$R/site setsid nohup python3 -c "from exporters.gpu.nvml_reader import NvmlSource
from exporters.gpu.server import GpuExporterConfig, serve
serve(GpuExporterConfig(host='127.0.0.1', port=9400, interval_s=1.0, hostname='h200'), NvmlSource(), None)" \
    > $W/logs/gpu_exporter_$CALL.log 2>&1 < /dev/null &
  echo $! > $W/logs/gpu_exporter.pid
  sleep 3; fetch http://localhost:9400/metrics | grep -E "^DCGM_FI_DEV_(POWER_USAGE|SM_CLOCK|GPU_UTIL)" | head -3
  setsid nohup python3 "$S/gpu_sampler.py" http://127.0.0.1:9400/metrics $W/results/gpu_$CALL.csv 900 \
    > /dev/null 2>&1 < /dev/null & ;;
grid)
  eval "RUNS=\$GRID_${GRID:-a}"
  BENCH_DEADLINE=$DEADLINE python3 "$S/bench_driver.py" $W/results $MODEL_DIR $RUNS > $W/logs/bench_$CALL.log 2>&1
  grep -E "=====|Request throughput|Mean TTFT|Mean ITL|Failed requests" $W/logs/bench_$CALL.log | head -120 ;;
metrics)
  fetch http://localhost:8000/metrics > $W/results/metrics_after_load.txt
  grep -c "^vllm:" $W/results/metrics_after_load.txt ;;
stopserve)
  kill $(cat $W/logs/server.pid) 2>/dev/null; sleep 8; nvidia-smi --query-gpu=memory.used --format=csv ;;
latency)
  LEFT=$(( DEADLINE - $(date +%s) )); [ $LEFT -lt 90 ] && { echo "no time left for vllm bench latency"; continue; }
  timeout $LEFT python3 -m vllm.entrypoints.cli.main bench latency --model $MODEL_DIR $SERVE_ARGS \
    --batch-size 8 --input-len 1024 --output-len 128 --num-iters-warmup 3 --num-iters 10 \
    --output-json $W/results/latency_b8_i1024_o128.json > $W/logs/latency.log 2>&1
  echo "rc=$?"; grep -E "Avg latency|percentile" $W/logs/latency.log | tail -4 ;;
collect)  # this call's results only (with every call's the archive outgrows what a call brings back)
  cp $W/logs/server.log $OUT/ 2>/dev/null
  (cd /tmp && find vwork/results -type f -newer $W/logs/call_$CALL -print0 | tar -czf $OUT/results_$CALL.tgz \
    --null -T - vwork/logs)
  ls -la $OUT ;;
esac
done
echo "$(el) all stages done"
