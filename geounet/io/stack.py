"""Stack co-registered rasters into one multi-band VRT: band files, or several dates.

Two kinds of stack, both on one grid:

* ``bands``: single-band (or few-band) files of one acquisition, such as Landsat or
  Sentinel-2 band files; the bands keep their own names (the band description, else the
  file's stem, e.g. ``B08``).
* ``dates``: the same bands at several dates (pre/post images, a season); band ``red`` of
  file ``i`` is named ``t{i}:red``.

Files of different data types (an int16 band beside float32 ones) are read through one
common type that holds every value exactly (float32 here), and each band keeps its own
nodata value, so masks stay per band. Every consumer (torchgeo datasets, prediction) then
sees one ordinary raster.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio

from geounet.errors import DataError
from geounet.io.atomic import atomic_output
from geounet.io.raster import RasterInfo, raster_info

STACKS = ("dates", "bands")

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def stacked_band_names(names_per_file: Sequence[Sequence[str]]) -> list[str]:
    """Band names of a stack of dates: ``t{i}:{name}`` for file ``i``."""
    return [f"t{i}:{name}" for i, names in enumerate(names_per_file) for name in names]


def file_band_names(info: RasterInfo) -> list[str]:
    """Names of a band file's bands: descriptions, or the file's stem for unnamed bands
    (``B08.tif`` -> ``B08``; ``band_2`` of ``scene.tif`` -> ``scene:band_2``)."""
    stem = info.path.name.split(".")[0]
    if info.count == 1:
        name = info.band_names[0]
        return [stem if name == "band_1" else name]
    return [n if not n.startswith("band_") else f"{stem}:{n}" for n in info.band_names]


def common_dtype(dtypes: Sequence[str]) -> str:
    """The smallest GDAL-writable type holding every value of ``dtypes`` exactly.

    Mixing integers with floats gives float32 when every integer type fits (int16,
    uint16, 8-bit), float64 otherwise.
    """
    kinds = {np.dtype(d).kind for d in dtypes}
    if "f" in kinds:
        wide = any(np.dtype(d).itemsize > 2 and np.dtype(d).kind != "f" for d in dtypes)
        floats = max(np.dtype(d).itemsize for d in dtypes if np.dtype(d).kind == "f")
        return "float64" if wide or floats > 4 else "float32"
    result = np.result_type(*[np.dtype(d) for d in dtypes]).name
    return result if result in _GDAL_TYPES else "float64"


def stack_rasters(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    kind: str = "dates",
) -> Path:
    """Write a VRT stacking the bands of rasters that share one grid.

    Args:
        paths: One or more rasters with identical CRS, transform and size (any dtypes).
        out: The ``.vrt`` path to write (atomically); sources are referenced by
            absolute path.
        kind: ``"dates"`` (names ``t0:red``, ``t1:red``, ...) or ``"bands"`` (each
            band keeps its name; single-band files are named after the file).

    Returns:
        The VRT path.

    Raises:
        DataError: If the rasters are not on the same grid.
    """
    if kind not in STACKS:
        raise ValueError(f"kind must be one of {STACKS}, got {kind!r}")
    infos = [raster_info(p) for p in paths]
    first = infos[0]
    for info in infos[1:]:
        same = (info.crs, info.shape) == (first.crs, first.shape) and info.transform.almost_equals(
            first.transform
        )
        if not same:
            raise DataError(
                f"{info.path}: not on the grid of {first.path} (CRS, transform and size must "
                "match to stack them); resample it first, e.g. with gdalwarp -tr/-te"
            )
    dtype = common_dtype([d for i in infos for d in i.dtypes])
    if kind == "dates":
        names = stacked_band_names([i.band_names for i in infos])
    else:
        names = [n for i in infos for n in file_band_names(i)]
    sources = [(info, b, info.nodatas[b - 1]) for info in infos for b in range(1, info.count + 1)]
    return _write_vrt(first, sources, names, dtype, out)


def uniform_scene(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """``path`` itself, or a VRT of it with one data type when its bands differ in type.

    GDAL allows a VRT whose bands have different types; torchgeo and rasterio's merge do
    not, so such a scene is read through a VRT of the common type (nodata kept per band).
    """
    info = raster_info(path)
    if len(set(info.dtypes)) == 1:
        return Path(path)
    dtype = common_dtype(info.dtypes)
    sources = [(info, b, info.nodatas[b - 1]) for b in range(1, info.count + 1)]
    return _write_vrt(info, sources, list(info.band_names), dtype, out)


def _write_vrt(
    grid: RasterInfo,
    sources: Sequence[tuple[RasterInfo, int, float | None]],
    names: Sequence[str],
    dtype: str,
    out: str | os.PathLike[str],
) -> Path:
    gdal_type = _GDAL_TYPES.get(dtype)
    if gdal_type is None:
        raise DataError(f"{grid.path}: dtype {dtype} cannot be stacked")
    bands = []
    for n, ((info, b, nodata), name) in enumerate(zip(sources, names, strict=True), start=1):
        nodata_xml = "" if nodata is None else f"<NoDataValue>{_nodata_text(nodata)}</NoDataValue>"
        source_nodata = "" if nodata is None else f"<NODATA>{_nodata_text(nodata)}</NODATA>"
        bands.append(
            f'  <VRTRasterBand dataType="{gdal_type}" band="{n}">\n'
            f"    <Description>{escape(name)}</Description>{nodata_xml}\n"
            f"    <ComplexSource><SourceFilename>{escape(str(info.path.resolve()))}"
            f"</SourceFilename><SourceBand>{b}</SourceBand>{source_nodata}</ComplexSource>\n"
            "  </VRTRasterBand>"
        )
    geotransform = ", ".join(repr(v) for v in grid.transform.to_gdal())
    xml = (
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">\n'
        f"  <SRS>{escape(grid.crs.to_wkt())}</SRS>\n"
        f"  <GeoTransform>{geotransform}</GeoTransform>\n" + "\n".join(bands) + "\n</VRTDataset>\n"
    )
    with atomic_output(out) as tmp:
        tmp.write_text(xml)
    return Path(out)


def _nodata_text(value: float) -> str:
    value = float(value)
    if np.isnan(value):
        return "nan"
    return repr(int(value)) if value.is_integer() else repr(value)


_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_:]?([01]\d)[-_:]?([0-3]\d)(?!\d)")
_DATE_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATE", "DATE_ACQUIRED", "TIFFTAG_DATETIME")


def acquisition_date(path: str | os.PathLike[str]) -> str | None:
    """The acquisition date (``YYYY-MM-DD``) of a raster, if it can be told.

    Read from the usual metadata tags (``ACQUISITIONDATETIME``, ``DATE_ACQUIRED``,
    ``TIFFTAG_DATETIME``), else from a date in the file name (``20160512``,
    ``2016-05-12``); ``None`` when neither holds a valid date.
    """
    p = Path(path)
    candidates = []
    try:
        with rasterio.open(p) as src:
            tags = src.tags()
        candidates += [tags[k] for k in _DATE_TAGS if tags.get(k)]
    except rasterio.errors.RasterioIOError:
        pass
    candidates.append(p.name)
    for text in candidates:
        for match in _DATE.finditer(str(text)):
            year, month, day = (int(g) for g in match.groups())
            if 1 <= month <= 12 and 1 <= day <= 31:
                return f"{year:04d}-{month:02d}-{day:02d}"
    return None
