"""Open, validate and read rasters in windows."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from geounet.errors import InvalidRasterError, first_line, io_errors_as
from geounet.io.atomic import require_file


@dataclass(frozen=True)
class RasterInfo:
    """What geounet needs to know about a raster's grid and bands."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS
    transform: Affine
    nodata: float | None
    band_names: tuple[str, ...]
    dtypes: tuple[str, ...] = ()  # per band (VRTs may mix types)
    nodatas: tuple[float | None, ...] = ()  # per band (stacked band files differ)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def ground_resolution(self) -> float:
        """Mean pixel size in metres on the ground at the raster's centre."""
        cx, cy = self.transform * (self.width / 2, self.height / 2)
        return ground_resolution(self.crs, self.res, (cx, cy))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.height, self.width


def open_raster(path: str | os.PathLike[str]) -> rasterio.io.DatasetReader:
    """Open a raster for reading, turning GDAL's errors into one clear line.

    Args:
        path: Path of a raster file (GeoTIFF, VRT, or anything GDAL reads).

    Returns:
        An open rasterio dataset (use it as a context manager).

    Raises:
        InputFileNotFoundError: If the file does not exist.
        InvalidRasterError: If GDAL cannot read it as a raster.
    """
    p = require_file(path)
    if p.is_dir():
        raise InvalidRasterError(f"{p}: is a directory, expected a raster file such as a GeoTIFF")
    try:
        with warnings.catch_warnings():
            # a missing geotransform is reported by check_georeferenced, in one line
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(p)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidRasterError(
            f"{p}: not a readable raster ({first_line(exc)}); give a GeoTIFF or another GDAL raster"
        ) from exc


def check_georeferenced(src: rasterio.io.DatasetReader, path: str | os.PathLike[str]) -> None:
    """Refuse a raster without a CRS or without a geotransform, in one line.

    Raises:
        InvalidRasterError: What is missing and how to add it.
    """
    if src.crs is None:
        raise InvalidRasterError(
            f"{path}: raster has no CRS; georeference it first "
            "(e.g. gdal_translate -a_srs EPSG:XXXX)"
        )
    if src.transform.is_identity:  # GDAL's default when a file has no geotransform
        if src.gcps[0]:
            raise InvalidRasterError(
                f"{path}: raster is georeferenced by ground control points only; warp it to "
                "a grid first (gdalwarp -r bilinear IN.tif OUT.tif)"
            )
        raise InvalidRasterError(
            f"{path}: raster has a CRS but no geotransform (pixel positions); georeference "
            "it first (e.g. gdal_translate -a_ullr ULX ULY LRX LRY IN.tif OUT.tif)"
        )


def read_errors(
    path: str | os.PathLike[str], what: str = "pixels"
) -> contextlib.AbstractContextManager[None]:
    """Turn a GDAL or OS failure while reading ``path`` into one InvalidRasterError.

    A header that opens but tile data that do not decode (a truncated download, a
    damaged disk) fails only when the pixels are read, often in a reader thread.
    """
    return io_errors_as(
        lambda exc: InvalidRasterError(
            f"{path}: cannot read the {what} ({first_line(exc)}); the file is damaged or "
            f"incomplete: check it with gdalinfo -checksum {path}, or download it again"
        )
    )


def raster_info(path: str | os.PathLike[str], *, require_crs: bool = True) -> RasterInfo:
    """Read and validate a raster's grid, bands and nodata.

    Args:
        path: Path of the raster.
        require_crs: Raise if the raster has no CRS (georeferencing is needed to align
            labels and to write georeferenced outputs).

    Returns:
        The raster's :class:`RasterInfo`.

    Raises:
        InvalidRasterError: If the raster is empty or has no CRS.
    """
    with open_raster(path) as src:
        if src.width == 0 or src.height == 0 or src.count == 0:
            raise InvalidRasterError(f"{path}: raster is empty ({src.width}x{src.height} px)")
        if require_crs:
            check_georeferenced(src, path)
        names = tuple(d or f"band_{i + 1}" for i, d in enumerate(src.descriptions))
        return RasterInfo(
            path=Path(path),
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=src.dtypes[0],
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
            band_names=names,
            dtypes=tuple(src.dtypes),
            nodatas=tuple(src.nodatavals),
        )


def read_window(
    src: rasterio.io.DatasetReader,
    window: Window,
    *,
    indexes: list[int] | None = None,
    out_shape: tuple[int, int] | None = None,
    fill: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window that may extend past the raster, with its validity mask.

    As in GDAL's dataset mask, a pixel is invalid when it lies outside the raster or
    when every band is nodata (or masked by an internal mask band / alpha). Masked
    values of single bands are replaced by ``fill`` (0 by default).

    Args:
        src: An open rasterio dataset.
        window: The window in pixel coordinates; may be partly or wholly outside.
        indexes: 1-based band indexes to read (default: all).
        out_shape: Optional (height, width) to resample the window to (average
            resampling, which skips nodata).
        fill: One value per band for masked values, e.g. the band means so that they
            are neutral after normalization.

    Returns:
        ``(data, valid)``: data of shape (bands, h, w) (float32 when ``fill`` is given,
        else the raster's dtype) and a boolean (h, w) array, True where any band is valid.
    """
    indexes = indexes or list(range(1, src.count + 1))
    h, w = out_shape or (int(window.height), int(window.width))
    kwargs = {"out_shape": (len(indexes), h, w)}
    if out_shape is not None:
        kwargs["resampling"] = rasterio.enums.Resampling.average
    inside = (
        window.col_off >= 0
        and window.row_off >= 0
        and window.col_off + window.width <= src.width
        and window.row_off + window.height <= src.height
    )
    data = src.read(indexes, window=window, boundless=not inside, masked=True, **kwargs)
    masked = np.ma.getmaskarray(data)
    valid = ~masked.all(axis=0)
    if fill is None:
        return np.ma.filled(data, 0), valid
    values = np.asarray(data.data, dtype=np.float32)
    fill_values = np.broadcast_to(np.asarray(fill, dtype=np.float32)[:, None, None], values.shape)
    values[masked] = fill_values[masked]
    return values, valid


def ground_resolution(crs: CRS, res: tuple[float, float], at: tuple[float, float]) -> float:
    """Mean pixel size in metres on the WGS84 ellipsoid around a point.

    Correct for any CRS: projected in metres or feet, Web Mercator (whose units
    shrink with latitude) and geographic (degrees).

    Args:
        crs: The raster's CRS.
        res: Pixel size (x, y) in CRS units.
        at: A point (x, y) in CRS coordinates, usually the raster's centre.

    Returns:
        The geometric mean of the ground pixel width and height, in metres.
    """
    from pyproj import Geod, Transformer

    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x, y = at
    lons, lats = to_lonlat.transform([x, x + res[0], x], [y, y, y + res[1]])
    geod = Geod(ellps="WGS84")
    _, _, width = geod.inv(lons[0], lats[0], lons[1], lats[1])
    _, _, height = geod.inv(lons[0], lats[0], lons[2], lats[2])
    return float(np.sqrt(width * height))


def resample_to(
    path: str | os.PathLike[str], out: str | os.PathLike[str], res: tuple[float, float]
) -> Path:
    """Write a copy of a raster at pixel size ``res`` (CRS units), averaging pixels.

    Training at a coarser resolution than the imagery reads every window through this
    copy instead of resampling it again for every sample. Written atomically as a tiled,
    uncompressed GeoTIFF (fast windowed reads) with the source's nodata and band names.

    Args:
        path: Source raster.
        out: Output GeoTIFF.
        res: Target pixel size (x, y) in the source CRS's units.

    Returns:
        The output path.
    """
    from rasterio.enums import Resampling

    from geounet.io.atomic import atomic_output

    with open_raster(path) as src:
        width = max(1, round(src.width * abs(src.transform.a) / res[0]))
        height = max(1, round(src.height * abs(src.transform.e) / res[1]))
        transform = src.transform * Affine.scale(src.width / width, src.height / height)
        profile = src.profile | {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": None,
            "interleave": "pixel",
        }
        with atomic_output(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for row in range(0, height, 1024):
                rows = min(1024, height - row)
                window = Window(0, row * src.height / height, src.width, rows * src.height / height)
                with read_errors(path):
                    data = src.read(
                        window=window,
                        out_shape=(src.count, rows, width),
                        resampling=Resampling.average,
                        masked=True,
                    )
                dst.write(
                    data.filled(src.nodata if src.nodata is not None else 0),
                    window=Window(0, row, width, rows),
                )
            dst.descriptions = src.descriptions
    return Path(out)
