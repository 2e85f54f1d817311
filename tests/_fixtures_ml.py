"""Tiny seeded GeoTIFF / GeoJSON builders for the model, data, train and infer tests.

Kept private to those tests (not in conftest.py) so they do not depend on its timing.
Import with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _fixtures_ml import ...
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

# A tiny, quick and deterministic training run, as ``key=value`` overrides.
TINY_TRAIN = [
    "train.tile_size=48",
    "train.batch_size=4",
    "train.samples_per_epoch=16",
    "train.max_epochs=2",
    "train.max_minutes=null",
    "train.device=cpu",
    "train.precision=fp32",
]
TINY_UNET = "model.arguments={width: 8, depth: 2, batch_norm: true}"

UTM = "EPSG:32633"
ORIGIN = (500_000.0, 5_000_000.0)  # upper-left corner, UTM zone 33N (about 45 N)


def write_geotiff(
    path: str | Path,
    data: np.ndarray,
    *,
    crs: str = UTM,
    res: float = 1.0,
    origin: tuple[float, float] = ORIGIN,
    nodata: float | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """Write a (bands, height, width) or (height, width) array as a north-up GeoTIFF."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": from_origin(origin[0], origin[1], res, res),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            for i, name in enumerate(descriptions, start=1):
                dst.set_band_description(i, name)
    return Path(path)


def pixel_box(
    row0: int,
    col0: int,
    row1: int,
    col1: int,
    *,
    res: float = 1.0,
    origin: tuple[float, float] = ORIGIN,
) -> shapely.Polygon:
    """The map-space rectangle covering pixel rows [row0, row1) and cols [col0, col1)."""
    x0, y0 = origin
    return shapely.box(x0 + col0 * res, y0 - row1 * res, x0 + col1 * res, y0 - row0 * res)


def write_geojson(
    path: str | Path,
    polygons: Sequence[shapely.Geometry],
    *,
    crs: str = UTM,
    to_crs: str | None = "EPSG:4326",
    **attributes: Sequence,
) -> Path:
    """Write polygons (given in ``crs``) to a GeoJSON file, reprojected to ``to_crs``."""
    gdf = gpd.GeoDataFrame(dict(attributes), geometry=list(polygons), crs=crs)
    if to_crs is not None:
        gdf = gdf.to_crs(to_crs)
    gdf.to_file(path, driver="GeoJSON")
    return Path(path)


def to_lonlat(x: float, y: float, crs: str = UTM) -> tuple[float, float]:
    """A point of ``crs`` in longitude / latitude."""
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)


def building_scene(
    tmp_path: Path,
    *,
    size: int = 256,
    bands: int = 3,
    seed: int = 0,
    res: float = 1.0,
    squares: int = 12,
    square: int = 14,
    name: str = "scene",
) -> tuple[Path, Path, np.ndarray]:
    """A dark noisy uint8 scene with bright squares as buildings, and their GeoJSON.

    Returns:
        ``(image_path, labels_path, truth)`` with ``truth`` the (size, size) 0/1 mask.
    """
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 60, size=(bands, size, size)).astype(np.uint8)
    truth = np.zeros((size, size), dtype=np.uint8)
    boxes = []
    step = size // int(np.ceil(np.sqrt(squares)))
    cells = [
        (r, c) for r in range(0, size - step + 1, step) for c in range(0, size - step + 1, step)
    ]
    for r, c in cells[:squares]:
        r0 = r + int(rng.integers(1, max(2, step - square)))
        c0 = c + int(rng.integers(1, max(2, step - square)))
        r1, c1 = min(size, r0 + square), min(size, c0 + square)
        image[:, r0:r1, c0:c1] = rng.integers(200, 250, size=(bands, r1 - r0, c1 - c0))
        truth[r0:r1, c0:c1] = 1
        boxes.append(pixel_box(r0, c0, r1, c1, res=res))
    img = write_geotiff(tmp_path / f"{name}.tif", image, res=res)
    labels = write_geojson(tmp_path / f"{name}.geojson", boxes)
    return img, labels, truth


def tiny_unet_bundle(path: Path, **changes: Any) -> Path:
    """Save an untrained 2-level U-Net (RGB in, building / background out) at ``path``;
    ``changes`` replace fields of its metadata (e.g. ``source="folders"``)."""
    import dataclasses

    from geounet.models.bundle import ModelMeta, build_segmenter, save_bundle

    meta = ModelMeta(
        architecture="unet",
        arguments={"width": 4, "depth": 2},
        in_channels=3,
        out_channels=1,
        classes=["background", "building"],
        colors=[[0, 0, 0], [255, 0, 0]],
        bands=["red", "green", "blue"],
        mean=[100.0] * 3,
        std=[50.0] * 3,
        tile_size=64,
    )
    meta = dataclasses.replace(meta, **changes)
    return save_bundle(build_segmenter(meta), meta, path)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``geounet ARGS`` in a fresh interpreter, as a user's shell would."""
    code = "from geounet.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )
