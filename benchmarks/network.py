"""Road-network vectorizer benchmark: streamed by windows against the whole raster.

A generated road mask (single-band uint8 GeoTIFF in EPSG:32611 at 0.5 m: a grid of
streets 8-14 m wide, curved avenues, a few car parks and breaks) is turned into a line
network by ``geounet.api.vectorize(..., lines=True)`` in two fresh child processes:

- streamed: windows of --window pixels (plus the halo the widest road needs)
- whole: one window the size of the raster (the same code path)

Each child reports its time (after imports, file read included) and peak RSS (VmHWM) and
saves its lines as GeoParquet; the parent checks that both give the same network (line
count, total length, identical geometries) and prints one table with the ratios.

    .venv/bin/python benchmarks/network.py [--size 8192] [--window 2048]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rss import peak_rss_mb  # benchmarks/ is on sys.path when run as a script


def make_mask(path: Path, size: int, seed: int = 0) -> Path:
    """Streets every ~120-200 m, avenues along sine curves, car parks, breaks."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32611",
        "transform": from_origin(660000, 4000000, 0.5, 0.5),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    rows = np.cumsum(rng.integers(240, 400, size // 240))
    cols = np.cumsum(rng.integers(240, 400, size // 240))
    widths = rng.integers(16, 28, max(len(rows), len(cols)))
    parks = rng.integers(0, size, (size // 1500, 2))
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, 1024):
            h = min(1024, size - top)
            yy, xx = np.mgrid[top : top + h, 0:size]
            m = np.zeros((h, size), bool)
            for r, w in zip(rows, widths, strict=False):
                m |= np.abs(yy - r) <= w // 2
            for c, w in zip(cols, widths, strict=False):
                m |= np.abs(xx - c - 60 * np.sin(yy / 700)) <= w // 2
            for r, c in parks:
                m |= (np.abs(yy - r) < 90) & (np.abs(xx - c) < 140)
            m &= ((xx // 997 + yy // 1013) % 7 != 3) | ((xx % 997) > 14)  # a few breaks
            dst.write(m.astype(np.uint8)[None], window=((top, top + h), (0, size)))
    return path


def child(mask: str, window: int, out: str) -> None:
    import geounet.api as gu

    base = peak_rss_mb()  # the libraries
    start = time.perf_counter()
    gdf = gu.vectorize(mask, None, lines=True, window=window, spur_m=10, gap_m=10)
    seconds = time.perf_counter() - start
    gdf.to_parquet(out)
    print(
        json.dumps(
            {"seconds": seconds, "rss_mb": peak_rss_mb(), "base_mb": base, "lines": len(gdf)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    import geopandas as gpd

    with tempfile.TemporaryDirectory() as tmp:
        mask = make_mask(Path(tmp) / "roads.tif", args.size)
        results = {}
        for mode, window in (("streamed", args.window), ("whole", args.size)):
            out = Path(tmp) / f"{mode}.parquet"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(mask), str(window), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[mode]["frame"] = gpd.read_parquet(out)
        a, b = results["streamed"]["frame"], results["whole"]["frame"]
        same = len(a) == len(b) and a.geometry.union_all().equals(b.geometry.union_all())
        print(f"road mask {args.size}^2 px at 0.5 m, windows of {args.window} px\n")
        print("| mode | seconds | peak RSS (MB) | of which libraries | lines | km |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode, r in results.items():
            km = r["frame"].length_m.sum() / 1000
            print(
                f"| {mode} | {r['seconds']:.1f} | {r['rss_mb']:.0f} | {r['base_mb']:.0f} | "
                f"{r['lines']} | {km:.2f} |"
            )
        s, w = results["streamed"], results["whole"]
        work = (s["rss_mb"] - s["base_mb"]) / max(w["rss_mb"] - w["base_mb"], 1)
        print(
            f"\nstreamed / whole: time {s['seconds'] / w['seconds']:.2f}, peak RSS "
            f"{s['rss_mb'] / w['rss_mb']:.2f} (above the libraries: {work:.2f}); "
            f"identical networks: {same}"
        )
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
