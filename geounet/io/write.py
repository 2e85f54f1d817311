"""Write rasters on exactly a reference grid, atomically, as Cloud-Optimized GeoTIFFs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp

from geounet.io.atomic import atomic_output
from geounet.io.raster import RasterInfo

CLASSES_TAG = "GEOUNET_CLASSES"


def class_dtype(n_classes: int) -> str:
    """Smallest unsigned dtype holding class ids plus one nodata value."""
    return "uint8" if n_classes < 255 else "uint16"


def write_class_map(
    path: str | os.PathLike[str],
    classes: np.ndarray,
    grid: RasterInfo,
    *,
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]] | None = None,
    nodata: int | None = None,
) -> Path:
    """Write a class map on ``grid`` (same CRS, transform, size) as a styled COG.

    The file carries the class names in the ``GEOUNET_CLASSES`` tag and a colour table,
    so QGIS shows it styled and ``geounet vectorize`` names the classes.

    Args:
        path: Output path (written atomically).
        classes: (height, width) integer class ids.
        grid: The reference grid, usually the input scene's :class:`RasterInfo`.
        class_names: Names of classes 0..K-1.
        colors: RGB colours per class (defaults to a built-in palette).
        nodata: Value marking pixels without prediction (default 255 / 65535).

    Returns:
        The output path.
    """
    if classes.shape != grid.shape:
        raise ValueError(f"class map shape {classes.shape} != grid shape {grid.shape}")
    dtype = class_dtype(len(class_names))
    nodata = np.iinfo(dtype).max if nodata is None else nodata
    colors = list(colors) if colors else default_colors(len(class_names))
    if nodata < len(class_names):
        raise ValueError(f"nodata {nodata} collides with class ids 0..{len(class_names) - 1}")
    ids = classes[classes != nodata]
    if ids.size and (ids.min() < 0 or ids.max() >= len(class_names)):
        raise ValueError(
            f"class ids {int(ids.min())}..{int(ids.max())} outside 0..{len(class_names) - 1}"
        )
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    final = Path(path)
    with atomic_output(final) as tmp:
        staging = tmp.with_name(tmp.name + ".stage.tif")
        try:
            with rasterio.open(staging, "w", **profile) as dst:
                dst.write(classes.astype(dtype, copy=False), 1)
                dst.update_tags(**{CLASSES_TAG: json.dumps(list(class_names))})
                dst.set_band_description(1, "class")
                if dtype == "uint8":
                    dst.write_colormap(
                        1, {i: (*map(int, c[:3]), 255) for i, c in enumerate(colors)}
                    )
                    dst.colorinterp = [ColorInterp.palette]
            rasterio.shutil.copy(
                staging,
                tmp,
                driver="COG",
                compress="DEFLATE",
                overview_resampling="NEAREST",
                blocksize=512,
            )
        finally:
            staging.unlink(missing_ok=True)
    return final


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """A readable palette: black background, then distinct colours."""
    base = [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
    ]
    rng = np.random.default_rng(0)
    extra = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(max(0, n - len(base)))]
    return (base + extra)[:n]
