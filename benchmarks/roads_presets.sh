#!/usr/bin/env bash
# The road presets trained for 15 CPU minutes each, with and without the clDice term,
# one after another (never two at once on this 2-core machine), then evaluated on each
# preset's validation area (IoU, F1, completeness / correctness / quality, APLS) for the
# figures in docs/roads.md. Then: .venv/bin/python benchmarks/tasks_table.py
#
#   bash benchmarks/roads_presets.sh                      # train and evaluate every run
#   bash benchmarks/roads_presets.sh evaluate             # evaluate the trained runs only
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/geounet
mkdir -p runs

train() {  # train NAME PRESET [--set ...]
  local name=$1 preset=$2
  shift 2
  echo "$(date +%T) train $name"
  $G train "configs/$preset.yaml" --set "run_dir=runs/$name" "$@" >"runs/$name.log" 2>&1
}

if [ "${1:-}" != evaluate ]; then
  train roads roads
  train roads_no_cldice roads --set "train.loss={bce: 1, dice: 1}"
  train deepglobe_roads deepglobe_roads
  train deepglobe_roads_no_cldice deepglobe_roads --set "train.loss={bce: 1, dice: 1}"
fi
for run in roads roads_no_cldice; do
  echo "$(date +%T) evaluate $run"
  $G -q evaluate "runs/$run/model.safetensors" --config configs/roads.yaml -o "runs/$run/evaluation"
done
for run in deepglobe_roads deepglobe_roads_no_cldice; do
  echo "$(date +%T) evaluate $run"
  $G -q evaluate "runs/$run/model.safetensors" --config configs/deepglobe_roads.yaml \
    -o "runs/$run/evaluation"
done
