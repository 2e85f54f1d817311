"""Checks on the real Kampala drone mosaic and OSM footprints (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geounet.config import load_config
from geounet.data.datasets import labelled_scenes
from geounet.io.labels import rasterize_labels, read_labels

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kampala_buildings"
IMAGE = ROOT / "kampala_suburban_rgb.tif"
LABELS = ROOT / "kampala_suburban_buildings.geojson"
MASK = ROOT / "kampala_suburban_buildings_mask.tif"

pytestmark = pytest.mark.skipif(
    not IMAGE.exists(), reason="../shared/data/kampala_buildings absent"
)


def test_osm_polygons_reprojected_onto_the_mosaic_match_the_reference_mask() -> None:
    with rasterio.open(MASK) as src:
        reference = src.read(1) > 0
        labels = read_labels(LABELS, crs=src.crs)  # EPSG:4326 -> EPSG:3857
        ours = rasterize_labels(labels, reference.shape, src.transform) > 0
    iou = (ours & reference).sum() / (ours | reference).sum()
    assert iou > 0.97


def test_training_samples_align_with_the_labels() -> None:
    dataset = labelled_scenes([IMAGE], LABELS, classes=["background", "building"], res=0.3)
    x, y, _ = dataset.bounds
    sample = dataset[x.start : x.start + 256 * 0.3, y.stop - 256 * 0.3 : y.stop]
    assert sample["image"].shape == (3, 256, 256)
    assert sample["mask"].shape == (256, 256)
    share = float(sample["mask"].float().mean())
    assert 0.05 < share < 0.8  # the top-left corner of the block is built up


def test_short_training_run_reports_validation_iou(tmp_path: Path) -> None:
    from geounet.train.fit import fit

    config = load_config(
        Path(__file__).resolve().parents[2] / "configs" / "buildings.yaml",
        [
            f"data.images=[{IMAGE}]",
            f"data.labels={LABELS}",
            "data.resolution=0.6",
            "model.arguments={width: 8, depth: 3, batch_norm: true}",
            "train.tile_size=96",
            "train.samples_per_epoch=32",
            "train.max_epochs=2",
            "train.max_minutes=null",
            f"run_dir={tmp_path / 'run'}",
        ],
    )
    result = fit(config, progress=False)
    assert result.model_path.exists()
    assert 0.0 <= result.best_val_iou <= 1.0
    assert np.isfinite(result.best_val_iou)
