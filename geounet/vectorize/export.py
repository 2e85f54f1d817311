"""Write polygon layers to the vector format chosen by the file extension, atomically."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geounet.errors import GeounetError, InvalidVectorError, UnsupportedFormatError
from geounet.io.atomic import atomic_output

DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".fgb": "FlatGeobuf",
    ".parquet": "GeoParquet",
    ".shp": "ESRI Shapefile",
}
SHAPEFILE_NAMES = {"perimeter_m": "perim_m"}
log = logging.getLogger(__name__)
_SHP_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def write_vectors(gdf: gpd.GeoDataFrame, path: str | os.PathLike[str], *, crs: Any = None) -> Path:
    """Write ``gdf`` to ``path`` in the format given by its extension, atomically.

    ``.geojson``/``.json`` are RFC 7946 GeoJSON (EPSG:4326, lon/lat, counter-clockwise
    exterior rings, no ``crs`` member); ``.gpkg``, ``.fgb``, ``.shp`` and ``.parquet``
    (GeoParquet) keep the frame's CRS, or ``crs`` if given; shapefiles name
    ``perimeter_m`` ``perim_m`` (10-character limit). An existing
    file at ``path`` is replaced; empty frames give a valid empty layer.

    Args:
        gdf: Frame to write; must have a CRS.
        path: Output file; its extension picks the format.
        crs: Target CRS for non-GeoJSON formats (GeoJSON is always EPSG:4326).

    Returns:
        The path written.
    """
    path = Path(path)
    driver = check_vector_path(path, crs=crs)
    if gdf.crs is None:
        raise InvalidVectorError(
            f"{path}: the polygons have no CRS; set one with gdf.set_crs(...) before writing"
        )
    if driver == "GeoJSON":
        if gdf.empty:
            log.warning(
                "%s: no features; an empty GeoJSON file has no columns (GeoJSON keeps them "
                "in its features); write .gpkg for an empty layer with its columns",
                path,
            )
        gdf = _ccw(gdf.to_crs(4326))
    elif crs is not None:
        gdf = gdf.to_crs(crs)
    with atomic_output(path) as tmp:
        if driver == "GeoParquet":
            gdf.to_parquet(tmp)
        elif driver == "ESRI Shapefile":
            _write_shapefile(gdf, tmp, path)
        else:
            options = {"RFC7946": "YES"} if driver == "GeoJSON" else {}
            _write_ogr(gdf, tmp, driver, path.stem, **options)
    return path


def check_vector_path(path: str | os.PathLike[str], *, crs: Any = None) -> str:
    """Check that ``path`` (and ``crs``) can be written before any work is done.

    Returns:
        The driver name for the extension.

    Raises:
        UnsupportedFormatError: Unknown extension, or a non-WGS84 ``crs`` for GeoJSON.
        InvalidVectorError: ``crs`` is not a CRS.
        GeounetError: GeoParquet without pyarrow installed.
    """
    path = Path(path)
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise UnsupportedFormatError(
            f"{path}: unsupported vector extension {path.suffix!r}; use one of {', '.join(DRIVERS)}"
        )
    if crs is not None:
        try:
            target = CRS.from_user_input(crs)
        except CRSError as exc:
            raise InvalidVectorError(f"{path}: {crs!r} is not a CRS; use e.g. EPSG:3857") from exc
        if driver == "GeoJSON" and not target.equals(CRS.from_epsg(4326), ignore_axis_order=True):
            raise UnsupportedFormatError(
                f"{path}: GeoJSON is always EPSG:4326 (RFC 7946); drop crs or write .gpkg"
            )
    if driver == "GeoParquet" and importlib.util.find_spec("pyarrow") is None:
        raise GeounetError(f"{path}: writing GeoParquet needs pyarrow; pip install pyarrow")
    return driver


def _write_ogr(gdf: gpd.GeoDataFrame, tmp: Path, driver: str, layer: str, **options: str) -> None:
    """Write with pyogrio; empty frames get an explicit geometry type (``attrs
    ["geometry_type"]``, default Polygon) so the schema holds."""
    kind = gdf.attrs.get("geometry_type", "Polygon")
    kwargs: dict[str, Any] = {"geometry_type": kind} if gdf.empty else {}
    gdf.to_file(tmp, driver=driver, engine="pyogrio", layer=layer, **kwargs, **options)


def _write_shapefile(gdf: gpd.GeoDataFrame, tmp: Path, final: Path) -> None:
    """Write a shapefile beside ``tmp`` and move its sidecars next to ``final``.

    ``atomic_output`` renames only the ``.shp`` (last, on success); the sidecars are moved
    here first, and removed if anything fails.
    """
    sidecars = [tmp.with_suffix(ext) for ext in _SHP_SIDECARS]
    # dBASE field names stop at 10 characters.
    gdf = gdf.rename(columns={c: s for c, s in SHAPEFILE_NAMES.items() if c in gdf.columns})
    try:
        _write_ogr(gdf, tmp, "ESRI Shapefile", final.stem)
        for ext in _SHP_SIDECARS:
            target = final.with_suffix(ext)
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            with contextlib.suppress(FileNotFoundError):
                os.replace(tmp.with_suffix(ext), target)
    finally:
        for leftover in sidecars:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _ccw(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Orient polygon exteriors counter-clockwise and holes clockwise (RFC 7946)."""
    out = gdf.copy()
    out[out.geometry.name] = shapely.orient_polygons(out.geometry.values, exterior_cw=False)
    return out
