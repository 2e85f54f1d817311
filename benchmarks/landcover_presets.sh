#!/usr/bin/env bash
# The land-cover, cloud and crop presets trained (15 CPU minutes each) and evaluated on
# ../shared/data, one after another (never two at once on this 2-core machine), for the
# figures in docs/landcover.md. Then: .venv/bin/python benchmarks/landcover_table.py
#
#   bash benchmarks/landcover_presets.sh                 # every run
#   bash benchmarks/landcover_presets.sh crops clouds    # some of them
#
# Runs: landcover (dense strata raster), landcover_small (width 16 + scale
# augmentation), landcover_polygons and landcover_points (the
# sparse training polygons / points), loveda (the preset: every chip split into strips),
# loveda_ema_aug (+ weight averaging and strong colour and scale augmentation),
# loveda_file_split (one chip trains, the other validates, as the preset did before, with
# the EMA and augmentation of loveda_ema_aug), clouds, crops.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/geounet
NC=../shared/data/nc_landcover_landsat7
mkdir -p runs

train() {  # train NAME PRESET [--set ...]
  local name=$1 preset=$2
  shift 2
  echo "$(date +%T) train $name"
  $G train "configs/$preset.yaml" --set "run_dir=runs/$name" "$@" >"runs/$name.log" 2>&1
}

evaluate() {  # evaluate NAME OUT [options]
  local name=$1 out=$2
  shift 2
  echo "$(date +%T) evaluate $name -> $out"
  $G evaluate "runs/$name/model.safetensors" --config "runs/$name/config.yaml" \
    -o "runs/$name/$out" "$@" >>"runs/$name.log" 2>&1
}

landcover() {
  train landcover landcover
  evaluate landcover evaluation
  evaluate landcover evaluation_pixels --labels "$NC/landsat96_labelled_pixels.tif"
}
landcover_small() {
  train landcover_small landcover --set "model.arguments={width: 16, depth: 4, batch_norm: true}" \
    --set "augmentation.scale=[0.8, 1.25]"
  evaluate landcover_small evaluation
}
landcover_polygons() {
  train landcover_polygons landcover --set "data.labels=$NC/landsat96_polygons.shp" \
    --set data.label_attribute=id --set data.sparse=true
  evaluate landcover_polygons evaluation --labels "$NC/strata.tif"
  evaluate landcover_polygons evaluation_pixels --labels "$NC/landsat96_labelled_pixels.tif"
}
landcover_points() {
  train landcover_points landcover --set "data.labels=$NC/landsat96_points.shp" \
    --set data.label_attribute=id --set data.sparse=true
  evaluate landcover_points evaluation --labels "$NC/strata.tif"
  evaluate landcover_points evaluation_pixels --labels "$NC/landsat96_labelled_pixels.tif"
}
loveda() { train loveda loveda && evaluate loveda evaluation; }
STRONG=(--set train.ema=0.99 --set augmentation.brightness=0.3 --set augmentation.contrast=0.3
  --set augmentation.gain=0.2 --set augmentation.saturation=0.4 --set "augmentation.scale=[0.75, 1.33]")
loveda_ema_aug() { train loveda_ema_aug loveda "${STRONG[@]}" && evaluate loveda_ema_aug evaluation; }
loveda_file_split() {
  train loveda_file_split loveda "${STRONG[@]}" --set data.split=ordered --set data.val_fraction=0.5
  evaluate loveda_file_split evaluation
}
clouds() { train clouds clouds && evaluate clouds evaluation; }
crops() { train crops crops && evaluate crops evaluation; }

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  runs=(landcover landcover_small landcover_polygons landcover_points crops clouds loveda loveda_ema_aug
    loveda_file_split)
fi
for run in "${runs[@]}"; do
  "$run"
done
echo "$(date +%T) done"
