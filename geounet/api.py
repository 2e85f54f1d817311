"""The Python API: train, predict and vectorize in a few calls.

Example:
    >>> import geounet.api as gu
    >>> result = gu.train("configs/buildings.yaml", overrides=["train.max_minutes=5"])
    >>> gu.predict(result.model_path, "scene.tif", "mask.tif")
    >>> footprints = gu.vectorize("mask.tif", "buildings.geojson")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import geopandas as gpd

from geounet.config import Config, load_config
from geounet.infer.scene import PredictOptions, PredictResult, predict_scene
from geounet.models.bundle import ModelMeta, load_bundle
from geounet.models.segmenter import Segmenter
from geounet.train.fit import TrainResult, fit
from geounet.vectorize import polygonize_raster, write_vectors

PathLike = str | os.PathLike[str]


def train(
    config: PathLike | Config | None = None,
    overrides: Sequence[str] = (),
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a model from a YAML config (or a :class:`Config`) plus ``key=value`` overrides."""
    if not isinstance(config, Config):
        config = load_config(config, list(overrides))
    return fit(config, progress=progress)


def load_model(path: PathLike) -> tuple[Segmenter, ModelMeta]:
    """Load a ``.safetensors`` model bundle (no pickle involved)."""
    return load_bundle(path)


def predict(
    model: PathLike,
    scene: PathLike,
    out: PathLike,
    options: PredictOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Segment ``scene`` with the model at ``model`` and write a class-map COG to ``out``."""
    net, meta = load_bundle(model)
    return predict_scene(net, meta, scene, out, options or PredictOptions(), progress)


def vectorize(
    mask: PathLike,
    out: PathLike | None = None,
    *,
    classes: Sequence[int] | None = None,
    min_area_m2: float = 0.0,
) -> gpd.GeoDataFrame:
    """Polygons of a class map (class id, name, area in m2), optionally written to ``out``.

    The format follows ``out``'s extension: GeoJSON (RFC 7946, EPSG:4326), GeoPackage,
    FlatGeobuf, GeoParquet or shapefile (native CRS).
    """
    gdf = polygonize_raster(mask, classes=classes, min_area_m2=min_area_m2)
    if out is not None:
        write_vectors(gdf, out)
    return gdf


__all__ = ["PredictOptions", "load_model", "predict", "train", "vectorize"]
