#!/usr/bin/env bash
# Kampala buildings: augmentation on/off and loss choice, equal epoch budgets, then
# `geounet evaluate` on each run's validation strip (pixel IoU, object F1, HD95).
#   bash benchmarks/kampala_ablation.sh [EPOCHS]   (from the repository root)
set -euo pipefail
epochs=${1:-25}
bin=.venv/bin
common=(--set train.max_epochs="$epochs" --set train.max_minutes=null --set train.patience=1000)
run() {
  name=$1; shift
  $bin/geounet -q train configs/buildings.yaml "${common[@]}" --set run_dir=runs/ablation/"$name" "$@"
  $bin/geounet -q evaluate runs/ablation/"$name"/model.safetensors \
    --config runs/ablation/"$name"/config.yaml -o runs/ablation/"$name"/evaluation
}
run bce_dice_aug
run bce_dice_noaug --set train.augment=false
run focal_dice_aug --set 'train.loss={focal: 1, dice: 1}'
run bce_lovasz_aug --set 'train.loss={bce: 1, lovasz: 1}'
$bin/python - <<'PY'
import csv, json, pathlib
print("| run | best val IoU (training) | val-strip IoU | object F1 | HD95 (m) |")
print("|---|---:|---:|---:|---:|")
for run in sorted(pathlib.Path("runs/ablation").iterdir()):
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    best = max(float(r["val_iou"]) for r in rows if r.get("val_iou"))
    m = json.loads((run / "evaluation" / "metrics.json").read_text())
    print(f"| {run.name} | {best:.3f} | {m['building']['iou']:.3f} | "
          f"{m['objects']['building']['f1']:.3f} | {m['boundary']['building']['hd95_m']:.2f} |")
PY
