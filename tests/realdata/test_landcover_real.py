"""The land-cover, cloud and crop presets on the real data in ../shared/data: each one
trains briefly, predicts, vectorizes and evaluates from its own preset (skipped when the
data is absent). The figures of full 15-minute runs are in docs/landcover.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

import geounet.api as gu
from geounet.config import load_config
from geounet.io.labelmap import IGNORE
from geounet.models.bundle import read_meta

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
SHORT = [
    "train.max_epochs=1",
    "train.max_minutes=null",
    "train.samples_per_epoch=16",
    "train.device=cpu",
]


def _needs(name: str):
    return pytest.mark.skipif(not (DATA / name).exists(), reason=f"../shared/data/{name} absent")


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Presets name their data relative to the repository root, as README commands run."""
    monkeypatch.chdir(REPO)
    return REPO


def _short_run(preset: str, tmp_path: Path, *extra: str):
    return gu.train(
        REPO / "configs" / preset, [*SHORT, *extra, f"run_dir={tmp_path / 'run'}"], progress=False
    )


@_needs("nc_landcover_landsat7")
def test_landsat_bands_and_strata_read_as_the_preset_says(in_repo: Path, tmp_path: Path) -> None:
    from geounet.train.fit import prepare

    config = load_config(REPO / "configs" / "landcover.yaml", [f"run_dir={tmp_path}"])
    prepared = prepare(config, tmp_path)
    meta = prepared.meta
    assert meta.bands == [f"lsat7_2000_{b}0" for b in (1, 2, 3, 4, 5, 7)]
    assert max(meta.std) < 100  # band 7's -32768 and the -99999 border left out
    ds = prepared.dataset
    x, y, _ = ds.bounds
    sample = ds[x.start : x.start + 128 * 28.5, y.stop - 128 * 28.5 : y.stop]
    mask = sample["mask"].numpy()
    assert set(np.unique(mask)) <= {*range(7), IGNORE}  # EPSG:3358 codes, nearest only
    assert (mask == IGNORE).any() and (mask != IGNORE).mean() > 0.3  # border unlabelled
    assert np.abs(sample["image"].numpy()).max() < 1000  # no fill value reaches the model


@_needs("nc_landcover_landsat7")
def test_landcover_preset_end_to_end(in_repo: Path, tmp_path: Path) -> None:
    run = _short_run("landcover.yaml", tmp_path, "model.arguments={width: 8, depth: 3}")
    bands = ",".join(
        str(DATA / "nc_landcover_landsat7" / f"lsat7_2000_{b}0.tif") for b in (1, 2, 3, 4, 5, 7)
    )
    result = gu.predict(run.model_path, bands, tmp_path / "lc.tif")
    with rasterio.open(result.path) as src:
        classes = src.read(1)
    assert (classes == 255).mean() > 0.1  # the scene's nodata border stays nodata
    gdf = gu.vectorize(result.path, tmp_path / "lc.gpkg", simplify_m=30, min_area_m2=8100)
    assert len(gdf) > 0 and {"area_ha", "class_name"} <= set(gdf.columns)
    report = gu.evaluate(run.model_path, tmp_path / "eval", config=run.run_dir / "config.yaml")
    assert report.metrics["present_classes"]
    # the same validation strip scored against the sparse labelled pixels
    sparse = gu.evaluate(
        run.model_path,
        tmp_path / "eval_sparse",
        config=run.run_dir / "config.yaml",
        labels=DATA / "nc_landcover_landsat7" / "landsat96_labelled_pixels.tif",
    )
    total = int(np.asarray(sparse.metrics["confusion_matrix"]).sum())
    assert 0 < total < 2872  # only the labelled pixels inside the strip are scored


@_needs("nc_landcover_landsat7")
def test_landcover_from_sparse_polygons(in_repo: Path, tmp_path: Path) -> None:
    labels = DATA / "nc_landcover_landsat7" / "landsat96_polygons.shp"
    run = _short_run(
        "landcover.yaml",
        tmp_path,
        "model.arguments={width: 8, depth: 3}",
        f"data.labels={labels}",
        "data.label_attribute=id",
        "data.sparse=true",
    )
    assert read_meta(run.model_path).labels["sparse"] is True


@_needs("s2_cloud_samples")
def test_clouds_preset_end_to_end(in_repo: Path, tmp_path: Path) -> None:
    run = _short_run("clouds.yaml", tmp_path, "train.tile_size=128")
    meta = read_meta(run.model_path)
    assert meta.bands == ["B02", "B03", "B04", "B08"] and meta.clip_high[0] > 255  # uint16
    chip = DATA / "s2_cloud_samples" / "final" / "public" / "train_features" / "adwp"
    bands = ",".join(str(chip / f"{b}.tif") for b in ("B02", "B03", "B04", "B08"))
    result = gu.predict(run.model_path, bands, tmp_path / "clouds.tif")
    assert set(result.class_pixels) == {"clear", "cloud"}
    report = gu.evaluate(run.model_path, tmp_path / "eval", config=run.run_dir / "config.yaml")
    assert report.metrics["regions"] == 2  # a validation strip of each chip


@_needs("denmark_fields_s2")
def test_denmark_bands_are_blue_green_red() -> None:
    """The preset shows bands 3, 2, 1 as RGB: darkest vegetation is darkest in red, and
    haze makes blue the brightest floor."""
    with rasterio.open(DATA / "denmark_fields_s2" / "RGB_small.tif") as src:
        floors = [np.percentile(src.read(b), 2) for b in (1, 2, 3)]
    assert floors[0] > floors[1] > floors[2]
    assert load_config(REPO / "configs" / "crops.yaml").data.rgb_bands == [3, 2, 1]


@_needs("denmark_fields_s2")
def test_crops_preset_end_to_end(in_repo: Path, tmp_path: Path) -> None:
    run = _short_run("crops.yaml", tmp_path, "model.arguments={width: 8, depth: 3}")
    meta = read_meta(run.model_path)
    assert meta.classes[0] == "background" and meta.classes[-1] == "other"
    assert "Vårbyg" in meta.classes and meta.labels["map"]["Ærter"] == "other"
    assert meta.labels["null_features_skipped"] == 1
    result = gu.predict(
        run.model_path, DATA / "denmark_fields_s2" / "RGB_small.tif", tmp_path / "crops.tif"
    )
    gdf = gu.vectorize(result.instances, tmp_path / "fields.gpkg")
    assert {"crop_type", "area_ha", "area_m2"} <= set(gdf.columns)
    report = gu.evaluate(run.model_path, tmp_path / "eval", config=run.run_dir / "config.yaml")
    assert "field" in report.metrics["objects"]
