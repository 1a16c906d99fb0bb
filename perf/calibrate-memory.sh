#!/usr/bin/env bash
# Calibration matrix of the memory planner: qpeft bench-memory over every shorthand (but full, whose f32 AdamW states
# put TinyLlama past 13 GB) at batch {1,2,4} x seq
# {64,128,256,512} on the TinyLlama-1.1B shape, plus Llama-2-7B-shaped points, one bench folder per shape under OUT.
# Cells run in priority order (b2 x s128, b4 x s512, b1 x s64, then the rest); each shape holds the shared heavy-run
# lock while it runs, and --resume keeps what a previous (interrupted) run measured. Then:
#   dotnet run -c Release --project perf -- memory-matrix perf/results/bench-memory-matrix "LABEL" OUT/*
# usage: perf/calibrate-memory.sh QPEFT OUT [STRATEGIES]
set -u
QPEFT=${1:?path to the qpeft executable}
OUT=${2:?output folder}
ALL=qdora,dora-bf16,qlora,qlora-ckpt,qlora-8bit,osora,vera,pissa,lora-bf16,lora-bf16-ckpt,loram,qloram,galore,galore8-layerwise,lisa,full-8bit-layerwise
STRATEGIES=${3:-$ALL}
LOCK=${QPEFT_HEAVY_LOCK:-/tmp/qpeft-heavy.lock}
mkdir -p "$OUT"
cells=("2 128" "4 512" "1 64" "1 128" "2 64" "4 64" "1 256" "2 256" "4 128" "4 256" "1 512" "2 512")
for cell in "${cells[@]}"; do
  read -r b s <<<"$cell"
  echo "== tinyllama-1.1b b$b x s$s $(date -u +%H:%M:%S)"
  flock "$LOCK" "$QPEFT" bench-memory synthetic:tinyllama-1.1b --strategies "$STRATEGIES" --batch "$b" --seq "$s" \
    --steps 2 --device-kind cpu -o "$OUT/tinyllama-b$b-s$s" --resume
done
# Llama-2-7B shape: the 4-bit adapter strategies that fit a 24 GB host.
for cell in "1 64" "1 512"; do
  read -r b s <<<"$cell"
  echo "== llama-2-7b b$b x s$s $(date -u +%H:%M:%S)"
  flock "$LOCK" "$QPEFT" bench-memory synthetic:llama-2-7b --strategies qlora-ckpt,qloram --batch "$b" --seq "$s" \
    --steps 2 --device-kind cpu -o "$OUT/llama-2-7b-b$b-s$s" --resume
done
