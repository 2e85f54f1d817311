"""Does validation IoU swing? The demo's training with and without weight averaging.

Trains the `make demo` model on the demo's generated scene twice with the same seed and
budget, once with raw weights (``train.ema: null``) and once with the moving average the
demo uses, and prints the validation IoU of every epoch side by side with the mean
epoch-to-epoch change and the worst drop.

    .venv/bin/python benchmarks/demo_ema.py [--minutes 1.5]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np


def run(folder: Path, minutes: float, ema: float | None) -> list[float]:
    import dataclasses

    import geounet.api as gu
    from geounet.data.synthetic import make_building_scene
    from geounet.demo import demo_config

    scene = make_building_scene(
        folder / "train.tif", folder / "train.geojson", size=(1536, 1536), seed=1
    )
    config = demo_config(scene.image_path, scene.labels_path, folder / f"run_{ema}", minutes)
    config.train = dataclasses.replace(config.train, ema=ema)
    result = gu.train(config, progress=False)
    with open(result.metrics_path, newline="") as f:
        return [float(r["val_iou"]) for r in csv.DictReader(f) if r.get("val_iou")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "raw weights": run(Path(tmp), args.minutes, None),
            "EMA 0.9": run(Path(tmp), args.minutes, 0.9),
        }
    n = max(len(v) for v in runs.values())
    print("validation IoU per epoch (demo model, objects target, same seed and budget)")
    print("epoch " + " ".join(f"{name:>12}" for name in runs))
    for e in range(n):
        cells = [f"{v[e]:12.3f}" if e < len(v) else " " * 12 for v in runs.values()]
        print(f"{e:5d} " + " ".join(cells))
    print()
    for name, values in runs.items():
        v = np.asarray(values)
        half = v[len(v) // 2 :]  # the second half, once both have learnt something
        steps = np.abs(np.diff(half))
        print(
            f"{name:>12}: best {v.max():.3f}, last {v[-1]:.3f}; second half: mean |change| "
            f"{steps.mean():.3f}, worst drop {max(0.0, -np.diff(half).min()):.3f}"
        )


if __name__ == "__main__":
    main()
