"""The xBD / xView2 layout: pre- and post-disaster PNG pairs with JSON building labels.

A folder holds ``images/<key>_pre_disaster.png``, ``images/<key>_post_disaster.png``
and ``labels/<key>_{pre,post}_disaster.json``. The PNGs carry no georeferencing; each
label file gives every building polygon twice, in pixels (``xy``) and in lon/lat
(``lng_lat``), vertex for vertex. :func:`georeference` fits the affine pixel -> lon/lat
transform to those pairs, so :func:`xbd_scenes` can write GeoTIFFs (EPSG:4326, with the
capture date) and a GeoJSON of the post-disaster buildings with their damage
(``subtype``) that land on the map.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import shapely.errors
from affine import Affine

from geounet.errors import DataError, InputFileNotFoundError, InvalidVectorError
from geounet.io.atomic import atomic_output

log = logging.getLogger(__name__)

DAMAGE_CLASSES = ("no-damage", "minor-damage", "major-damage", "destroyed")
UNCLASSIFIED = "un-classified"
MAX_RESIDUAL_PX = 2.0  # a worse fit of xy to lng_lat is reported


@dataclass(frozen=True)
class XbdTile:
    """One pre/post pair of an xBD folder and its label files."""

    key: str
    pre: Path
    post: Path
    pre_labels: Path
    post_labels: Path


@dataclass(frozen=True)
class XbdScene:
    """A tile as GeoTIFFs and post-disaster building polygons (EPSG:4326)."""

    key: str
    pre: Path
    post: Path
    labels: Path


def find_tiles(root: str | os.PathLike[str]) -> list[XbdTile]:
    """The pre/post pairs of an xBD folder (``images/`` and ``labels/`` inside).

    Raises:
        InputFileNotFoundError: No such folder, or no pairs in it.
        DataError: A pre image without its post image or label files.
    """
    root = Path(root)
    images = root / "images"
    if not images.is_dir():
        raise InputFileNotFoundError(
            f"{root}: not an xBD folder; it needs images/*_pre_disaster.png and "
            "labels/*_pre_disaster.json"
        )
    tiles = []
    for pre in sorted(images.glob("*_pre_disaster.png")):
        key = pre.name.removesuffix("_pre_disaster.png")
        tile = XbdTile(
            key,
            pre,
            images / f"{key}_post_disaster.png",
            root / "labels" / f"{key}_pre_disaster.json",
            root / "labels" / f"{key}_post_disaster.json",
        )
        for path in (tile.post, tile.pre_labels, tile.post_labels):
            if not path.exists():
                raise DataError(f"{path}: missing (the pair of {pre.name}); add it or remove it")
        tiles.append(tile)
    if not tiles:
        raise InputFileNotFoundError(f"{images}: no *_pre_disaster.png images")
    return tiles


class LabelFile(NamedTuple):
    """An xBD label file read once: its path (for messages) and parsed JSON."""

    path: Path
    data: dict


LabelSource = str | os.PathLike[str] | LabelFile


def _label_file(source: LabelSource) -> LabelFile:
    if isinstance(source, LabelFile):
        return source
    return LabelFile(Path(source), read_label_file(source))


def read_label_file(path: str | os.PathLike[str]) -> dict:
    """An xBD label file as parsed JSON, with a clear error for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        data["features"]["xy"], data["features"]["lng_lat"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidVectorError(
            f"{path}: not an xBD label file (JSON with features.xy and features.lng_lat)"
        ) from exc
    return data


def georeference(*label_files: LabelSource) -> tuple[Affine, float]:
    """The affine transform from pixel (column, row) to lon/lat fitted by least squares
    to the paired vertices of the buildings in ``label_files`` (pre and post share it).

    Returns:
        The transform and the RMS residual of the fit in pixels.

    Raises:
        DataError: Fewer than three distinct vertex pairs (no buildings to fit).
    """
    pixels, lonlat = [], []
    for path, data in map(_label_file, label_files):
        features = data["features"]
        for a, b in zip(features["xy"], features["lng_lat"], strict=False):
            xy = shapely.get_coordinates(_geometry(a, path))
            ll = shapely.get_coordinates(_geometry(b, path))
            if len(xy) == len(ll):
                pixels.append(xy)
                lonlat.append(ll)
    if not pixels:
        raise DataError(f"{label_files[0]}: no buildings to georeference the image from")
    px, ll = np.concatenate(pixels), np.concatenate(lonlat)
    design = np.column_stack([px, np.ones(len(px))])
    if len(np.unique(px, axis=0)) < 3 or np.linalg.matrix_rank(design) < 3:
        raise DataError(f"{label_files[0]}: too few building vertices to georeference from")
    coef, *_ = np.linalg.lstsq(design, ll, rcond=None)  # (3, 2): [x, y, 1] -> lon, lat
    transform = Affine(coef[0, 0], coef[1, 0], coef[2, 0], coef[0, 1], coef[1, 1], coef[2, 1])
    inv = ~transform
    back = np.column_stack(
        [inv.a * ll[:, 0] + inv.b * ll[:, 1] + inv.c, inv.d * ll[:, 0] + inv.e * ll[:, 1] + inv.f]
    )
    residual = float(np.sqrt(np.mean(np.sum((back - px) ** 2, axis=1))))
    return transform, residual


def label_frame(source: LabelSource) -> gpd.GeoDataFrame:
    """The buildings of a label file in EPSG:4326 with ``subtype`` (damage; ``building``
    in pre-disaster files) and ``uid``."""
    path, data = _label_file(source)
    features = data["features"]["lng_lat"]
    rows = []
    for f in features:
        props = f.get("properties") or {}
        if props.get("feature_type", "building") != "building":
            continue
        rows.append(
            {
                "subtype": props.get("subtype", props.get("feature_type", "building")),
                "uid": props.get("uid"),
                "geometry": _geometry(f, path),
            }
        )
    if not rows:
        return gpd.GeoDataFrame({"subtype": [], "uid": []}, geometry=[], crs="EPSG:4326")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def _geometry(feature: dict, path: str | os.PathLike[str]):
    """A feature's WKT geometry, or one clear error naming the file."""
    try:
        return shapely.from_wkt(feature["wkt"])
    except (KeyError, TypeError, shapely.errors.GEOSException) as exc:
        raise InvalidVectorError(
            f"{path}: a feature without a readable 'wkt' geometry ({exc}); fix or remove it"
        ) from exc


def capture_date(source: LabelSource) -> str | None:
    """The capture date (YYYY-MM-DD) in a label file's metadata, if any."""
    stamp = _label_file(source).data.get("metadata", {}).get("capture_date")
    return stamp[:10] if isinstance(stamp, str) and len(stamp) >= 10 else None


def write_georeferenced(png: Path, transform: Affine, out: Path, date: str | None = None) -> Path:
    """Write an xBD PNG as a GeoTIFF in EPSG:4326 on ``transform`` (with its date)."""
    try:
        with warnings.catch_warnings():  # PNGs have no georeferencing: that is the point
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(png) as src:
                data = src.read()
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{png}: not a readable image ({exc})") from exc
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype,
        "crs": "EPSG:4326",
        "transform": transform,
        "compress": "deflate",
        "tiled": True,
    }
    with atomic_output(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        if date:
            dst.update_tags(ACQUISITIONDATETIME=date)
    return out


def xbd_scenes(
    roots: list[str | os.PathLike[str]], folder: str | os.PathLike[str]
) -> list[XbdScene]:
    """Every tile of the xBD ``roots`` as georeferenced GeoTIFFs and building GeoJSON in
    ``folder`` (written once; reused while newer than their sources)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scenes, skipped = [], []
    for root in roots:
        for tile in find_tiles(root):
            out = XbdScene(
                tile.key,
                folder / f"{tile.key}_pre_disaster.tif",
                folder / f"{tile.key}_post_disaster.tif",
                folder / f"{tile.key}_buildings.geojson",
            )
            sources = (tile.pre, tile.post, tile.pre_labels, tile.post_labels)
            if not _fresh([out.pre, out.post, out.labels], sources):
                pre, post = _label_file(tile.pre_labels), _label_file(tile.post_labels)
                try:
                    transform, residual = georeference(pre, post)
                except DataError:  # no buildings: nothing places the tile on the map
                    skipped.append(tile.key)
                    continue
                if residual > MAX_RESIDUAL_PX:
                    log.warning(
                        "%s: xy and lng_lat agree to %.1f px only; the georeferencing is "
                        "approximate",
                        tile.post_labels,
                        residual,
                    )
                write_georeferenced(tile.pre, transform, out.pre, capture_date(pre))
                write_georeferenced(tile.post, transform, out.post, capture_date(post))
                with atomic_output(out.labels) as tmp:
                    label_frame(post).to_file(tmp, driver="GeoJSON")
            scenes.append(out)
    if skipped:
        log.warning(
            "%d xBD tile(s) without buildings skipped (nothing georeferences them): %s",
            len(skipped),
            ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    if not scenes:
        raise DataError(f"{', '.join(map(str, roots))}: no xBD tile has buildings to train on")
    return scenes


def png_pair_scene(pngs: list[Path], folder: Path) -> list[Path] | None:
    """GeoTIFFs of an xBD pre/post PNG pair whose label files sit in ``../labels`` (for
    prediction on the xBD layout), or None when ``pngs`` are not such a pair."""
    if len(pngs) != 2 or not all(p.suffix.lower() == ".png" for p in pngs):
        return None
    paths = [p.parent.parent / "labels" / f"{p.stem}.json" for p in pngs]
    if not all(p.exists() for p in paths):
        return None
    labels = [_label_file(p) for p in paths]
    try:
        transform, _ = georeference(*labels)
    except DataError as exc:
        raise DataError(
            f"{pngs[0]}: its label files hold no buildings, which alone georeference xBD "
            "images; give georeferenced GeoTIFFs instead"
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_georeferenced(p, transform, folder / f"{p.stem}.tif", capture_date(lab))
        for p, lab in zip(pngs, labels, strict=True)
    ]


def _fresh(outputs: list[Path], sources: tuple[Path, ...]) -> bool:
    if not all(p.exists() for p in outputs):
        return False
    newest = max(p.stat().st_mtime for p in sources)
    return min(p.stat().st_mtime for p in outputs) >= newest
