"""Write rasters on exactly a reference grid, atomically, as Cloud-Optimized GeoTIFFs."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from geounet.io.atomic import atomic_output, output_errors
from geounet.io.raster import RasterInfo
from geounet.io.style import (
    class_colors,
    default_colors,
    write_class_map_styles,
    write_probability_style,
)

__all__ = ["ClassMapWriter", "InstanceMapWriter", "default_colors", "write_class_map"]

CLASSES_TAG = "GEOUNET_CLASSES"
INSTANCES_TAG = "GEOUNET_INSTANCES"  # instance rasters: the name of the objects' class
CLASS_MAP_TAG = "GEOUNET_CLASS_MAP"  # instance rasters: the class map of the same run
INSTANCE_COLOR_TAG = "GEOUNET_INSTANCE_COLOR"  # instance rasters: RGBA of the objects' class
CLASS_FIELD_TAG = "GEOUNET_CLASS_FIELD"  # class maps: vector column for the class name
LINES_TAG = "GEOUNET_LINES"  # class maps of road models: JSON of the network settings
JOB_TAG = "GEOUNET_JOB"  # distributed runs: JSON of the job signature and class pixel counts


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

    The file carries the class names in the ``GEOUNET_CLASSES`` tag (``geounet vectorize``
    names the classes from it); ``NAME.tif.aux.xml`` beside it gives GDAL a colour table
    of exactly the classes and their names, and ``NAME.qml`` gives QGIS the legend.

    Args:
        path: Output path (written atomically).
        classes: (height, width) integer class ids.
        grid: The reference grid, usually the input scene's :class:`RasterInfo`.
        class_names: Names of classes 0..K-1.
        colors: RGB(A) colours per class (default: by class name, see
            :func:`geounet.io.style.default_colors`).
        nodata: Value marking pixels without prediction (default 255 / 65535).

    Returns:
        The output path.
    """
    if classes.shape != grid.shape:
        raise ValueError(f"class map shape {classes.shape} != grid shape {grid.shape}")
    with ClassMapWriter(path, grid, class_names=class_names, colors=colors, nodata=nodata) as w:
        w.write_rows(0, classes)
    return Path(path)


class ClassMapWriter:
    """Write a class map (and optionally class probabilities) row band by row band.

    Rows go to uncompressed tiled staging GeoTIFFs beside the outputs; closing the writer
    converts them to Cloud-Optimized GeoTIFFs (DEFLATE, overviews, class names), renames
    them into place and writes their style sidecars (:mod:`geounet.io.style`). An
    exception inside the ``with`` block leaves nothing at the output paths. Memory use
    does not depend on the scene size.

    Args:
        path: Class-map output path.
        grid: The output grid (CRS, transform, size).
        class_names: Names of classes 0..K-1.
        colors: RGB(A) colour per class (default: by class name).
        nodata: Class-map nodata value (default 255 / 65535).
        probabilities: Optional path of a K-band uint8 (0-255) probability COG.
        probability_names: Names of the probability bands (default: the classes).
        tags: Extra dataset tags of the class map.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: RasterInfo,
        *,
        class_names: Sequence[str],
        colors: Sequence[Sequence[int]] | None = None,
        nodata: int | None = None,
        probabilities: str | os.PathLike[str] | None = None,
        probability_names: Sequence[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.path, self.grid = Path(path), grid
        self.class_names = list(class_names)
        self.dtype = class_dtype(len(class_names))
        self.nodata = np.iinfo(self.dtype).max if nodata is None else nodata
        if self.nodata < len(class_names):
            raise ValueError(
                f"nodata {self.nodata} collides with class ids 0..{len(class_names) - 1}"
            )
        self.colors = class_colors(self.class_names, colors)
        self.prob_path = Path(probabilities) if probabilities else None
        self.prob_names = list(probability_names or self.class_names)
        self.tags = dict(tags or {})
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ClassMapWriter:
        stack = self._stack.__enter__()
        self._tmp = stack.enter_context(atomic_output(self.path, translate=False))
        self._staging = self._tmp.with_name(self._tmp.name + ".stage.tif")
        stack.callback(self._staging.unlink, missing_ok=True)
        with output_errors(self.path):
            self._dst = rasterio.open(
                self._staging, "w", **self._profile(1, self.dtype, self.nodata)
            )
        stack.callback(self._dst.close)
        self._dst.update_tags(**{CLASSES_TAG: json.dumps(self.class_names)}, **self.tags)
        self._dst.set_band_description(1, "class")
        self._prob = None
        if self.prob_path is not None:
            self._prob_tmp = stack.enter_context(atomic_output(self.prob_path, translate=False))
            self._prob_staging = self._prob_tmp.with_name(self._prob_tmp.name + ".stage.tif")
            stack.callback(self._prob_staging.unlink, missing_ok=True)
            k = len(self.prob_names)
            with output_errors(self.prob_path):
                self._prob = rasterio.open(
                    self._prob_staging, "w", **self._profile(k, "uint8", None)
                )
            stack.callback(self._prob.close)
            self._prob.update_tags(**{CLASSES_TAG: json.dumps(self.class_names)})
            for i, name in enumerate(self.prob_names, start=1):
                self._prob.set_band_description(i, f"p({name})")
        return self

    def _profile(self, count: int, dtype: str, nodata: float | None) -> dict:
        return _staging_profile(self.grid, count, dtype, nodata)

    def update_tags(self, **tags: str) -> None:
        """Add dataset tags to the class map (before the writer closes)."""
        self._dst.update_tags(**tags)

    def write_rows(self, row: int, classes: np.ndarray, probs: np.ndarray | None = None) -> None:
        """Write class ids (n, width) and optionally probabilities (K, n, width): floats
        in [0, 1], or uint8 already scaled to 0-255."""
        ids = classes[classes != self.nodata]
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.class_names)):
            raise ValueError(
                f"class ids {int(ids.min())}..{int(ids.max())} outside "
                f"0..{len(self.class_names) - 1}"
            )
        window = Window(0, row, classes.shape[1], classes.shape[0])
        with output_errors(self.path):
            self._dst.write(classes.astype(self.dtype, copy=False), 1, window=window)
        if self._prob is not None and probs is not None:
            scaled = probs if probs.dtype == np.uint8 else quantize(probs)
            with output_errors(self.prob_path):
                self._prob.write(scaled, window=window)

    def __exit__(self, *exc: object) -> bool | None:
        try:
            if exc[0] is None:
                with output_errors(self.path):
                    self._dst.close()
                    _to_cog(self._staging, self._tmp, "NEAREST")
                if self._prob is not None:
                    with output_errors(self.prob_path):
                        self._prob.close()
                        _to_cog(self._prob_staging, self._prob_tmp, "AVERAGE")
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        suppress = self._stack.__exit__(*exc)
        if exc[0] is None:
            self._write_styles()
        return suppress

    def _write_styles(self) -> None:
        """The style sidecars, once the outputs are in place (a colour table inside a
        TIFF always has 256 opaque entries; the sidecar's has the classes, with alpha)."""
        with output_errors(self.path):
            write_class_map_styles(self.path, self.class_names, self.colors)
        if self._prob is not None:
            with output_errors(self.prob_path):
                write_probability_style(self.prob_path, self.prob_names)


class InstanceMapWriter:
    """Write an instance map (uint32 object ids, 0 = none) row band by row band.

    Staged and converted to a COG like :class:`ClassMapWriter`; the ``GEOUNET_INSTANCES``
    tag names the objects' class so that ``geounet vectorize`` makes one polygon per id.

    Args:
        path: Output path.
        grid: The output grid.
        class_name: Name of the objects' class (e.g. ``"building"``).
        class_map: File name of the class map beside it whose classes the objects take
            (one class per object by majority, e.g. each field's crop type).
        color: RGBA colour of the objects' class, for the style of their polygons.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: RasterInfo,
        class_name: str,
        *,
        class_map: str | None = None,
        color: Sequence[int] | None = None,
    ) -> None:
        self.path, self.grid, self.class_name = Path(path), grid, class_name
        self.class_map = class_map
        self.color = None if color is None else [int(v) for v in color]
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> InstanceMapWriter:
        stack = self._stack.__enter__()
        self._tmp = stack.enter_context(atomic_output(self.path, translate=False))
        self._staging = self._tmp.with_name(self._tmp.name + ".stage.tif")
        stack.callback(self._staging.unlink, missing_ok=True)
        with output_errors(self.path):
            self._dst = rasterio.open(
                self._staging, "w", **_staging_profile(self.grid, 1, "uint32", 0)
            )
        stack.callback(self._dst.close)
        self._dst.update_tags(**{INSTANCES_TAG: self.class_name})
        if self.class_map:
            self._dst.update_tags(**{CLASS_MAP_TAG: self.class_map})
        if self.color:
            self._dst.update_tags(**{INSTANCE_COLOR_TAG: json.dumps(self.color)})
        self._dst.set_band_description(1, f"{self.class_name} id")
        return self

    def write_rows(self, row: int, ids: np.ndarray) -> None:
        """Write object ids (n, width) starting at ``row``."""
        window = Window(0, row, ids.shape[1], ids.shape[0])
        with output_errors(self.path):
            self._dst.write(ids.astype(np.uint32, copy=False), 1, window=window)

    def __exit__(self, *exc: object) -> bool | None:
        try:
            if exc[0] is None:
                with output_errors(self.path):
                    self._dst.close()
                    _to_cog(self._staging, self._tmp, "NEAREST")
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self._stack.__exit__(*exc)


def quantize(probs: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] as uint8 0-255 (as probability rasters store them)."""
    return np.clip(np.rint(probs * 255), 0, 255).astype(np.uint8)


def _staging_profile(grid: RasterInfo, count: int, dtype: str, nodata: float | None) -> dict:
    """Creation options of a tiled staging GeoTIFF on ``grid`` (converted to COG on close)."""
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "IF_SAFER",
    }


def _to_cog(staging: Path, out: Path, overview_resampling: str) -> None:
    rasterio.shutil.copy(
        staging,
        out,
        driver="COG",
        compress="DEFLATE",
        overview_resampling=overview_resampling,
        blocksize=512,
        BIGTIFF="IF_SAFER",
        NUM_THREADS="ALL_CPUS",
    )
