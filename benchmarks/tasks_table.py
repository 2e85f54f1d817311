"""The tables of docs/roads.md and docs/damage.md from the runs of
benchmarks/roads_presets.sh and benchmarks/damage_presets.sh, side by side.

    .venv/bin/python benchmarks/tasks_table.py [RUNS_DIR]

Roads: epochs, road IoU and F1, completeness / correctness / quality and APLS on each
preset's validation area, with and without the clDice term. Damage: the xView2 score and
its parts, per pixel and per building polygon, siamese against stacked channels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _runs import cell, epochs  # benchmarks/ is on sys.path when run as a script

ROADS = {
    "roads": "SpaceNet Vegas, BCE + Dice + 0.5 clDice (preset)",
    "roads_no_cldice": "SpaceNet Vegas, BCE + Dice",
    "deepglobe_roads": "DeepGlobe chips, BCE + Dice + 0.5 clDice (preset)",
    "deepglobe_roads_no_cldice": "DeepGlobe chips, BCE + Dice",
}
DAMAGE = {
    "damage": "siamese U-Net, shared ResNet-18 encoder (preset)",
    "damage_stacked": "U-Net over ResNet-18, pre + post stacked as 6 channels",
}


def _metrics(run: Path) -> dict | None:
    path = run / "evaluation" / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def roads(root: Path) -> None:
    print("| run | epochs | road IoU | road F1 | completeness | correctness | quality | APLS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, title in ROADS.items():
        m = _metrics(root / name)
        if m is None:
            continue
        r = m["roads"]
        cells = [r[k] for k in ("iou", "f1", "completeness", "correctness", "quality", "apls")]
        print(f"| {title} | {epochs(root / name)} | " + " | ".join(map(cell, cells)) + " |")


def damage(root: Path) -> None:
    print(
        "| run | epochs | scored | xView2 score | localisation F1 | damage F1 | no | minor "
        "| major | destroyed | score, grades present |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, title in DAMAGE.items():
        m = _metrics(root / name)
        if m is None:
            continue
        for key, what in (("xview2", "pixels"), ("xview2_buildings", "buildings")):
            x = m.get(key)
            if not x:
                continue
            cells = [x["score"], x["localization_f1"], x["damage_f1"], *x["damage_f1_per_class"]]
            cells.append(x.get("score_present_grades"))
            print(
                f"| {title} | {epochs(root / name)} | {what} | "
                + " | ".join(map(cell, cells))
                + " |"
            )


if __name__ == "__main__":
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    print("## Roads\n")
    roads(runs)
    print("\n## Damage\n")
    damage(runs)
