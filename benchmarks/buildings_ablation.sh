#!/usr/bin/env bash
# Building footprints: today's binary model against the footprint / border / contact model
# (+ watershed) and the changes that matter, at the same 15-minute CPU training budget, on
# the Kampala validation strip and on SpaceNet Atlanta (its last 25 %), then `geounet
# evaluate` on each (pixel IoU, SpaceNet object F1, merges, splits).
#   bash benchmarks/buildings_ablation.sh [RUN ...]      (from the repository root)
#   PHASE=train or PHASE=evaluate runs one half only.
set -euo pipefail
bin=.venv/bin
out=runs/buildings_ablation
atlanta=(--set 'data.images=[../shared/data/spacenet_atlanta_buildings/sample_geotiff.tif]'
         --set data.labels=../shared/data/spacenet_atlanta_buildings/geotiff_labels.geojson
         --set data.resolution=null)
binary=(--set objects.enabled=false --set train.ema=null --set augmentation.brightness=0.2
        --set augmentation.contrast=0.2 --set augmentation.gain=0.1
        --set augmentation.saturation=0.3 --set augmentation.scale=null)
declare -A runs=(
  [kampala_objects]=""
  [kampala_binary]="${binary[*]}"
  [kampala_objects_hue]="--set augmentation.hue=0.5 --set augmentation.gain=0.3"
  [kampala_binary_ema_aug]="--set objects.enabled=false"
  [atlanta_objects]="${atlanta[*]}"
  [atlanta_binary]="${atlanta[*]} ${binary[*]}"
)
phase=${PHASE:-all}
mkdir -p "$out"
all="kampala_binary kampala_objects kampala_objects_hue kampala_binary_ema_aug atlanta_binary"
all+=" atlanta_objects"
for run in ${@:-$all}; do
  if [[ $phase != evaluate ]]; then
    # shellcheck disable=SC2086
    $bin/geounet -q train configs/buildings.yaml ${runs[$run]} --set run_dir="$out/$run" \
      > "$out/$run.log" 2>&1 || { echo "$run failed: see $out/$run.log"; continue; }
  fi
  if [[ $phase != train ]]; then
    for tta in "" "--tta"; do
      $bin/geounet -q evaluate "$out/$run/model.safetensors" --config "$out/$run/config.yaml" \
        $tta -o "$out/$run/evaluation${tta:+_tta}" >> "$out/$run.log" 2>&1
    done
  fi
done
$bin/python benchmarks/buildings_table.py "$out"
