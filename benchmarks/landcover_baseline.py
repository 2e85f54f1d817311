"""Per-pixel baselines for the land-cover preset: linear and quadratic discriminant
analysis (Gaussian classes over the six Landsat bands), trained on the preset's training
strip and scored on its validation strip, beside the U-Net's figures.

    .venv/bin/python benchmarks/landcover_baseline.py [runs/landcover/evaluation/metrics.json]

Uses numpy only; the split is the one geounet builds from configs/landcover.yaml.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
from rasterio.warp import Resampling, reproject

from geounet.config import load_config
from geounet.train.fit import prepare


def _read(config) -> tuple[np.ndarray, np.ndarray, rasterio.Affine, list]:
    """Bands (6, H, W) with NaN for nodata, classes (H, W) with -1 for unlabelled, the
    grid and the validation strips."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(config, Path(tmp))
        files = config.data.images[0]
        arrays = []
        for f in files:
            with rasterio.open(f) as src:
                arrays.append(src.read(1, masked=True).astype(np.float64).filled(np.nan))
                transform, crs, shape = src.transform, src.crs, src.shape
        labels = np.full(shape, -99999.0, np.float32)
        with rasterio.open(config.data.labels) as src:
            reproject(
                src.read(1),
                labels,
                src_transform=src.transform,
                src_crs=src.crs,
                src_nodata=src.nodata,
                dst_transform=transform,
                dst_crs=crs,
                dst_nodata=-99999,
                resampling=Resampling.nearest,
            )
        classes = np.full(shape, -1, np.int64)
        for code, name in config.data.label_map.items():
            classes[labels == code] = prepared.meta.classes.index(name)
        return np.stack(arrays), classes, transform, prepared.split.val, prepared.meta.classes


def _strip_mask(shape, transform, strips) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for strip in strips:
        win = rasterio.windows.from_bounds(*strip.bounds, transform=transform)
        win = win.round_offsets().round_lengths()
        mask[win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width] = True
    return mask


def _gaussians(x: np.ndarray, y: np.ndarray, classes: np.ndarray, shared: bool):
    """Class means, covariances (one shared for LDA) and log priors."""
    means = {c: x[y == c].mean(0) for c in classes}
    centred = x - np.stack([means[c] for c in y])
    pooled = np.cov(centred.T) + 1e-3 * np.eye(x.shape[1])
    covs = {
        c: pooled if shared else np.cov(x[y == c].T) + 1e-3 * np.eye(x.shape[1]) for c in classes
    }
    priors = {c: np.log((y == c).mean()) for c in classes}
    return means, covs, priors


def _predict(x: np.ndarray, model, classes: np.ndarray) -> np.ndarray:
    means, covs, priors = model
    scores = []
    for c in classes:
        inv = np.linalg.inv(covs[c])
        d = x - means[c]
        logdet = np.linalg.slogdet(covs[c])[1]
        scores.append(-0.5 * np.einsum("ij,jk,ik->i", d, inv, d) - 0.5 * logdet + priors[c])
    return classes[np.stack(scores, 1).argmax(1)]


def _scores(pred: np.ndarray, truth: np.ndarray, n: int) -> tuple[float, float, list]:
    ious = []
    for c in range(n):
        union = ((pred == c) | (truth == c)).sum()
        ious.append(((pred == c) & (truth == c)).sum() / union if union else None)
    present = [v for v in ious if v is not None]
    return float((pred == truth).mean()), float(np.mean(present)), ious


def main() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "landcover.yaml")
    bands, classes, transform, strips, names = _read(config)
    val = _strip_mask(classes.shape, transform, strips)
    labelled = np.isfinite(bands).all(0) & (classes >= 0)
    train_x, train_y = bands[:, labelled & ~val].T, classes[labelled & ~val]
    val_x, val_y = bands[:, labelled & val].T, classes[labelled & val]
    present = np.unique(train_y)
    rows = []
    for name, shared in (("LDA (per pixel)", True), ("QDA (per pixel)", False)):
        model = _gaussians(train_x, train_y, present, shared)
        rows.append((name, *_scores(_predict(val_x, model, present), val_y, len(names))))
    unet = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/landcover/evaluation/metrics.json")
    if unet.exists():
        m = json.loads(unet.read_text())
        rows.append(
            (
                "U-Net (the preset)",
                m["pixel_accuracy"],
                m["macro_iou"],
                [m[n]["iou"] for n in names],
            )
        )
    print(f"validation strip: {val_y.size} labelled pixels with data in every band")
    print(f"| model | accuracy | mean IoU | {' | '.join(names)} |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for name, acc, miou, ious in rows:
        cells = " | ".join("-" if v is None else f"{v:.3f}" for v in ious)
        print(f"| {name} | {acc:.3f} | {miou:.3f} | {cells} |")


if __name__ == "__main__":
    main()
