"""The tables of docs/landcover.md from the runs of benchmarks/landcover_presets.sh.

    .venv/bin/python benchmarks/landcover_table.py [RUNS_DIR]

Per run: the epochs trained, per-class IoU and the mean IoU over the classes present on
the validation area; for crops also the field object F1 and field pixel IoU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _runs import cell, epochs  # benchmarks/ is on sys.path when run as a script

RUNS = {
    "landcover": "NC Landsat-7, dense strata raster",
    "landcover_small": "NC Landsat-7, dense, width 16 + scale augmentation",
    "landcover_polygons": "NC Landsat-7, 34 sparse training polygons",
    "landcover_points": "NC Landsat-7, 1000 sparse training points",
    "loveda_file_split": "LoveDA chips, split by file (before; EMA + strong augmentation)",
    "loveda": "LoveDA chips, split by strips (the preset)",
    "loveda_ema_aug": "LoveDA chips, strips + EMA + strong augmentation",
    "clouds": "Sentinel-2 clouds, 2 chips",
    "crops": "Denmark crops and fields",
}


def _scores(metrics: dict) -> tuple[dict, list[str]]:
    scores = metrics.get("pooled", metrics)  # chips pool every case's pixels
    return scores, metrics.get("present_classes") or []


def main(root: Path) -> None:
    for name, title in RUNS.items():
        run = root / name
        for evaluation, truth in (
            ("evaluation", "validation area"),
            ("evaluation_pixels", "labelled pixels"),
        ):
            path = run / evaluation / "metrics.json"
            if not path.exists():
                continue
            metrics = json.loads(path.read_text())
            scores, present = _scores(metrics)
            classes = present
            print(f"\n### {title} (`{name}`, {epochs(run)} epochs; scored on the {truth})\n")
            print("| " + " | ".join(["accuracy", "mean IoU", *classes]) + " |")
            print("|" + "---:|" * (len(classes) + 2))
            cells = [cell(scores["pixel_accuracy"]), cell(scores["macro_iou"])]
            cells += [cell(scores[c]["iou"]) for c in classes]
            print("| " + " | ".join(cells) + " |")
            for obj, o in (metrics.get("objects") or {}).items():
                if name == "crops" or len(present) == 2:
                    extra = f", pixel IoU {o['pixel_iou']:.3f}" if o.get("pixel_iou") else ""
                    print(
                        f"\n{obj}: object F1 {o['f1']:.3f} (precision {o['precision']:.3f}, "
                        f"recall {o['recall']:.3f}; {o['tp']} of {o['n_true']} matched, "
                        f"{o['n_pred']} predicted){extra}"
                    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs"))
