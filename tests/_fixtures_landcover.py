"""Generated land-cover and crop fixtures: band files, code rasters in another CRS,
nodata borders, sparse labels and parcels with a crop attribute.

Import with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _fixtures_landcover import ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject

UTM = "EPSG:32633"
ORIGIN = (500_000.0, 5_000_000.0)
RES = 10.0
CODES = {11: "water", 21: "developed", 41: "forest", 82: "cropland"}  # NLCD-like codes
# a spectral signature per class over 6 bands (blue, green, red, nir, swir1, swir2)
SIGNATURES = {
    11: [60, 50, 35, 15, 8, 5],
    21: [110, 105, 110, 95, 120, 110],
    41: [40, 55, 35, 160, 80, 40],
    82: [70, 85, 75, 200, 130, 70],
}


@dataclass
class LandcoverScene:
    """Band files, a code raster in another CRS, its truth on the image grid."""

    bands: list[Path]
    labels: Path
    truth: np.ndarray  # codes on the image grid (0 where the image has no data)
    valid: np.ndarray  # pixels where the image has data
    transform: object


def class_layout(size: int) -> np.ndarray:
    """Codes laid out as irregular patches covering a (size, size) grid."""
    yy, xx = np.mgrid[0:size, 0:size]
    codes = np.full((size, size), 41, dtype=np.int32)
    codes[(xx - 0.3 * size) ** 2 + (yy - 0.35 * size) ** 2 < (0.18 * size) ** 2] = 11
    codes[(yy > 0.6 * size) & (xx < 0.55 * size)] = 82
    codes[(xx > 0.65 * size) & ((yy // 12) % 2 == 0)] = 21
    codes[(xx > 0.75 * size) & (yy > 0.7 * size)] = 82
    return codes


def landcover_scene(tmp: Path, size: int = 160, seed: int = 0) -> LandcoverScene:
    """Six single-band files (five float32 with -99999 nodata, the sixth int16 with
    -32768), a nodata border, and the class codes as a float32 raster in EPSG:3857 with
    -99999 nodata outside a labelled disc."""
    rng = np.random.default_rng(seed)
    codes = class_layout(size)
    transform = from_origin(*ORIGIN, RES, RES)
    yy, xx = np.mgrid[0:size, 0:size]
    valid = (xx + yy > 12) & (xx - yy < size - 12)  # a rotated footprint: nodata corners
    paths = []
    for b in range(6):
        values = np.zeros((size, size), np.float32)
        for code, signature in SIGNATURES.items():
            values[codes == code] = signature[b]
        values += rng.normal(0, 6, values.shape).astype(np.float32)
        if b == 5:  # an int16 band with a narrower footprint of its own
            data = np.where(valid & (yy < size - 20), np.rint(values), -32768).astype(np.int16)
            nodata = -32768
        else:
            data = np.where(valid, values, -99999).astype(np.float32)
            nodata = -99999
        path = tmp / f"lsat_{b + 1}0.tif"
        _write(path, data[None], UTM, transform, nodata)
        paths.append(path)
    # the codes in another CRS, with a nodata outside the surveyed area
    labels = np.where(valid, codes, -99999).astype(np.float32)
    dst_crs = "EPSG:3857"
    dst_transform, w, h = calculate_default_transform(
        UTM, dst_crs, size, size, *rasterio.transform.array_bounds(size, size, transform)
    )
    warped = np.full((h, w), -99999, np.float32)
    reproject(
        labels,
        warped,
        src_transform=transform,
        src_crs=UTM,
        src_nodata=-99999,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        dst_nodata=-99999,
        resampling=Resampling.nearest,
    )
    label_path = tmp / "landcover_3857.tif"
    _write(label_path, warped[None], dst_crs, dst_transform, -99999)
    return LandcoverScene(paths, label_path, np.where(valid, codes, 0), valid, transform)


def _write(path: Path, data: np.ndarray, crs: str, transform, nodata: float) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def pixel_box(row0: float, col0: float, row1: float, col1: float) -> shapely.Polygon:
    """Map rectangle of pixel rows [row0, row1) and columns [col0, col1)."""
    x0, y0 = ORIGIN
    return shapely.box(x0 + col0 * RES, y0 - row1 * RES, x0 + col1 * RES, y0 - row0 * RES)


def pixel_point(row: float, col: float) -> shapely.Point:
    """Map point at the centre of pixel (row, col)."""
    return shapely.Point(ORIGIN[0] + (col + 0.5) * RES, ORIGIN[1] - (row + 0.5) * RES)


def write_vector(path: Path, geoms, crs: str = UTM, **attributes) -> Path:
    """Features with attribute columns (any OGR format by extension)."""
    gpd.GeoDataFrame(dict(attributes), geometry=list(geoms), crs=crs).to_file(path)
    return path


def parcels_scene(tmp: Path, seed: int = 0) -> tuple[Path, Path, list[tuple]]:
    """A 3-band scene of parcels in a 4 x 4 grid touching each other, crops by colour,
    and their polygons with a ``crop`` attribute (one parcel's crop is NULL, one is a
    rare crop). Returns (image, parcels, [(row0, col0, row1, col1, crop)])."""
    rng = np.random.default_rng(seed)
    size, cell = 128, 28
    colours = {"barley": (90, 140, 60), "maize": (50, 170, 40), "peas": (140, 120, 80)}
    image = rng.normal(30, 4, (3, size, size))
    parcels = []
    crops = ["barley", "maize"] * 7 + ["peas", None]
    rng.shuffle(crops)
    for k, crop in enumerate(crops):
        r0, c0 = 8 + (k // 4) * cell, 8 + (k % 4) * cell
        colour = colours[crop or "barley"]
        for b in range(3):
            image[b, r0 : r0 + cell, c0 : c0 + cell] = colour[b] + rng.normal(0, 4, (cell, cell))
        parcels.append((r0, c0, r0 + cell, c0 + cell, crop))
    img = _write(
        tmp / "fields.tif",
        np.clip(image, 0, 255).astype(np.uint8),
        UTM,
        from_origin(*ORIGIN, RES, RES),
        None,
    )
    vec = write_vector(
        tmp / "parcels.gpkg",
        [pixel_box(*p[:4]) for p in parcels],
        crop=[p[4] for p in parcels],
    )
    return img, vec, parcels
