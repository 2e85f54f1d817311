"""Write polygon layers to the vector format chosen by the file extension, atomically."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geounet.errors import GeounetError, InvalidVectorError, UnsupportedFormatError
from geounet.io.atomic import atomic_output
from geounet.io.style import style_path, write_vector_style

DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".fgb": "FlatGeobuf",
    ".parquet": "GeoParquet",
    ".shp": "ESRI Shapefile",
}
# dBASE field names stop at 10 characters: geounet's longer columns get these names.
SHAPEFILE_NAMES = {"perimeter_m": "perim_m", "class_share": "cls_share"}
GPKG_VERSION = "1.2"  # read without warnings by GDAL >= 2.2 (3.6 warns on 1.4)
log = logging.getLogger(__name__)
_SHP_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def write_vectors(gdf: gpd.GeoDataFrame, path: str | os.PathLike[str], *, crs: Any = None) -> Path:
    """Write ``gdf`` to ``path`` in the format given by its extension, atomically.

    ``.geojson``/``.json`` are RFC 7946 GeoJSON (EPSG:4326, lon/lat, counter-clockwise
    exterior rings, no ``crs`` member); ``.gpkg`` (GeoPackage 1.2), ``.fgb``, ``.shp`` and
    ``.parquet`` (GeoParquet) keep the frame's CRS, or ``crs`` if given; shapefiles get
    field names of at most 10 characters (:func:`shapefile_names`). An existing file at
    ``path`` is replaced; empty frames give a valid empty layer. A frame carrying
    ``attrs["style"]`` (``field``, ``classes``, ``colors``) gets a QGIS style beside it.

    Args:
        gdf: Frame to write; must have a CRS.
        path: Output file; its extension picks the format.
        crs: Target CRS for non-GeoJSON formats (GeoJSON is always EPSG:4326).

    Returns:
        The path written.
    """
    path = Path(path)
    driver = check_vector_path(path, crs=crs)
    style = gdf.attrs.get("style")
    geometry = gdf.attrs.get("geometry_type", "Polygon")
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
    if driver == "GeoParquet":
        log.info(
            "%s: GeoParquet opens in GDAL/QGIS built with Arrow (GDAL >= 3.5; not the "
            "Debian/Ubuntu packages); .gpkg opens everywhere",
            path,
        )
    with atomic_output(path) as tmp:
        if driver == "GeoParquet":
            gdf.to_parquet(tmp)
        elif driver == "ESRI Shapefile":
            _write_shapefile(gdf, tmp, path)
        elif driver == "GPKG":
            _write_ogr(gdf, tmp, driver, path.stem, dataset_options={"VERSION": GPKG_VERSION})
        else:
            options = {"RFC7946": "YES"} if driver == "GeoJSON" else {}
            _write_ogr(gdf, tmp, driver, path.stem, **options)
    if style:
        _write_style(path, style, geometry)
    return path


def _write_style(path: Path, style: dict[str, Any], geometry: str) -> None:
    """The QGIS style beside ``path``, unless a raster of the same name already has it."""
    qml = style_path(path)
    raster = next(
        (r for r in (path.with_suffix(".tif"), path.with_suffix(".tiff")) if r.exists()), None
    )
    if raster is not None and qml.exists():
        log.info(
            "%s: %s styles the raster %s; name the vector file differently for its own style",
            path,
            qml.name,
            raster.name,
        )
        return
    colors = [tuple(c) for c in style["colors"]]
    write_vector_style(path, style["field"], style["classes"], colors, geometry)


def shapefile_names(columns: Sequence[str]) -> dict[str, str]:
    """New names of the columns too long for a shapefile (dBASE: 10 characters).

    ``perimeter_m`` becomes ``perim_m`` and ``class_share`` ``cls_share``; a class share
    ``share_<class>`` becomes ``s_<class>`` cut to 10 characters; other long names are
    cut, with a number where two would collide.
    """
    taken = {c for c in columns if len(c) <= 10}
    renamed: dict[str, str] = {}
    for column in columns:
        if len(column) <= 10:
            continue
        name = SHAPEFILE_NAMES.get(column)
        if name is None and column.startswith("share_"):
            name = "s_" + column[len("share_") :]
        name = (name or column)[:10]
        n = 1
        while name in taken:
            suffix = f"_{n}"
            name, n = (name[: 10 - len(suffix)] + suffix), n + 1
        taken.add(name)
        renamed[column] = name
    return renamed


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


def _write_ogr(gdf: gpd.GeoDataFrame, tmp: Path, driver: str, layer: str, **options: Any) -> None:
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
    renamed = shapefile_names([str(c) for c in gdf.columns if c != gdf.geometry.name])
    if renamed:
        log.info(
            "%s: shapefile field names have at most 10 characters: %s",
            final,
            ", ".join(f"{a} -> {b}" for a, b in renamed.items()),
        )
        gdf = gdf.rename(columns=renamed)
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
