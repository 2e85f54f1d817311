"""Vectorizer benchmark: streamed against whole-raster `vectorize_raster` and plain rasterio.

`vectorize_raster` streamed by windows is compared with the whole raster in one window and
with plain rasterio, plus the cost and effect of simplify and regularize.

Measured on a generated building mask (single-band uint8, 0 background / 1 building, tiled
512 x 512, DEFLATE, EPSG:32636 at 0.3 m, ~17 % cover of rotated rectangles and L shapes
5-40 m across, at least 1 m apart). It is written 2048 rows at a time (small memory) and
cached in --workdir as buildings_<size>_seed<seed>.tif (delete it to regenerate).

Every mode runs in a fresh child process; the clock starts after the imports and stops
when the GeoDataFrame is built (file open and read included). Peak RSS is the child's own
high-water mark (VmHWM; ``ru_maxrss`` would include the parent's); the RSS after imports
shows how much of it is the libraries.

- streamed: ``vectorize_raster(path, VectorizeOptions(window=--window))``
- whole: the same with window = raster side (one window, same code path)
- rasterio: the naive script (what gdal_polygonize does): read the band into memory,
  ``rasterio.features.shapes`` over it, ``shapely.geometry.shape`` per polygon, a
  GeoDataFrame with class ids (no geodesic area/perimeter, no validity check)
- streamed+simplify: streamed with ``simplify_m=0.5``
- streamed+regularize: streamed with ``regularize=True``

Each child saves its polygons as GeoParquet in --workdir; the parent checks that streamed
and whole give the same polygons (count, class ids, total area, identical geometries) and
compares rasterio's, then prints Markdown tables with ratios. Exit status 1 on a mismatch.

    .venv/bin/python benchmarks/vectorize.py [--size 16384] [--window 2048]
        [--modes streamed,whole,rasterio,streamed+simplify,streamed+regularize]

With --size <= --window, streamed and whole are the same run; use e.g.
``--size 2048 --window 512`` for a quick check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _rss import peak_rss_mb  # benchmarks/ is on sys.path when run as a script

MODES = ("streamed", "whole", "rasterio", "streamed+simplify", "streamed+regularize")
PIXEL_M = 0.3
ORIGIN = (450_000.0, 40_000.0)  # top-left corner, UTM zone 36N (near Kampala)
CRS = "EPSG:32636"
CLASSES = ["background", "building"]
BLOCK = 512  # GeoTIFF tile side
STRIP = 2048  # rows rasterized and written at a time
COVER = 0.18  # building area drawn / raster area (edge clipping leaves a bit less)
SIDE_M = (5.0, 40.0)  # building side lengths
L_SHARE = 0.4  # share of L-shaped buildings
GAP_M = 1.0  # smallest gap between buildings
SIMPLIFY_M = 0.5
TAG_BUILDINGS, TAG_COVER = "BENCH_BUILDINGS", "BENCH_COVER"


# --------------------------------------------------------------------------- the mask


def make_buildings(size: int, seed: int) -> list[Any]:
    """Random non-touching building footprints in CRS coordinates (sequential placement).

    Args:
        size: Raster side in pixels.
        seed: Random seed.

    Returns:
        Shapely polygons: rotated rectangles and L shapes, at least ``GAP_M`` apart.
    """
    import numpy as np
    import shapely
    from shapely.geometry import Polygon

    rng = np.random.default_rng(seed)
    extent = size * PIXEL_M
    x0, y1 = ORIGIN
    cell = math.hypot(SIDE_M[1], SIDE_M[1]) + GAP_M  # neighbours within the 3 x 3 cells
    grid: dict[tuple[int, int], list[int]] = {}
    polys: list[Any] = []
    centres: list[tuple[float, float, float]] = []  # x, y, bounding radius
    covered, target = 0.0, COVER * extent**2
    attempts, max_attempts = 0, 20 * int(target / 300 + 10)
    while covered < target and attempts < max_attempts:
        n = 1024
        attempts += n
        cx = rng.uniform(x0, x0 + extent, n)
        cy = rng.uniform(y1 - extent, y1, n)
        w, h = rng.uniform(*SIDE_M, n), rng.uniform(*SIDE_M, n)
        angle = rng.uniform(0, math.pi / 2, n)
        is_l = rng.random(n) < L_SHARE
        cut = rng.uniform(0.35, 0.65, (n, 2))
        for i in range(n):
            if covered >= target:
                break
            a, b = w[i] / 2, h[i] / 2
            if is_l[i]:
                cw, ch = a - cut[i, 0] * w[i], b - cut[i, 1] * h[i]
                local = [(-a, -b), (a, -b), (a, ch), (cw, ch), (cw, b), (-a, b)]
            else:
                local = [(-a, -b), (a, -b), (a, b), (-a, b)]
            cos, sin = math.cos(angle[i]), math.sin(angle[i])
            poly = Polygon(
                [(cx[i] + u * cos - v * sin, cy[i] + u * sin + v * cos) for u, v in local]
            )
            radius = math.hypot(a, b)
            gx, gy = int((cx[i] - x0) // cell), int((cy[i] - y1) // cell)
            near = [
                j
                for dx in (-1, 0, 1)
                for dy in (-1, 0, 1)
                for j in grid.get((gx + dx, gy + dy), ())
                if math.hypot(centres[j][0] - cx[i], centres[j][1] - cy[i])
                < centres[j][2] + radius + GAP_M
            ]
            if near and shapely.dwithin(poly, [polys[j] for j in near], GAP_M).any():
                continue
            grid.setdefault((gx, gy), []).append(len(polys))
            polys.append(poly)
            centres.append((cx[i], cy[i], radius))
            covered += poly.area
    return polys


def make_mask(path: Path, size: int, seed: int) -> Path:
    """Write (once) the ``size`` x ``size`` building mask, ``STRIP`` rows at a time.

    Each strip is rasterized from every building that intersects it (pixel centres decide,
    so buildings straddling strip borders come out whole).
    """
    if path.exists():
        return path
    import numpy as np
    import rasterio
    import rasterio.features
    import shapely
    from rasterio.transform import from_origin

    polys = make_buildings(size, seed)
    tree = shapely.STRtree(polys)
    transform = from_origin(*ORIGIN, PIXEL_M, PIXEL_M)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": transform,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    tmp = path.with_suffix(".tmp.tif")
    ones = 0
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, STRIP):
            rows = min(STRIP, size - row)
            top = ORIGIN[1] - row * PIXEL_M
            strip = shapely.box(ORIGIN[0], top - rows * PIXEL_M, ORIGIN[0] + size * PIXEL_M, top)
            hits = tree.query(strip, predicate="intersects")
            band = np.zeros((rows, size), np.uint8)
            if hits.size:
                band = rasterio.features.rasterize(
                    [(polys[i], 1) for i in hits.tolist()],
                    out_shape=(rows, size),
                    transform=from_origin(ORIGIN[0], top, PIXEL_M, PIXEL_M),
                    fill=0,
                    dtype="uint8",
                )
            ones += int(np.count_nonzero(band))
            dst.write(band, 1, window=rasterio.windows.Window(0, row, size, rows))
        dst.update_tags(
            GEOUNET_CLASSES=json.dumps(CLASSES),
            **{TAG_BUILDINGS: str(len(polys)), TAG_COVER: f"{ones / size**2:.6f}"},
        )
    os.replace(tmp, path)
    return path


def workdir_ready(workdir: Path) -> Path:
    """Create ``workdir``, with a ``.gitignore`` of ``*`` so that nothing in it is tracked."""
    workdir.mkdir(parents=True, exist_ok=True)
    ignore = workdir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# benchmark data, generated by benchmarks/vectorize.py\n*\n")
    return workdir


# --------------------------------------------------------------------------- one mode


def measure(mode: str, scene: str, window: int, out: str) -> dict[str, Any]:
    """Vectorize ``scene`` one way (in a child process), save the polygons to ``out``.

    Returns:
        Seconds, MPix/s, peak RSS (MiB, and above the imports), polygons and vertices.
    """
    import geopandas as gpd
    import numpy as np
    import rasterio
    import rasterio.features
    import shapely
    import shapely.geometry

    import geounet.vectorize.pipeline  # noqa: F401  (imported lazily by the package)
    from geounet.vectorize import VectorizeOptions, vectorize_raster

    with rasterio.open(scene) as src:
        height, width = src.shape
    imports_mb = peak_rss_mb()
    start = time.perf_counter()
    if mode == "rasterio":
        with rasterio.open(scene) as src:
            band = src.read(1)
            transform, crs = src.transform, src.crs
        geoms, ids = [], []
        for geom, value in rasterio.features.shapes(
            band, mask=band != 0, connectivity=4, transform=transform
        ):
            geoms.append(shapely.geometry.shape(geom))
            ids.append(int(value))
        gdf = gpd.GeoDataFrame({"class_id": np.asarray(ids, np.int64)}, geometry=geoms, crs=crs)
    else:
        options = VectorizeOptions(
            window=max(height, width, 64) if mode == "whole" else window,
            simplify_m=SIMPLIFY_M if mode == "streamed+simplify" else 0.0,
            regularize=mode == "streamed+regularize",
        )
        gdf = vectorize_raster(scene, options)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    gdf.to_parquet(out)
    return {
        "mode": mode,
        "pixels": height * width,
        "seconds": seconds,
        "mpix_s": height * width / seconds / 1e6,
        "peak_rss_mb": peak,
        "imports_rss_mb": imports_mb,
        "polygons": len(gdf),
        "vertices": int(shapely.get_num_coordinates(gdf.geometry.values).sum()),
    }


def run_mode(mode: str, scene: Path, window: int, out: Path) -> dict[str, Any]:
    """Run :func:`measure` in a fresh Python process and return its figures."""
    cmd = [sys.executable, __file__, "--child", mode, str(scene), str(window), str(out)]
    env = os.environ | {"GDAL_CACHEMAX": os.environ.get("GDAL_CACHEMAX", "64")}  # as the CLI
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"mode {mode} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- checks


def agreement(a: Any, b: Any) -> dict[str, Any]:
    """How far two polygon frames agree, independently of their order.

    Areas are planar (CRS units), so frames without ``area_m2`` compare too. Geometries
    are matched as multisets after snapping to a 1 mm grid and normalizing.
    """
    import numpy as np
    import shapely

    ga, gb = a.geometry.values, b.geometry.values
    area_a, area_b = shapely.area(ga), shapely.area(gb)
    same_count = len(a) == len(b)

    def keys(g: Any) -> Counter:
        return Counter(shapely.to_wkb(shapely.normalize(shapely.set_precision(g, 1e-3))))

    same = sum((keys(ga) & keys(gb)).values())
    in_order = same_count and bool(
        shapely.equals_exact(shapely.normalize(ga), shapely.normalize(gb), 1e-6).all()
    )
    return {
        "count": f"{len(a)} vs {len(b)}",
        "same_count": same_count,
        "ids_equal": same_count
        and np.array_equal(np.sort(a.class_id.to_numpy()), np.sort(b.class_id.to_numpy())),
        "area_rel": abs(area_a.sum() - area_b.sum()) / max(area_b.sum(), 1e-300),
        "sorted_areas_equal": same_count
        and bool(np.allclose(np.sort(area_a), np.sort(area_b), rtol=1e-9, atol=0)),
        "identical": f"{same} / {max(len(a), len(b))}",
        "all_identical": same_count and same == len(a),
        "in_order": in_order,
        "vertices": (
            f"{shapely.get_num_coordinates(ga).sum()} vs {shapely.get_num_coordinates(gb).sum()}"
        ),
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "**NO**"


def print_checks(pairs: dict[str, dict[str, Any]]) -> None:
    """Markdown table of :func:`agreement` results, one column per compared pair."""
    names = list(pairs)
    rows = [
        ("polygons", lambda r: r["count"]),
        ("class ids equal (sorted)", lambda r: _yes(r["ids_equal"])),
        ("total area, relative difference", lambda r: f"{r['area_rel']:.1e}"),
        ("sorted areas equal (rtol 1e-9)", lambda r: _yes(r["sorted_areas_equal"])),
        ("identical polygons, any order (1 mm grid)", lambda r: r["identical"]),
        ("same polygons in the same order", lambda r: "yes" if r["in_order"] else "no"),
        ("total vertices", lambda r: r["vertices"]),
    ]
    print("\n| check | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(pairs[n]) for n in names) + " |")


# --------------------------------------------------------------------------- main


def main() -> int:
    """Generate the mask, run the modes, print the tables; 1 if streamed != whole."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384, help="Mask side in pixels.")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(__file__).resolve().parent / "_work",
        help="Where the mask is cached and the polygons are written.",
    )
    parser.add_argument("--modes", default=",".join(MODES), help="Comma list of: %(default)s")
    parser.add_argument("--window", type=int, default=2048, help="Window of the streamed modes.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, scene, window, out = args.child
        print(json.dumps(measure(mode, scene, int(window), out)))
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if args.size < 64 or args.window < 64:
        parser.error("--size and --window must be at least 64")

    import geopandas as gpd
    import rasterio

    workdir = workdir_ready(args.workdir)
    start = time.perf_counter()
    scene = make_mask(workdir / f"buildings_{args.size}_seed{args.seed}.tif", args.size, args.seed)
    made = time.perf_counter() - start
    with rasterio.open(scene) as src:
        tags = src.tags()
    windows = math.ceil(args.size / args.window) ** 2
    print(
        f"mask {args.size} x {args.size} px ({args.size**2 / 1e6:.0f} MPix), {PIXEL_M} m, {CRS}, "
        f"tiled {BLOCK}, deflate: {tags.get(TAG_BUILDINGS)} buildings, "
        f"{float(tags.get(TAG_COVER, 'nan')):.1%} cover ({scene}, ready in {made:.1f} s)"
    )
    print(
        f"streamed modes: window {args.window} ({windows} window{'s' * (windows > 1)}); "
        f"whole: window {args.size} (1 window); simplify {SIMPLIFY_M} m; GDAL_CACHEMAX "
        f"{os.environ.get('GDAL_CACHEMAX', '64')}; each mode in a fresh process"
    )
    if args.window >= args.size:
        print("note: --window >= --size, so streamed and whole are the same run")

    results, outs = {}, {}
    for mode in modes:
        outs[mode] = workdir / f"{scene.stem}.{mode.replace('+', '_')}.parquet"
        results[mode] = run_mode(mode, scene, args.window, outs[mode])

    columns = "seconds | MPix/s | peak RSS (MB) | RSS after imports (MB) | polygons | vertices"
    print(f"\n| mode | {columns} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['seconds']:.2f} | {r['mpix_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['imports_rss_mb']:.0f} | {r['polygons']} | {r['vertices']} |"
        )

    ok = True
    pairs = {}
    if "streamed" in results:
        streamed = gpd.read_parquet(outs["streamed"])
        for other in ("whole", "rasterio"):
            if other in results:
                pairs[f"streamed vs {other}"] = agreement(streamed, gpd.read_parquet(outs[other]))
    if pairs:
        print_checks(pairs)
    if "streamed vs whole" in pairs:
        check = pairs["streamed vs whole"]
        ok = bool(
            check["same_count"]
            and check["ids_equal"]
            and check["area_rel"] <= 1e-6
            and check["sorted_areas_equal"]
            and check["all_identical"]
        )
        print(f"\nstreamed and whole give the same polygons: {_yes(ok)}")

    ratios: list[str] = []

    def ratio(label: str, a: str, b: str, key: str, invert: bool = False) -> None:
        if a in results and b in results:
            x, y = results[a][key], results[b][key]
            num, den = (y, x) if invert else (x, y)
            ratios.append(f"| {label} | {num / den:.2f} |" if den else f"| {label} | n/a |")

    ratio("streamed / whole speed (MPix/s)", "streamed", "whole", "mpix_s")
    ratio("streamed / whole peak RSS", "streamed", "whole", "peak_rss_mb")
    ratio("whole / streamed peak RSS", "streamed", "whole", "peak_rss_mb", invert=True)
    for r in results.values():
        r["above_imports_mb"] = r["peak_rss_mb"] - r["imports_rss_mb"]
    ratio("whole / streamed RSS above imports", "streamed", "whole", "above_imports_mb", True)
    ratio("streamed / plain rasterio speed", "streamed", "rasterio", "mpix_s")
    ratio("streamed / plain rasterio peak RSS", "streamed", "rasterio", "peak_rss_mb")
    ratio(
        f"vertices after simplify {SIMPLIFY_M} m / raw", "streamed+simplify", "streamed", "vertices"
    )
    ratio("vertices after regularize / raw", "streamed+regularize", "streamed", "vertices")
    ratio("streamed+simplify / streamed speed", "streamed+simplify", "streamed", "mpix_s")
    ratio("streamed+regularize / streamed speed", "streamed+regularize", "streamed", "mpix_s")
    if ratios:
        print("\n| ratio | value |\n|---|---:|\n" + "\n".join(ratios))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
