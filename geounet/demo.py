"""The end-to-end demo behind ``make demo``: generate, train, predict, vectorize, score."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rasterio

from geounet.config import Config, DataConfig, ModelConfig, ObjectsConfig, TrainConfig
from geounet.data.synthetic import make_building_scene
from geounet.io.labels import rasterize_labels, read_labels


@dataclass(frozen=True)
class DemoResult:
    """Paths and scores of a demo run."""

    model: Path
    mask: Path
    polygons: Path
    val_iou: float
    test_iou: float
    n_true: int
    n_pred: int


def demo_config(
    image: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    minutes: float,
) -> Config:
    """The demo's training settings: a small object model with weight averaging."""
    return Config(
        data=DataConfig(images=[str(image)], labels=str(labels)),
        model=ModelConfig(name="unet", arguments={"width": 16, "batch_norm": True}),
        train=TrainConfig(
            tile_size=256,
            batch_size=8,
            samples_per_epoch=96,
            max_epochs=1000,
            max_minutes=minutes,
            patience=1000,
            learning_rate=2e-3,
            ema=0.9,  # validate and keep a moving average of the weights
        ),
        objects=ObjectsConfig(enabled=True, min_area_m2=4.0),  # one polygon per building
        run_dir=str(run_dir),
    )


def run_demo(
    out_dir: str | os.PathLike[str] = "demo_output",
    *,
    minutes: float = 2.5,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    train_size: int = 1536,
    test_size: int = 1024,
) -> DemoResult:
    """Generate two sample scenes, train on one, segment and vectorize the other.

    Args:
        out_dir: Directory for every output.
        minutes: Training time budget.
        progress: Show progress bars.
        echo: Where to print step messages.
        train_size: Side of the training scene in pixels.
        test_size: Side of the test scene in pixels.

    Returns:
        A :class:`DemoResult` with the pixel IoU of the test-scene prediction.
    """
    out = Path(out_dir)
    echo(f"[1/4] generating sample scenes in {out}/ ...")
    train_scene = make_building_scene(
        out / "train_scene.tif", out / "train_buildings.geojson", size=(train_size,) * 2, seed=1
    )
    test_scene = make_building_scene(
        out / "test_scene.tif",
        out / "test_buildings.geojson",
        size=(test_size,) * 2,
        seed=2,
        origin=(453000.0, 37000.0),
    )
    config = demo_config(train_scene.image_path, train_scene.labels_path, out / "run", minutes)
    echo(f"[2/4] training a U-Net for up to {minutes:g} min on {train_scene.image_path.name} ...")
    import geounet.api as gu

    result = gu.train(config, progress=progress)
    echo(f"      best validation IoU {result.best_val_iou:.3f} after {result.epochs} epochs")

    echo(f"[3/4] predicting {test_scene.image_path.name} ...")
    mask_path = out / "test_mask.tif"
    proba_path = out / "test_proba.tif"
    instances_path = out / "test_instances.tif"
    gu.predict(
        result.model_path,
        test_scene.image_path,
        mask_path,
        gu.PredictOptions(probabilities=proba_path, instances=instances_path),
    )

    echo("[4/4] vectorizing (one regularized footprint per building, mean confidence) ...")
    polygons_path = out / "test_buildings_predicted.geojson"
    options = gu.VectorizeOptions(min_area_m2=4.0, fill_holes_m2=4.0, regularize=True)
    gdf = gu.vectorize(instances_path, polygons_path, options, probabilities=proba_path)

    with rasterio.open(mask_path) as src:
        pred = src.read(1) == 1
        truth_gdf = read_labels(test_scene.labels_path, crs=src.crs)
        truth = rasterize_labels(truth_gdf, pred.shape, src.transform) > 0
    test_iou = float((pred & truth).sum() / max(1, (pred | truth).sum()))
    demo = DemoResult(
        model=result.model_path,
        mask=mask_path,
        polygons=polygons_path,
        val_iou=result.best_val_iou,
        test_iou=test_iou,
        n_true=len(truth_gdf),
        n_pred=len(gdf),
    )
    echo("")
    echo(f"test-scene building IoU: {demo.test_iou:.3f}  (validation IoU {demo.val_iou:.3f})")
    echo(f"buildings: {demo.n_pred} predicted polygons, {demo.n_true} true")
    echo(f"model:    {demo.model}")
    echo(f"mask:     {demo.mask}  (class probabilities: {demo.mask.with_name('test_proba.tif')})")
    echo(f"objects:  {instances_path}  (one id per building)")
    echo(f"polygons: {demo.polygons}  (area_m2, perimeter_m, confidence)")
    return demo


__all__ = ["DemoResult", "demo_config", "run_demo"]
