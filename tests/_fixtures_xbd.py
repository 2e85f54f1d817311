"""A generated xBD folder: pre/post PNG pairs without georeferencing, JSON labels with
every building in pixels (``xy``) and in lon/lat (``lng_lat``) from a known transform.

Import with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _fixtures_xbd import xbd_folder
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from affine import Affine
from shapely.geometry import box

DAMAGE = ["no-damage", "minor-damage", "major-damage", "destroyed", "un-classified"]
# pixel (col, row) -> lon/lat: ~0.5 m pixels near Joplin, slightly rotated
TRANSFORM = Affine(5.6e-6, 2e-8, -94.5100, 1e-8, -4.5e-6, 37.0660)


def xbd_folder(tmp: Path, tiles: int = 2, size: int = 96, seed: int = 0) -> Path:
    """``tmp/xbd`` with ``tiles`` pairs of ``size`` px; each tile's buildings are a grid
    of squares, bright in the pre image, darker the more damaged in the post image."""
    rng = np.random.default_rng(seed)
    root = tmp / "xbd"
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for t in range(tiles):
        key = f"test-storm_{t:08d}"
        shift = Affine.translation(t * size, 0)  # tiles side by side
        transform = TRANSFORM @ shift
        pre = rng.normal(60, 8, (3, size, size))
        post = pre.copy()
        features_xy, features_ll = [], []
        k = 0
        for r in range(8, size - 16, 20):
            for c in range(8, size - 16, 20):
                grade = DAMAGE[(k + t) % len(DAMAGE)]
                k += 1
                pre[:, r : r + 12, c : c + 12] = 200
                post[:, r : r + 12, c : c + 12] = 200 - 40 * DAMAGE.index(grade) % 200
                poly = box(c, r, c + 12, r + 12)
                lonlat = [transform * xy for xy in poly.exterior.coords]
                props = {"feature_type": "building", "subtype": grade, "uid": f"{t}-{k}"}
                features_xy.append({"properties": props, "wkt": poly.wkt})
                ring = ", ".join(f"{x!r} {y!r}" for x, y in lonlat)
                features_ll.append({"properties": props, "wkt": f"POLYGON (({ring}))"})
        for when, image in (("pre", pre), ("post", post)):
            name = f"{key}_{when}_disaster"
            _write_png(root / "images" / f"{name}.png", image)
            props = (lambda f: f) if when == "post" else _without_subtype
            label = {
                "metadata": {
                    "capture_date": f"2011-0{5 if when == 'pre' else 6}-01T17:00:00.000Z",
                    "img_name": f"{name}.png",
                },
                "features": {
                    "xy": [props(f) for f in features_xy],
                    "lng_lat": [props(f) for f in features_ll],
                },
            }
            (root / "labels" / f"{name}.json").write_text(json.dumps(label))
    return root


def _without_subtype(feature: dict) -> dict:
    props = {k: v for k, v in feature["properties"].items() if k != "subtype"}
    return {**feature, "properties": props}


def _write_png(path: Path, image: np.ndarray) -> None:
    from skimage.io import imsave

    imsave(path, np.clip(image, 0, 255).astype(np.uint8).transpose(1, 2, 0), check_contrast=False)
