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
from typing import Any

import geopandas as gpd

from geounet.config import Config, load_config
from geounet.infer.scene import PredictOptions, PredictResult, predict_scene
from geounet.models.bundle import ModelMeta, load_bundle
from geounet.models.segmenter import Segmenter
from geounet.train.fit import TrainResult, fit
from geounet.vectorize import VectorizeOptions
from geounet.vectorize.pipeline import vectorize_to_file

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
    options: VectorizeOptions | None = None,
    *,
    probabilities: PathLike | None = None,
    crs: Any = None,
    progress: Callable[[int, int], None] | None = None,
    **settings: Any,
) -> gpd.GeoDataFrame:
    """Polygons of a class-map raster, cleaned and measured, optionally written to ``out``.

    Example:
        >>> gu.vectorize("mask.tif", "buildings.gpkg", regularize=True, min_area_m2=10)

    Args:
        mask: Single-band class-map GeoTIFF (as ``predict`` writes).
        out: Optional output file; its extension picks the format: GeoJSON (RFC 7946,
            EPSG:4326), GeoPackage, FlatGeobuf, GeoParquet or shapefile (native CRS).
        options: A :class:`VectorizeOptions`; or give its fields as keyword ``settings``
            (``classes``, ``min_area_m2``, ``fill_holes_m2``, ``simplify_m``,
            ``regularize``, ``smooth``, ``connectivity``, ``window``).
        probabilities: Probability raster from ``predict`` for a ``confidence`` column.
        crs: CRS to write non-GeoJSON formats in (default: the raster's).
        progress: Called with (windows done, windows in all).

    Returns:
        GeoDataFrame in the raster's CRS: ``class_id``, ``class_name``, ``area_m2``,
        ``perimeter_m`` (and ``confidence``), one valid polygon per region.
    """
    if settings:
        options = (options or VectorizeOptions()).replace(**settings)
    return vectorize_to_file(
        mask, out, options, probabilities=probabilities, crs=crs, progress=progress
    )


__all__ = [
    "PredictOptions",
    "VectorizeOptions",
    "load_model",
    "predict",
    "train",
    "vectorize",
]
