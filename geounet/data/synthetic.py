"""Seeded synthetic aerial scene: a suburban GeoTIFF plus building footprints as GeoJSON.

The scene mimics sub-metre RGB imagery of an East African suburb: grass and red laterite
soil, murram and paved roads, trees, concrete pads and cars as distractors, and buildings
with corrugated-iron, tile, metal or concrete roofs that cast shadows away from the sun.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely import affinity

from geounet.io.atomic import atomic_output

# Roof palette: RGB, weight, corrugation stripe amplitude, probability of a gabled roof.
_ROOFS = (
    ((138, 72, 52), 0.26, 0.07, 0.8),  # rusty corrugated iron, red
    ((110, 78, 60), 0.16, 0.07, 0.8),  # rusty corrugated iron, brown
    ((152, 156, 160), 0.18, 0.06, 0.7),  # grey galvanised metal
    ((214, 214, 206), 0.10, 0.02, 0.3),  # white / painted
    ((172, 90, 58), 0.14, 0.03, 0.9),  # terracotta tiles
    ((64, 64, 70), 0.10, 0.00, 0.2),  # dark flat roof
    ((72, 98, 108), 0.06, 0.06, 0.7),  # painted blue-green iron
)
_CARS = np.array([(228, 228, 226), (180, 182, 186), (168, 42, 36), (42, 62, 118), (32, 32, 34)])
_PADS = np.array([(188, 184, 176), (162, 158, 150), (204, 199, 190), (150, 112, 96)])
_SHADOW_TINT = np.array([0.42, 0.45, 0.55], np.float32)


@dataclass(frozen=True)
class SceneInfo:
    """What :func:`make_building_scene` wrote."""

    image_path: Path
    labels_path: Path
    n_buildings: int
    crs: str
    transform: Affine
    shape: tuple[int, int]


def _fbm(rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 3):
    """Fractal value noise in [0, 1] with features of about ``cell`` pixels."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    amp = 1.0
    for _ in range(octaves):
        c = max(cell, 1.0)
        grid = rng.random((int(h / c) + 2, int(w / c) + 2), dtype=np.float32)
        ys, xs = np.arange(h, dtype=np.float32) / c, np.arange(w, dtype=np.float32) / c
        y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
        fy, fx = ys - y0, xs - x0
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        rows = grid[y0] * (1 - fy)[:, None] + grid[y0 + 1] * fy[:, None]
        left = rows[:, x0]
        out += amp * (left + (rows[:, x0 + 1] - left) * fx)
        amp, cell = amp * 0.5, cell / 2
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _box3(img: np.ndarray) -> np.ndarray:
    """Separable 3x3 box blur of an (H, W, C) array with edge padding."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    p = (p[:-2] + p[1:-1] + p[2:]) / 3
    return (p[:, :-2] + p[:, 1:-1] + p[:, 2:]) / 3


def _rect(cx: float, cy: float, length: float, width: float, angle: float) -> shapely.Polygon:
    """Rectangle centred on (cx, cy), long side ``length`` along ``angle`` degrees."""
    r = shapely.box(-length / 2, -width / 2, length / 2, width / 2)
    return affinity.translate(affinity.rotate(r, angle, origin=(0, 0)), cx, cy)


def _burn(geoms: list, shape: tuple[int, int], ids: bool = True) -> np.ndarray:
    """Rasterize pixel-space geometries (x=col, y=row); later ids overwrite earlier."""
    if not geoms:
        return np.zeros(shape, np.int32)
    pairs = [(g, i + 1 if ids else 1) for i, g in enumerate(geoms)]
    return rasterize(pairs, out_shape=shape, fill=0, dtype="int32", all_touched=False)


def _ground(rng, shape, px):
    """Vegetation/soil mosaic and roads. Returns image, vegetation field, road list."""
    h, w = shape
    veg, dry = _fbm(rng, shape, 70 * px), _fbm(rng, shape, 25 * px)
    fine = _fbm(rng, shape, 0.8 * px, 2)[..., None]
    grass = np.array([84, 108, 56], np.float32) * (1 - dry[..., None] * 0.45)
    grass += np.array([140, 132, 86], np.float32) * dry[..., None] * 0.45
    t = np.clip((veg - 0.26) / 0.22, 0, 1)[..., None]
    img = np.array([154, 104, 78], np.float32) * (1 - t) + grass * t
    shrub = np.clip((_fbm(rng, shape, 3 * px, 2)[..., None] - 0.6) / 0.2, 0, 1) * t
    img *= (0.82 + 0.36 * fine) * (1 - 0.3 * shrub)
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    wobble = (_fbm(rng, shape, 30 * px, 2) - 0.5) * np.float32(2.5 * px)
    fine = fine[..., 0]
    roads, base = [], rng.uniform(0, 180)
    for _ in range(max(1, round(rng.uniform(1.6, 3.0) * np.sqrt(h * w) / (307 * px)))):
        ang = (
            base + rng.choice([0, 90]) + rng.normal(0, 6)
            if rng.random() < 0.7
            else rng.uniform(0, 180)
        )
        ux, uy = np.cos(np.radians(ang)), np.sin(np.radians(ang))
        cx, cy, half = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2.0, 4.0) * px
        d = np.abs(
            (xs - np.float32(cx)) * np.float32(-uy)
            + (ys - np.float32(cy)) * np.float32(ux)
            + wobble
        )
        rr, cc = np.nonzero(d < half + px)  # only touch the road corridor
        d = d[rr, cc]
        alpha = np.clip((half - d) / (0.8 * px) + 0.5, 0, 1)[:, None]
        if rng.random() < 0.65:  # murram road with darker wheel ruts
            col = np.array([184, 120, 80], np.float32) * (0.9 + 0.2 * fine[rr, cc])[:, None]
            col *= 1 - 0.12 * np.exp(-(((d - half / 2) / (0.5 * px)) ** 2))[:, None]
        else:
            col = np.array([98, 98, 102], np.float32) * (0.93 + 0.14 * fine[rr, cc])[:, None]
        img[rr, cc] = img[rr, cc] * (1 - alpha) + col * alpha
        far = (h + w) * 2
        line = shapely.LineString([(cx - ux * far, cy - uy * far), (cx + ux * far, cy + uy * far)])
        roads.append((line, half, ang))
    return img, veg, roads


def _place(rng, shape, px, n, roads, occupied, sizes, align=0.7, near=30.0, gap=1.5):
    """Rejection-sample non-overlapping rotated rectangles/L-shapes near roads."""
    h, w = shape
    scene = shapely.box(2 * px, 2 * px, w - 2 * px, h - 2 * px)
    keep: list[tuple[shapely.Geometry, list]] = []
    for _ in range(40 * n + 50):
        if len(keep) >= n:
            break
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        dist = [line.distance(shapely.Point(cx, cy)) - half for line, half, _ in roads]
        k = int(np.argmin(dist))
        if rng.random() > 0.2 + np.exp(-max(dist[k], 0) / (near * px)):
            continue
        ang = roads[k][2] + rng.choice([0, 90]) + rng.normal(0, 4)
        ang = ang if rng.random() < align else rng.uniform(0, 180)
        length, width = rng.uniform(*sizes[0]) * px, rng.uniform(*sizes[1]) * px
        length, width = max(length, width), min(length, width)
        parts = [_rect(cx, cy, length, width, ang)]
        if sizes[2] and rng.random() < 0.3:  # L-shape: a wing at one end of the long side
            ww, wl = rng.uniform(5, min(9, length / px - 1)) * px, rng.uniform(4, 9) * px
            a, b = rng.choice([-1, 1]), rng.choice([-1, 1])
            along, across = a * (length - ww) / 2, b * (width + wl) / 2 - b * px
            ca, sa = np.cos(np.radians(ang)), np.sin(np.radians(ang))
            wx, wy = cx + along * ca - across * sa, cy + along * sa + across * ca
            parts.append(_rect(wx, wy, wl + 2 * px, ww, ang + 90))
        fp = shapely.union_all(parts)
        if not scene.contains(fp):
            continue
        if any(fp.distance(line) < half + 2 * px for line, half, _ in roads):
            continue
        if occupied and shapely.dwithin(fp, np.array(occupied), gap * px).any():
            continue
        occupied.append(fp)
        keep.append((fp, parts))
    return keep


def _paint_roofs(rng, img, buildings, shape, sun, tex):
    """Draw roofs (gables, corrugation, rust, dark eaves) and return the roof id raster."""
    if not buildings:
        return _burn([], shape)
    footprints = [fp for fp, _ in buildings]
    parts = [p for _, ps in buildings for p in ps]
    owner = np.array([i for i, (_, ps) in enumerate(buildings) for _ in ps], np.int64)
    first = np.searchsorted(owner, np.arange(len(buildings)))
    probs = np.array([r[1] for r in _ROOFS])
    kind = rng.choice(len(_ROOFS), size=len(buildings), p=probs / probs.sum())
    base = np.array([_ROOFS[k][0] for k in kind], np.float32)
    base *= rng.uniform(0.85, 1.12, (len(buildings), 1)).astype(np.float32)
    rust = np.array([0.35 if k in (0, 1) else 0.1 for k in kind], np.float32)
    stripe = np.array([_ROOFS[k][2] for k in kind], np.float32)[owner]
    gable = (rng.random(len(buildings)) < [_ROOFS[k][3] for k in kind]) * rng.uniform(
        0.08, 0.22, len(buildings)
    )
    rect = np.array([shapely.get_coordinates(shapely.oriented_envelope(p))[:4] for p in parts])
    c = rect.mean(axis=1)
    e1, e2 = rect[:, 1] - rect[:, 0], rect[:, 2] - rect[:, 1]
    axis = np.where((np.hypot(*e1.T) >= np.hypot(*e2.T))[:, None], e1, e2)
    axis /= np.hypot(*axis.T)[:, None]
    roof, part = _burn(footprints, shape), _burn(parts, shape)
    rr, cc = np.nonzero(roof)
    b = roof[rr, cc] - 1
    p = np.where(part[rr, cc] > 0, part[rr, cc] - 1, first[b])
    dx, dy = cc + 0.5 - c[p, 0], rr + 0.5 - c[p, 1]
    u, v = dx * axis[p, 0] + dy * axis[p, 1], -dx * axis[p, 1] + dy * axis[p, 0]
    facing = np.sign(-axis[p, 1] * -sun[0] + axis[p, 0] * -sun[1])  # normal . (toward sun)
    shade = (
        1
        + gable[owner[p]] * np.sign(v) * facing
        + 0.12 * np.exp(-((v / 0.7) ** 2)) * (gable[owner[p]] > 0)
    )
    shade *= 1 + stripe[p] * np.sin(2 * np.pi * u / 3.3)
    shade *= 1 - rust[b] + 2 * rust[b] * tex[rr, cc]
    img[rr, cc] = base[b] * shade[:, None]
    edge = np.zeros(shape, bool)
    edge[1:-1, 1:-1] = (roof[1:-1, 1:-1] > 0) & (
        (roof[:-2, 1:-1] != roof[1:-1, 1:-1]) | (roof[2:, 1:-1] != roof[1:-1, 1:-1])
        | (roof[1:-1, :-2] != roof[1:-1, 1:-1]) | (roof[1:-1, 2:] != roof[1:-1, 1:-1])
    )  # fmt: skip
    img[edge] *= 0.82
    return roof


def _shadow(img, geoms, offsets, shape, exclude=None):
    """Darken the swept shadow of each geometry along its offset vector."""
    sweeps = [
        shapely.convex_hull(shapely.union(g, affinity.translate(g, ox, oy)))
        for g, (ox, oy) in zip(geoms, offsets, strict=True)
    ]
    mask = _burn(sweeps, shape, ids=False) > 0
    if exclude is not None:
        mask &= ~exclude
    img[mask] *= _SHADOW_TINT


def _trees(rng, img, veg, buildings, shape, px, sun, tex, n):
    """Scatter textured tree crowns (some over building edges) with their shadows."""
    h, w = shape
    corners = np.concatenate([shapely.get_coordinates(fp) for fp, _ in buildings] or [[[0, 0]]])
    xy = rng.uniform([0, 0], [w, h], (n * 3, 2))
    xy = xy[rng.random(n * 3) < veg[xy[:, 1].astype(int), xy[:, 0].astype(int)] ** 1.5][:n]
    m = int(0.35 * len(xy)) if buildings else 0
    near = corners[rng.integers(0, len(corners), m)] + rng.normal(0, 1.2 * px, (m, 2))
    xy = np.concatenate([xy, near])
    r = rng.uniform(1.5, 5.0, len(xy)) * px
    ang = np.linspace(0, 2 * np.pi, 17)[:-1]
    rad = r[:, None] * (1 + 0.12 * rng.standard_normal((len(xy), 16)))
    ring = np.stack([xy[:, :1] + rad * np.cos(ang), xy[:, 1:] + rad * np.sin(ang)], axis=-1)
    crowns = list(shapely.polygons(ring))
    _shadow(img, crowns, sun[None] * r[:, None] * 1.1, shape)
    ids = _burn(crowns, shape)
    rr, cc = np.nonzero(ids)
    t = ids[rr, cc] - 1
    lit = ((cc + 0.5 - xy[t, 0]) * sun[0] + (rr + 0.5 - xy[t, 1]) * sun[1]) / r[t]
    col = np.array([(38, 66, 32), (54, 82, 38), (78, 108, 48)], np.float32)
    tcol = col[rng.integers(0, 3, len(xy))] * rng.uniform(0.85, 1.15, (len(xy), 1))
    img[rr, cc] = tcol[t] * ((1 - 0.35 * lit) * (0.6 + 0.7 * tex[rr, cc]))[:, None]


def _objects(rng, img, shape, px, roads, occupied, n_pads, sun):
    """Distractors: concrete/paved pads in yards and car-sized rectangles on roads."""
    h, w = shape
    pads = _place(rng, shape, px, n_pads, roads, occupied, ((4, 14), (3, 10), False), 0.5, 60, 1)
    mask = _burn([fp for fp, _ in pads], shape)
    cols = _PADS[rng.integers(0, len(_PADS), len(pads))] * rng.uniform(0.9, 1.08, (len(pads), 1))
    sel = mask > 0
    img[sel] = cols[mask[sel] - 1] * (0.9 + 0.2 * rng.random((sel.sum(), 1), np.float32))
    cars = []
    for line, half, ang in roads:
        centre = line.interpolate(0.5, normalized=True)
        for _ in range(rng.poisson((h + w) / (80 * px))):
            s = rng.uniform(-1, 1) * (h + w) / 2
            off = rng.choice([-0.45, 0.45]) * half
            ca, sa = np.cos(np.radians(ang)), np.sin(np.radians(ang))
            x, y = centre.x + s * ca - off * sa, centre.y + s * sa + off * ca
            if 3 * px < x < w - 3 * px and 3 * px < y < h - 3 * px:
                cars.append(_rect(x, y, 4.4 * px, 1.8 * px, ang + rng.normal(0, 3)))
    if cars:
        _shadow(img, cars, [tuple(sun * 0.8 * px)] * len(cars), shape)
        ids = _burn(cars, shape)
        sel = ids > 0
        img[sel] = _CARS[rng.integers(0, len(_CARS), len(cars))][ids[sel] - 1]


def make_building_scene(
    image_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    *,
    size: tuple[int, int] = (1024, 1024),
    resolution: float = 0.3,
    seed: int = 0,
    crs: str = "EPSG:32636",
    origin: tuple[float, float] = (452000.0, 38000.0),
) -> SceneInfo:
    """Write a seeded synthetic aerial GeoTIFF and its building footprints.

    Args:
        image_path: Output 3-band uint8 GeoTIFF (tiled 256x256, deflate).
        labels_path: Output GeoJSON of footprints in EPSG:4326 (``class``, ``building_id``).
        size: (height, width) in pixels.
        resolution: Ground sampling distance in metres per pixel.
        seed: Random seed; the same seed gives the same image and polygons.
        crs: CRS of the image grid (projected, metres).
        origin: (x_left, y_top) of the image in ``crs`` units.

    Returns:
        A :class:`SceneInfo` describing what was written.
    """
    h, w = (int(v) for v in size)
    if h < 1 or w < 1 or resolution <= 0:
        raise ValueError(f"invalid size {size} or resolution {resolution}")
    shape, px = (h, w), 1.0 / resolution
    rng = np.random.default_rng(seed)
    transform = Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])
    az = rng.uniform(0, 2 * np.pi)
    sun = np.array([np.cos(az), np.sin(az)])  # direction in which shadows fall (x, y)
    tan_zenith = rng.uniform(0.35, 0.9)
    img, veg, roads = _ground(rng, shape, px)
    tex = _fbm(rng, shape, 1.2 * px, 2)
    n_target = max(1, round(rng.uniform(30, 60) * h * w / (1024 * 1024) * (resolution / 0.3) ** 2))
    occupied: list = []
    buildings = _place(rng, shape, px, n_target, roads, occupied, ((7, 20), (6, 14), True))
    parts = [p for _, ps in buildings for p in ps]
    heights = rng.uniform(2.6, 6.5, len(buildings))
    lengths = [heights[i] * tan_zenith * px for i, (_, ps) in enumerate(buildings) for _ in ps]
    _objects(rng, img, shape, px, roads, occupied, round(n_target * rng.uniform(0.2, 0.45)), sun)
    _shadow(img, parts, [tuple(sun * s) for s in lengths], shape)
    _paint_roofs(rng, img, buildings, shape, sun, tex)
    _trees(rng, img, veg, buildings, shape, px, sun, tex, round(n_target * rng.uniform(1.5, 3)))
    light = 0.88 + 0.24 * _fbm(rng, shape, 150 * px, 2)[..., None]
    img *= light * (0.96 + 0.08 * rng.random(3)).astype(np.float32)
    img = 0.55 * img + 0.45 * _box3(img)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 3.5
    data = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(2, 0, 1)

    profile = dict(driver="GTiff", height=h, width=w, count=3, dtype="uint8", crs=crs,
                   transform=transform, tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", interleave="pixel", photometric="RGB")  # fmt: skip
    with atomic_output(image_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    geoms = [affinity.affine_transform(fp, transform.to_shapely()) for fp, _ in buildings]
    n = len(geoms)
    gdf = gpd.GeoDataFrame(
        {"class": ["building"] * n, "building_id": np.arange(1, n + 1, dtype=np.int64)},
        geometry=gpd.GeoSeries(geoms, crs=crs),
    ).to_crs("EPSG:4326")
    with atomic_output(labels_path) as tmp:
        gdf.to_file(tmp, driver="GeoJSON")
    return SceneInfo(Path(image_path), Path(labels_path), n, crs, transform, shape)
