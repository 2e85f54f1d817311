"""Footprint quality on Kampala: raw vs simplified vs regularized polygons against OSM truth.

For each mask (the reference mask at 7.5 cm, the same mask at 0.3 m as a model sees the
scene, and optionally a model's prediction), vectorize it three ways and score the union of
the polygons against the union of the OSM footprints (clipped to the scene):

    raw          pixel outlines
    simplify     Douglas-Peucker, tolerance = one pixel
    regularize   right angles, dominant direction, rectangles where close

It prints IoU, vertex counts, the IoU change and the vertex ratio against raw.

    python benchmarks/regularize.py [--model runs/kampala/model.safetensors]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import rasterio
import shapely
from rasterio.enums import Resampling

from geounet.vectorize import VectorizeOptions, vectorize_raster

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kampala_buildings"
SCENE = DATA / "kampala_suburban_rgb.tif"
MASK = DATA / "kampala_suburban_buildings_mask.tif"
TRUTH = DATA / "kampala_suburban_buildings.geojson"


def coarsen(path: Path, factor: int, out: Path) -> Path:
    """Majority-resample a mask by ``factor`` (what a 0.3 m model would see)."""
    with rasterio.open(path) as src:
        data = src.read(
            1, out_shape=(src.height // factor, src.width // factor), resampling=Resampling.mode
        )
        profile = src.profile | {
            "height": data.shape[0],
            "width": data.shape[1],
            "transform": src.transform * src.transform.scale(factor),
        }
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
    return out


def score(path: Path, truth: gpd.GeoDataFrame) -> list[tuple[str, float, int, float]]:
    """(mode, IoU with truth, vertices, seconds) for raw, simplified and regularized."""
    with rasterio.open(path) as src:
        frame = shapely.box(*src.bounds)
        pixel = abs(src.transform.a)  # metres: the scene is EPSG:3857 at the equator
    clipped = truth.to_crs(src.crs).make_valid().intersection(frame)
    target = shapely.union_all(clipped[~clipped.is_empty].values)
    rows = []
    modes = {
        "raw": VectorizeOptions(min_area_m2=2.0),
        "simplify": VectorizeOptions(min_area_m2=2.0, simplify_m=pixel),
        "regularize": VectorizeOptions(min_area_m2=2.0, regularize=True),
    }
    for mode, options in modes.items():
        start = time.perf_counter()
        gdf = vectorize_raster(path, options)
        seconds = time.perf_counter() - start
        union = shapely.union_all(gdf.geometry.values)
        iou = union.intersection(target).area / union.union(target).area
        vertices = int(shapely.get_num_coordinates(gdf.geometry.values).sum())
        rows.append((mode, iou, vertices, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="Also score this model's prediction.")
    args = parser.parse_args()
    if not MASK.exists():
        raise SystemExit(f"{DATA} not found: this benchmark needs ../shared/data")
    truth = gpd.read_file(TRUTH)
    with tempfile.TemporaryDirectory() as tmp:
        masks = {
            "reference mask 7.5 cm": MASK,
            "reference mask 0.3 m": coarsen(MASK, 4, Path(tmp) / "m.tif"),
        }
        if args.model:
            from geounet.api import predict

            masks["model prediction"] = predict(args.model, SCENE, Path(tmp) / "p.tif").path
        print("| mask | mode | IoU vs OSM | vertices | IoU - raw | vertices / raw | s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, path in masks.items():
            rows = score(Path(path), truth)
            _, raw_iou, raw_vertices, _ = rows[0]
            for mode, iou, vertices, seconds in rows:
                print(
                    f"| {name} | {mode} | {iou:.4f} | {vertices} | {iou - raw_iou:+.4f} "
                    f"| {vertices / raw_vertices:.3f} | {seconds:.2f} |"
                )


if __name__ == "__main__":
    main()
