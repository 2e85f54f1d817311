"""Land cover and crops end to end: band files -> model -> class map and coverage,
sparse labels, crop classes from an attribute, fields as separate polygons with a crop."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from click.testing import CliRunner

import geounet.api as gu
from geounet.cli import cli
from geounet.data.objects import boundary_target
from geounet.errors import DataError
from geounet.models.bundle import ModelMeta, read_meta
from geounet.models.segmenter import Segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_landcover import (
    CODES,
    landcover_scene,
    parcels_scene,
    pixel_box,
    write_vector,
)
from _fixtures_ml import TINY_TRAIN, TINY_UNET

CLASSES = ["water", "developed", "forest", "cropland"]
TINY = [TINY_UNET, *TINY_TRAIN]


def _set(key: str, value) -> str:
    return f"{key}={json.dumps(value)}"


def _train(run_dir: Path, images: list, labels, *overrides: str):
    """A tiny training run on ``images`` and ``labels`` with the given settings."""
    settings = [_set("data.images", images), _set("data.labels", str(labels)), *overrides]
    return gu.train(None, [*settings, *TINY, f"run_dir={run_dir}"], progress=False)


@pytest.fixture(scope="module")
def landcover_run(tmp_path_factory: pytest.TempPathFactory):
    """A land-cover model trained on six band files and a code raster in EPSG:3857."""
    tmp = tmp_path_factory.mktemp("landcover_run")
    scene = landcover_scene(tmp)
    overrides = [
        _set("data.images", [[str(p) for p in scene.bands]]),
        "data.stack=bands",
        _set("data.labels", str(scene.labels)),
        _set("data.classes", CLASSES),
        _set("data.label_map", CODES),
        "data.rgb_bands=[3, 2, 1]",
        *TINY,
        f"run_dir={tmp / 'run'}",
    ]
    run = gu.train(None, overrides, progress=False)
    return tmp, scene, overrides, run


def test_band_files_train_and_the_bundle_describes_them(landcover_run) -> None:
    _, _, _, run = landcover_run
    meta = read_meta(run.model_path)
    assert meta.bands == ["lsat_10", "lsat_20", "lsat_30", "lsat_40", "lsat_50", "lsat_60"]
    assert meta.stack == "bands" and meta.timesteps == 1
    assert meta.classes == CLASSES and meta.out_channels == 4
    assert meta.labels["map"] == {str(k): v for k, v in CODES.items()}
    assert max(meta.std) < 100  # the -99999 / -32768 fills stayed out of the statistics
    assert meta.display_bands == [2, 1, 0]


def test_predict_band_files_writes_a_class_map_with_nodata_outside_the_image(
    landcover_run,
) -> None:
    tmp, scene, _, run = landcover_run
    out = tmp / "landcover.tif"
    scenes = ",".join(str(p) for p in scene.bands)
    result = gu.predict(run.model_path, scenes, out)
    with rasterio.open(out) as src, rasterio.open(scene.bands[0]) as ref:
        classes = src.read(1)
        assert (src.crs, src.transform, src.shape) == (ref.crs, ref.transform, ref.shape)
        assert json.loads(src.tags()["GEOUNET_CLASSES"]) == CLASSES
        assert src.colormap(1)[2][:3] == tuple(read_meta(run.model_path).colors[2][:3])
    assert (classes[~scene.valid] == 255).all()  # no image: no class
    assert set(np.unique(classes[scene.valid])) <= {0, 1, 2, 3}
    assert sum(result.class_pixels.values()) == scene.valid.sum()


def test_evaluate_counts_no_nodata_and_draws_the_confusion_matrix(landcover_run) -> None:
    tmp, scene, _, run = landcover_run
    result = gu.evaluate(run.model_path, tmp / "eval", config=run.run_dir / "config.yaml")
    m = result.metrics
    for name in CLASSES:
        assert set(m[name]) >= {"iou", "dice", "precision", "recall", "support"}
    assert 0 <= m["macro_iou"] <= 1 and m["present_classes"]
    total = int(np.asarray(m["confusion_matrix"]).sum())
    strip = scene.valid[:, 120:]  # the validation strip: the last quarter of the columns
    assert 0 < total <= strip.sum()  # nodata pixels (no image or no label) never counted
    assert (tmp / "eval" / "confusion.png").stat().st_size > 5000
    assert (
        "Mean IoU" in (tmp / "eval" / "report.md").read_text()
        or "mean IoU" in (tmp / "eval" / "report.md").read_text()
    )


def test_sparse_polygons_train_and_are_scored_on_the_dense_raster(
    landcover_run, tmp_path: Path
) -> None:
    _, scene, overrides, _ = landcover_run
    boxes, labels = [], []
    for row in range(4, 156, 16):  # small training polygons over part of the scene
        for col in range(4, 156, 24):
            code = int(scene.truth[row + 3, col + 3])
            if code and (scene.truth[row : row + 6, col : col + 6] == code).all():
                boxes.append(pixel_box(row, col, row + 6, col + 6))
                labels.append(code)
    # the codes of the dense raster, so that one code map reads both
    sparse = write_vector(tmp_path / "training.shp", boxes, code=labels)
    keep = [o for o in overrides if not o.startswith(("data.labels", "run_dir"))]
    run = gu.train(
        None,
        [
            *keep,
            _set("data.labels", str(sparse)),
            "data.label_attribute=code",
            "data.sparse=true",
            "data.val_fraction=0.3",
            f"run_dir={tmp_path / 'sparse'}",
        ],
        progress=False,
    )
    assert read_meta(run.model_path).labels["sparse"] is True
    dense = gu.evaluate(
        run.model_path,
        tmp_path / "eval",
        config=run.run_dir / "config.yaml",
        labels=scene.labels,  # the dense code raster, read with the model's code map
    )
    assert int(np.asarray(dense.metrics["confusion_matrix"]).sum()) > 1000


def test_land_cover_polygons_form_a_clean_coverage(tmp_path: Path) -> None:
    from _fixtures_landcover import class_layout

    codes = class_layout(96)
    classes = np.vectorize({11: 0, 21: 1, 41: 2, 82: 3}.get)(codes).astype(np.uint8)
    from geounet.io.raster import raster_info
    from geounet.io.write import write_class_map

    grid_path = tmp_path / "grid.tif"
    with rasterio.open(
        grid_path,
        "w",
        driver="GTiff",
        width=96,
        height=96,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=rasterio.transform.from_origin(500_000.0, 5_000_000.0, 10, 10),
    ) as dst:
        dst.write(classes[None])
    mask = write_class_map(
        tmp_path / "lc.tif", classes, raster_info(grid_path), class_names=CLASSES
    )
    gdf = gu.vectorize(mask, tmp_path / "lc.gpkg", simplify_m=15)
    assert set(gdf["class_name"]) == set(CLASSES)  # class 0 (water) is a class, not background
    union = shapely.union_all(gdf.geometry.values)
    assert union.area == pytest.approx(96 * 96 * 100, rel=1e-6)  # no gaps ...
    assert gdf.area.sum() == pytest.approx(union.area, rel=1e-6)  # ... and no overlaps
    np.testing.assert_allclose(gdf["area_ha"], gdf["area_m2"] / 1e4)


# ------------------------------------------------------------------------------ crops

CROPS = ["background", "barley", "maize", "other"]


def _oracle_fields(tmp: Path) -> tuple[Path, list[tuple]]:
    """Logits a perfect background / crop / boundary model gives for parcels_scene."""
    _, _, boxes = parcels_scene(tmp)
    inst = np.zeros((128, 128), np.int32)
    classes = np.zeros((128, 128), np.uint8)
    for k, (r0, c0, r1, c1, crop) in enumerate(boxes, start=1):
        inst[r0:r1, c0:c1] = k
        classes[r0:r1, c0:c1] = CROPS.index(crop if crop in CROPS else "other")
    target = boundary_target(inst, classes, 1, len(CROPS))
    logits = np.stack([np.where(target == c, 8.0, -8.0) for c in range(len(CROPS) + 1)])
    from _fixtures_landcover import _write

    scene = _write(
        tmp / "logits.tif",
        logits.astype(np.float32),
        "EPSG:32633",
        rasterio.transform.from_origin(500_000.0, 5_000_000.0, 10, 10),
        None,
    )
    return scene, boxes


def _oracle_crop_model() -> tuple[Segmenter, ModelMeta]:
    k = len(CROPS) + 1
    meta = ModelMeta(
        architecture="identity",
        arguments={},
        in_channels=k,
        out_channels=k,
        classes=list(CROPS),
        colors=[[0, 0, 0], [200, 180, 60], [60, 160, 40], [150, 150, 150]],
        bands=[f"band_{i + 1}" for i in range(k)],
        mean=[0.0] * k,
        std=[1.0] * k,
        tile_size=64,
        objects={
            "target": "boundary",
            "border_px": 1,
            "contact_px": 0,
            "mask_threshold": 0.5,
            "seed_threshold": 0.6,
            "border_threshold": 0.3,
            "contact_threshold": 0.3,
            "min_seed_m2": 200.0,
            "min_area_m2": 500.0,
        },
        labels={"attribute": "crop", "class_field": "crop_type"},
    )
    return Segmenter(torch.nn.Identity(), meta.mean, meta.std), meta


def test_neighbouring_fields_of_one_crop_become_separate_polygons_with_their_crop(
    tmp_path: Path,
) -> None:
    scene, boxes = _oracle_fields(tmp_path)
    mask, inst = tmp_path / "crops.tif", tmp_path / "crops_instances.tif"
    options = gu.PredictOptions(tile=48, overlap=8, instances=inst)  # fields span seams
    result = gu.predict(_oracle_crop_model(), scene, mask, options)
    assert result.objects == len(boxes)
    with rasterio.open(mask) as src:
        assert src.tags()["GEOUNET_CLASS_FIELD"] == "crop_type"
        classes = src.read(1)
    assert set(np.unique(classes)) == {0, 1, 2, 3}  # boundaries belong to their field
    gdf = gu.vectorize(inst, tmp_path / "fields.gpkg")
    assert len(gdf) == len(boxes)  # one polygon per parcel, touching ones too
    assert {"crop_type", "class_share", "area_ha", "area_m2"} <= set(gdf.columns)
    for r0, c0, _, _, crop in boxes:
        centre = pixel_box(r0 + 10, c0 + 10, r0 + 11, c0 + 11).centroid
        (hit,) = [row for row in gdf.itertuples() if row.geometry.contains(centre)]
        assert hit.crop_type == (crop if crop in CROPS else "other")
        assert hit.area_ha == pytest.approx(28 * 28 * 100 / 1e4, rel=0.1)
        assert hit.class_share > 0.95


def test_crop_classes_from_the_attribute_with_rare_ones_grouped(tmp_path: Path) -> None:
    img, parcels, _ = parcels_scene(tmp_path)
    run = _train(
        tmp_path / "run",
        [str(img)],
        parcels,
        "data.label_attribute=crop",
        "data.classes=auto",
        "data.min_class_share=0.1",
        "data.class_field=crop_type",
        "data.val_fraction=0.3",
        "objects.enabled=true",
        "objects.target=boundary",
        "objects.border_m=10",
        "objects.min_area_m2=1000",
        "objects.min_seed_m2=500",
    )
    meta = read_meta(run.model_path)
    assert meta.classes == ["background", "barley", "maize", "other"]
    assert meta.out_channels == 5 and meta.boundary
    assert meta.labels["map"]["peas"] == "other" and meta.labels["null_features_skipped"] == 1
    info = CliRunner().invoke(cli, ["info", str(run.model_path)], catch_exceptions=False)
    assert "peas" in info.output and "-> other" in info.output
    result = gu.predict(run.model_path, img, tmp_path / "crops.tif")
    assert result.instances is not None and result.instances.exists()
    gdf = gu.vectorize(result.instances)
    assert {"crop_type", "class_share", "area_ha"} <= set(gdf.columns)
    report = gu.evaluate(run.model_path, tmp_path / "eval", config=run.run_dir / "config.yaml")
    assert "field" in report.metrics["objects"]
    assert set(report.metrics["present_classes"]) <= set(meta.classes)


def test_stacked_dates_are_checked_at_prediction(tmp_path: Path) -> None:
    from geounet.infer.scene import check_dates

    meta = ModelMeta(
        architecture="unet",
        arguments={},
        in_channels=6,
        out_channels=3,
        classes=["background", "a", "b"],
        colors=[[0, 0, 0]] * 3,
        bands=[],
        mean=[0.0] * 6,
        std=[1.0] * 6,
        tile_size=64,
        timesteps=2,
        stack="dates",
        dates=[["2016-05-12", "2016-07-21"]],
    )
    may = tmp_path / "S2_20170510_scene.tif"
    july = tmp_path / "S2_20170719_scene.tif"
    for p in (may, july):
        p.write_bytes(b"")  # dates come from the names here
    check_dates(meta, [may, july])  # same season, next year: fine
    with pytest.raises(DataError, match="run the other way"):
        check_dates(meta, [july, may])
    with pytest.raises(DataError, match="stacks 2 dates, got 1"):
        check_dates(meta, [may])


def test_a_255_nodata_label_raster_trains_and_is_not_counted(tmp_path: Path) -> None:
    """Before: ``IndexError: Target 255 is out of bounds`` at the first validation."""
    from _fixtures_landcover import _write

    rng = np.random.default_rng(0)
    classes = np.zeros((96, 96), np.uint8)
    classes[:, 32:64], classes[:, 64:] = 1, 2
    image = (classes[None] * 80 + rng.normal(20, 5, (3, 96, 96))).astype(np.float32)
    labels = classes.copy()
    labels[::7, :] = 255  # unlabelled rows, declared as the raster's nodata
    grid = rasterio.transform.from_origin(500_000.0, 5_000_000.0, 10, 10)
    img = _write(tmp_path / "img.tif", image, "EPSG:32633", grid, None)
    lab = _write(tmp_path / "lab.tif", labels[None], "EPSG:32633", grid, 255)
    run = _train(
        tmp_path / "run", [str(img)], lab, "data.classes=[a, b, c]", "data.val_fraction=0.4"
    )
    report = gu.evaluate(run.model_path, tmp_path / "eval", image=img, labels=lab)
    counted = int(np.asarray(report.metrics["confusion_matrix"]).sum())
    assert counted == int((labels != 255).sum())
