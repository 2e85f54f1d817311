#!/usr/bin/env bash
# The damage preset trained for 15 CPU minutes with the siamese model and with a plain
# U-Net on the stacked pre/post channels, one after the other (never two at once on this
# 2-core machine), then evaluated on the validation strips of the xBD Joplin tiles (the
# xView2 score per pixel and per building polygon) for the figures in docs/damage.md.
#
#   bash benchmarks/damage_presets.sh             # train and evaluate both
#   bash benchmarks/damage_presets.sh evaluate    # evaluate the trained runs only
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/geounet
mkdir -p runs

if [ "${1:-}" != evaluate ]; then
  echo "$(date +%T) train damage (siamese)"
  $G train configs/damage.yaml --set run_dir=runs/damage >runs/damage.log 2>&1
  echo "$(date +%T) train damage_stacked (U-Net over the 6 stacked channels)"
  $G train configs/damage.yaml --set run_dir=runs/damage_stacked --set model.name=unet \
    >runs/damage_stacked.log 2>&1
fi
for run in damage damage_stacked; do
  echo "$(date +%T) evaluate $run"
  $G -q evaluate "runs/$run/model.safetensors" --config configs/damage.yaml -o "runs/$run/evaluation"
done
