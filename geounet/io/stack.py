"""Stack co-registered rasters (pre/post images, several dates) into one multi-band VRT.

Temporal or paired inputs become stacked channels: the VRT's bands are the bands of the
first file, then those of the second, and so on, named ``t0:red``, ``t1:red``, ...
Every consumer (torchgeo datasets, prediction) then sees one ordinary raster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from geounet.errors import DataError
from geounet.io.atomic import atomic_output
from geounet.io.raster import raster_info

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
    """Band names of a stack: ``t{i}:{name}`` for file ``i``."""
    return [f"t{i}:{name}" for i, names in enumerate(names_per_file) for name in names]


def stack_rasters(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Write a VRT stacking the bands of rasters that share one grid.

    Args:
        paths: Two or more rasters with identical CRS, transform, size and dtype.
        out: The ``.vrt`` path to write (atomically); sources are referenced by
            absolute path.

    Returns:
        The VRT path.

    Raises:
        DataError: If the rasters are not on the same grid.
    """
    infos = [raster_info(p) for p in paths]
    first = infos[0]
    for info in infos[1:]:
        same = (info.crs, info.transform, info.shape) == (first.crs, first.transform, first.shape)
        if not same:
            raise DataError(
                f"{info.path}: not on the grid of {first.path} (CRS, transform and size must "
                "match to stack them); resample it first, e.g. with gdalwarp -tr/-te"
            )
        if info.dtype != first.dtype:
            raise DataError(f"{info.path}: dtype {info.dtype} differs from {first.dtype}")
    gdal_type = _GDAL_TYPES.get(first.dtype)
    if gdal_type is None:
        raise DataError(f"{first.path}: dtype {first.dtype} cannot be stacked")
    names = stacked_band_names([i.band_names for i in infos])
    bands, n = [], 0
    for info in infos:
        for b in range(1, info.count + 1):
            nodata = "" if info.nodata is None else f"<NoDataValue>{info.nodata!r}</NoDataValue>"
            bands.append(
                f'  <VRTRasterBand dataType="{gdal_type}" band="{n + 1}">\n'
                f"    <Description>{escape(names[n])}</Description>{nodata}\n"
                f"    <SimpleSource><SourceFilename>{escape(str(info.path.resolve()))}"
                f"</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource>\n"
                "  </VRTRasterBand>"
            )
            n += 1
    geotransform = ", ".join(repr(v) for v in first.transform.to_gdal())
    xml = (
        f'<VRTDataset rasterXSize="{first.width}" rasterYSize="{first.height}">\n'
        f"  <SRS>{escape(first.crs.to_wkt())}</SRS>\n"
        f"  <GeoTransform>{geotransform}</GeoTransform>\n" + "\n".join(bands) + "\n</VRTDataset>\n"
    )
    with atomic_output(out) as tmp:
        tmp.write_text(xml)
    return Path(out)
