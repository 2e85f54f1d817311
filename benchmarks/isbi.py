"""ISBI 2012 membranes with the ``configs/isbi2012.yaml`` preset: train (slices 0-19),
then evaluate on the validation slices 20-24, predicted whole: pixel error, adapted Rand
error (skimage), membrane Dice/IoU. With ``--ablation``, also without augmentation.

    .venv/bin/python benchmarks/isbi.py [--minutes 15] [--ablation]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(out: Path, minutes: float, augment: bool) -> dict:
    """Train the preset into ``out`` and evaluate it on its validation slices."""
    import geounet.api as gu

    config = REPO / "configs" / "isbi2012.yaml"
    overrides = [
        f"run_dir={out}",
        f"train.max_minutes={minutes}",
        f"train.augment={str(augment).lower()}",
    ]
    result = gu.train(config, overrides, progress=False)
    evaluation = gu.evaluate(result.model_path, out / "evaluation", config=out / "config.yaml")
    m = evaluation.metrics
    return {
        "augment": augment,
        "epochs": result.epochs,
        "pixel_error": m["pixel_error"],
        "adapted_rand_error": m["adapted_rand_error"],
        "membrane_dice": m["mean"]["membrane"]["dice"],
        "membrane_iou": m["mean"]["membrane"]["iou"],
    }


def main() -> None:
    """Print one JSON line per run and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--ablation", action="store_true", help="Also train without augmentation.")
    args = parser.parse_args()
    rows = []
    for augment in (True, False) if args.ablation else (True,):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run(Path(tmp), args.minutes, augment))
        print(json.dumps(rows[-1]), flush=True)
    print("| augmentation | epochs | pixel error | adapted Rand error | membrane Dice | IoU |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'on' if r['augment'] else 'off'} | {r['epochs']} | {r['pixel_error']:.4f} | "
            f"{r['adapted_rand_error']:.4f} | {r['membrane_dice']:.4f} | {r['membrane_iou']:.4f} |"
        )


if __name__ == "__main__":
    main()
