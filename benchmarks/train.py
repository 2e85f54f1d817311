"""Training throughput: the full pipeline (GeoTIFF + vector labels read through torchgeo,
sampled, collated, augmented, trained) versus the bare train step on in-memory tensors.

Both sides run the same model, batch, window size, precision and optimizer step; the ratio
full / bare shows how much the data pipeline costs (target: >= 0.85).

    .venv/bin/python benchmarks/train.py [--scene PATH --labels PATH] [--batches 20]

Without --scene it trains on a generated 2048 x 2048 scene (0.3 m, EPSG:32636).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    """Measure and print samples/s of both sides and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene")
    parser.add_argument("--labels")
    parser.add_argument("--resolution", type=float, default=None, help="Training pixel size, m.")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--model", default="{encoder: resnet18}")
    args = parser.parse_args()

    from geounet.config import load_config
    from geounet.data.synthetic import make_building_scene
    from geounet.train.fit import _loaders, prepare
    from geounet.train.task import SegmentationTask

    tmp = Path(tempfile.mkdtemp())
    if args.scene is None:
        scene = make_building_scene(tmp / "scene.tif", tmp / "labels.geojson", size=(2048, 2048))
        args.scene, args.labels = str(scene.image_path), str(scene.labels_path)
    overrides = [
        f"data.images=[{args.scene}]",
        f"data.labels={args.labels}",
        f"data.resolution={args.resolution if args.resolution else 'null'}",
        f"model.arguments={args.model}",
        f"train.tile_size={args.tile}",
        f"train.batch_size={args.batch_size}",
        f"train.num_workers={args.workers}",
        f"train.samples_per_epoch={args.batch_size * (args.batches + 2)}",
        f"run_dir={tmp / 'run'}",
    ]
    config = load_config(None, overrides)
    prepared = prepare(config, tmp / "run")
    from geounet.data.augment import build_augmentation
    from geounet.models.bundle import build_segmenter

    torch.manual_seed(0)
    model = build_segmenter(prepared.meta).use_channels_last()
    task = SegmentationTask(model, 2, augment=build_augmentation(config.augmentation))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: dict) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = task.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    task.log = lambda *a, **k: None  # no Lightning trainer here
    train_loader, _ = _loaders(config, prepared)
    batches = iter(train_loader)
    step(next(batches))  # warm-up
    start = time.perf_counter()
    n = 0
    for _ in range(args.batches):
        step(next(batches))
        n += args.batch_size
    full = n / (time.perf_counter() - start)

    fixed = next(iter(train_loader))
    start = time.perf_counter()
    for _ in range(args.batches):
        step({"image": fixed["image"].clone(), "mask": fixed["mask"].clone()})
    bare = n / (time.perf_counter() - start)

    data_start = time.perf_counter()
    for i, _ in enumerate(train_loader):
        if i + 1 == args.batches:
            break
    data_only = args.batches * args.batch_size / (time.perf_counter() - data_start)

    print(
        f"scene {args.scene}, tile {prepared.train_tile}, batch {args.batch_size}, "
        f"model {args.model}, bf16, workers {args.workers}"
    )
    print("| measurement | samples/s |")
    print("|---|---:|")
    print(f"| data pipeline alone (read, sample, collate) | {data_only:.1f} |")
    print(f"| full pipeline (data + augmentation + train step) | {full:.1f} |")
    print(f"| bare train step on in-memory tensors | {bare:.1f} |")
    print(f"| **ratio full / bare** | **{full / bare:.2f}** |")


if __name__ == "__main__":
    main()
