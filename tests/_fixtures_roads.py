"""A generated road scene in EPSG:4326 (degrees, as SpaceNet's road tiles) with road
centre lines, for the roads tests.

Import with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _fixtures_roads import road_scene
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString

LON0, LAT0 = -115.2300, 36.1400  # Las Vegas
RES_DEG = 9e-6  # ~0.81 m east-west, ~1.0 m north-south at this latitude


@dataclass
class RoadScene:
    image: Path
    lines: Path
    transform: object
    size: int


def road_scene(tmp: Path, size: int = 128, seed: int = 0) -> RoadScene:
    """A one-band uint16 scene (roads bright on textured ground) and its centre lines:
    a horizontal road across, a vertical road down from it (a T) and a diagonal one."""
    rng = np.random.default_rng(seed)
    transform = from_origin(LON0, LAT0, RES_DEG, RES_DEG)
    rows = [(0.3 * size, 0.3 * size)]  # centre rows / cols in pixels
    lines_px = [
        [(0, 0.3 * size), (size, 0.3 * size)],  # (col, row)
        [(0.6 * size, 0.3 * size), (0.6 * size, size)],
        [(0.05 * size, 0.55 * size), (0.45 * size, 0.95 * size)],
    ]
    del rows
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    road = np.zeros((size, size), bool)
    for (c0, r0), (c1, r1) in lines_px:
        d = _distance_to_segment(xx, yy, (c0, r0), (c1, r1))
        road |= d <= 3.0
    image = 300 + rng.normal(0, 40, (size, size)) + 200 * np.sin(xx / 7) * np.cos(yy / 9)
    image[road] = 1200 + rng.normal(0, 40, road.sum())
    path = tmp / "roads.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="uint16",
        crs="EPSG:4326",
        transform=transform,
    ) as dst:
        dst.write(np.clip(image, 1, 4000).astype(np.uint16)[None])
    geoms = [LineString([transform * (c, r) for c, r in line]) for line in lines_px]
    vec = tmp / "roads.geojson"
    gpd.GeoDataFrame({"road_id": [1, 2, 3]}, geometry=geoms, crs="EPSG:4326").to_file(vec)
    return RoadScene(path, vec, transform, size)


def _distance_to_segment(x, y, a, b):
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(x - (ax + t * dx), y - (ay + t * dy))
