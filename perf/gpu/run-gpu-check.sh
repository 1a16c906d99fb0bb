#!/usr/bin/env bash
# The GPU check, for a CUDA Linux machine with Python + torch (headers included), g++ and no .NET or internet.
# Input: perf/gpu/pack/ from perf/gpu/pack.sh. Output: everything under $OUT (default ./gpu-check-out):
#   env.txt, build/ (compile logs), steps.tsv (step, exit code, seconds), one folder per step, summary.md.
# Steps run in priority order, each under its own timeout, and a step is skipped when the time left (QP_BUDGET_S,
# default 530 s, measured from the start) is below its timeout, so the whole check ends within the budget.
# QP_DRY_RUN=1 prints the steps instead of running them (rehearsal without a GPU).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pack="$here/pack"
OUT="${OUT:-$PWD/gpu-check-out}"
budget="${QP_BUDGET_S:-530}"
dry="${QP_DRY_RUN:-0}"
python="${PYTHON:-python3}"
mkdir -p "$OUT/build"
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
printf 'step\texit\tseconds\n' > "$OUT/steps.tsv"

# step NAME TIMEOUT_S CMD...: runs CMD with stdout+stderr in $OUT/NAME.log, unless less than TIMEOUT_S is left.
step() {
  local name="$1" limit="$2"; shift 2
  local remaining; remaining="$(left)"
  if (( remaining < limit )); then
    printf '%s\tskipped (%s s left, needs %s)\t0\n' "$name" "$remaining" "$limit" >> "$OUT/steps.tsv"; return 0
  fi
  if [[ "$dry" == 1 ]]; then echo "[dry] $name (timeout $limit s): $*"; printf '%s\tdry\t0\n' "$name" >> "$OUT/steps.tsv"; return 0; fi
  local t0; t0=$(date +%s)
  echo "== $name (timeout $limit s, $remaining s left)"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$OUT/steps.tsv"
  tail -n 3 "$OUT/$name.log"
  return 0
}

# --- torch and the machine
torch_info="$("$python" - <<'EOF'
import glob, os, sys, torch, torch.utils.cpp_extension as ext
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
site = os.path.dirname(os.path.dirname(torch.__file__))
nvidia = sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")) + glob.glob(os.path.join(site, "nvidia", "*", "*", "lib")))
print("TORCH_LIB=" + lib)
print("TORCH_INCLUDES=" + ":".join(ext.include_paths()))
print("TORCH_ABI=" + str(int(torch.compiled_with_cxx11_abi())))
print("NVIDIA_LIBS=" + ":".join(nvidia))
print("TORCH_VERSION=" + torch.__version__)
print("CUDA_OK=" + str(int(torch.cuda.is_available())))
EOF
)" || { echo "error: $python cannot import torch" >&2; exit 1; }
eval "$(sed 's/=\(.*\)/="\1"/' <<<"$torch_info")"
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "$torch_info"; cat "$pack/MANIFEST" 2>/dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  g++ --version | head -1; nproc
} > "$OUT/env.txt"
cat "$OUT/env.txt"

# --- libLibTorchSharp.so from TorchSharp's sources against this torch (plain g++: its CMake adds -Werror)
work="$(mktemp -d)"
lts="$work/native"
mkdir -p "$lts" "$work/qpeft"
tar -C "$lts" -xzf "$pack/torchsharp-native.tar.gz"
tar -C "$work/qpeft" -xzf "$pack/qpeft.tar.gz"
src="$lts/src/Native/LibTorchSharp"
incs=(-I "$lts/src/Native" -I "$src")
IFS=: read -ra tin <<<"$TORCH_INCLUDES"; for d in "${tin[@]}"; do incs+=(-isystem "$d"); done
cflags=(-O2 -fPIC -std=c++17 -fvisibility=hidden -DNDEBUG "-D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI" -w)
build_native() {
  local objs=() pids=() f
  for f in "$src"/*.cpp; do
    local o="$work/$(basename "$f" .cpp).o"; objs+=("$o")
    g++ "${cflags[@]}" "${incs[@]}" -c "$f" -o "$o" > "$OUT/build/$(basename "$f").log" 2>&1 &
    pids+=($!)
    while (( $(jobs -rp | wc -l) >= $(nproc) )); do sleep 0.5; done
  done
  gcc -O2 -fPIC -c "$src/crc32c.c" -o "$work/crc32c.o" > "$OUT/build/crc32c.c.log" 2>&1 || return 1
  local failed=0 p; for p in "${pids[@]}"; do wait "$p" || failed=1; done
  (( failed == 0 )) || { grep -l "error" "$OUT"/build/*.log; return 1; }
  g++ -shared -o "$work/qpeft/libLibTorchSharp.so" "${objs[@]}" "$work/crc32c.o" -L "$TORCH_LIB" \
    -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 $( [[ -e "$TORCH_LIB/libtorch_cuda.so" ]] && echo -ltorch_cuda -lc10_cuda ) \
    -Wl,-rpath,"$TORCH_LIB"
}
export -f build_native
export work src OUT TORCH_LIB
step native-build 300 bash -c "$(declare -p cflags incs); build_native"
[[ "$dry" == 1 || -e "$work/qpeft/libLibTorchSharp.so" ]] || { echo "error: libLibTorchSharp.so did not build (see $OUT/build/)" >&2; exit 1; }

export LD_LIBRARY_PATH="$work/qpeft:$TORCH_LIB${NVIDIA_LIBS:+:$NVIDIA_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
q="$work/qpeft/qpeft"
cd "$work"

# --- the runs, most important first
step demo-cuda 150 "$q" train --device cuda -o "$OUT/demo-cuda"
step qlora-7b 150 "$q" train synthetic:llama-2-7b --device cuda --rank 64 --seq 512 --batch 1 --checkpointing on --steps 3 \
  --measure-peak "$OUT/qlora-7b/peak.json" -o "$OUT/qlora-7b/run"
step bench-memory-tinyllama 220 "$q" bench-memory synthetic:tinyllama-1.1b --device cuda --steps 3 --seq 512 \
  --strategies lora-bf16,qlora,qlora-ckpt,galore,galore8-layerwise,lisa,loram -o "$OUT/bench-memory-tinyllama"
step qlora-8b 150 "$q" train synthetic:llama-3.1-8b --device cuda --rank 64 --seq 512 --batch 1 --checkpointing on --steps 3 \
  --measure-peak "$OUT/qlora-8b/peak.json" -o "$OUT/qlora-8b/run"
step lora-bf16-demo 90 "$q" train --device cuda --weights bf16 --steps 300 -o "$OUT/lora-bf16-demo"
step export-merged 40 "$q" export "$OUT/lora-bf16-demo" --model "$work/qpeft/DemoModel" --merge --device cuda -o "$OUT/lora-bf16-demo/merged"
step parity 60 "$python" "$here/loss_parity.py" "$OUT/lora-bf16-demo" "$OUT/lora-bf16-demo/merged" --device cuda
step peft-peer 120 "$python" "$here/peft_peer.py" --out "$OUT/peft-peer.json"

{
  echo "# GPU check, $(date -u +%Y-%m-%d)"; echo; echo '```'; cat "$OUT/env.txt"; echo '```'; echo
  echo '| step | exit | seconds |'; echo '|---|---|---|'
  tail -n +2 "$OUT/steps.tsv" | awk -F'\t' '{print "| " $1 " | " $2 " | " $3 " |"}'
} > "$OUT/summary.md"
cat "$OUT/summary.md"
rm -rf "$work"
