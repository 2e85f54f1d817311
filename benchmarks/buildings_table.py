"""Print the building-footprint ablation table of ``benchmarks/buildings_ablation.sh``.

    .venv/bin/python benchmarks/buildings_table.py [runs/buildings_ablation]

One row per run and prediction mode (plain, and with test-time augmentation): epochs in
the budget, pixel IoU on the validation strip (scene predicted whole), SpaceNet-rule object
precision / recall / F1, merges and splits.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def main(root: Path) -> None:
    print(
        "| run | epochs | pixel IoU | object P | object R | object F1 | merges (true in them) "
        "| splits (pieces) | objects |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        metrics_csv = run / "metrics.csv"
        rows = list(csv.DictReader(metrics_csv.open())) if metrics_csv.exists() else []
        epochs = len([r for r in rows if r.get("val_iou")])
        for folder in ("evaluation", "evaluation_tta"):
            path = run / folder / "metrics.json"
            if not path.exists():
                continue
            m = json.loads(path.read_text())
            o = m["objects"]["building"]
            name = run.name + (" + TTA" if folder.endswith("tta") else "")
            kind = "instances" if o.get("instances") else "components"
            print(
                f"| {name} | {epochs} | {m['building']['iou']:.3f} | {o['precision']:.3f} | "
                f"{o['recall']:.3f} | **{o['f1']:.3f}** | {o['merges']} ({o['merged_true']}) | "
                f"{o['splits']} ({o['split_pieces']}) | {kind} |"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/buildings_ablation"))
