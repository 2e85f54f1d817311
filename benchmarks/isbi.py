"""ISBI 2012 membranes as plain 2D images: the geo-free core (models, losses, augmentation,
Lightning task, metrics, tensor-level sliding window) on the original U-Net benchmark.

Trains on slices 0-19, validates on 20-24 (a z-stack: held-out slices are a separate
block), with and without augmentation, and prints pixel IoU and F1 of the membrane class
on the validation slices, predicted whole with the sliding window.

    .venv/bin/python benchmarks/isbi.py [--data ../shared/data/isbi2012_membranes] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader


def run(data: Path, out: Path, *, augment: bool, epochs: int, samples: int) -> dict:
    """Train one model and score it on the validation slices."""
    from geounet.config import load_config
    from geounet.data.augment import build_augmentation
    from geounet.data.folders import CropSampler, ImageMaskCrops, band_statistics, image_mask_pairs
    from geounet.infer.sliding import sliding_window_predict
    from geounet.models.bundle import ModelMeta, build_segmenter, save_bundle
    from geounet.train.fit import make_trainer
    from geounet.train.losses import build_loss
    from geounet.train.metrics import ConfusionMatrix
    from geounet.train.task import BestModelSaver, SegmentationTask

    config = load_config(
        None,
        [
            "model.arguments={encoder: resnet18}",
            f"train.max_epochs={epochs}",
            "train.patience=1000",
            f"train.augment={str(augment).lower()}",
            f"run_dir={out}",
        ],
    )
    pairs = image_mask_pairs(data / "train" / "image", data / "train" / "label")
    label_map = {0: 1, 255: 0}  # 0 = membrane (the class to find), 255 = cell interior
    train = ImageMaskCrops(pairs[:20], size=256, length=samples, label_map=label_map)
    val = ImageMaskCrops(pairs[20:], label_map=label_map)
    mean, std = band_statistics(train.images)
    meta = ModelMeta(
        architecture="unet",
        arguments={"encoder": "resnet18"},
        in_channels=1,
        out_channels=1,
        classes=["cell", "membrane"],
        colors=[[0, 0, 0], [255, 255, 255]],
        bands=["em"],
        mean=mean,
        std=std,
        tile_size=256,
    )
    torch.manual_seed(0)
    model = build_segmenter(meta).use_channels_last()
    task = SegmentationTask(
        model,
        2,
        loss=build_loss(None, num_classes=2),
        augment=build_augmentation(config.augmentation) if augment else None,
    )

    def save(module: SegmentationTask, metrics: dict) -> None:
        save_bundle(module.model, meta, out / "model.safetensors")

    trainer = make_trainer(config, out, [BestModelSaver(save, "val_iou")], progress=False)
    start = time.perf_counter()
    trainer.fit(
        task,
        DataLoader(train, batch_size=8, sampler=CropSampler(samples)),
        DataLoader(val, batch_size=1),
    )
    seconds = time.perf_counter() - start

    from geounet.models.bundle import load_bundle

    best, _ = load_bundle(out / "model.safetensors")
    confusion = ConfusionMatrix(2)
    for sample in val:
        probs = sliding_window_predict(
            sample["image"], lambda b: torch.sigmoid(best(b)), tile=256, overlap=64
        )
        confusion.update((probs[0] > 0.5).long(), sample["mask"])
    scores = confusion.scores(meta.classes)
    return {
        "augment": augment,
        "membrane_iou": scores["membrane"]["iou"],
        "membrane_f1": scores["membrane"]["dice"],
        "pixel_accuracy": scores["pixel_accuracy"],
        "minutes": seconds / 60,
    }


def main() -> None:
    """Augmentation on and off; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/isbi2012_membranes")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=128, help="Crops per epoch.")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "train").is_dir():
        raise SystemExit(f"{data}: ISBI 2012 data not found")
    rows = []
    for augment in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(
                run(data, Path(tmp), augment=augment, epochs=args.epochs, samples=args.samples)
            )
        print(json.dumps(rows[-1]), flush=True)
    print("| augmentation | membrane IoU | membrane F1 | pixel accuracy | minutes |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'on' if r['augment'] else 'off'} | {r['membrane_iou']:.3f} | "
            f"{r['membrane_f1']:.3f} | {r['pixel_accuracy']:.3f} | {r['minutes']:.1f} |"
        )


if __name__ == "__main__":
    main()
