"""Class-map rasters to polygons, and polygons to vector files.

The public functions are re-exported lazily so that importing this package does not
import rasterio, geopandas or pyogrio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geounet.io.geodesy import geodesic_area_m2, geodesic_area_perimeter
    from geounet.vectorize.export import write_vectors
    from geounet.vectorize.options import VectorizeOptions
    from geounet.vectorize.pipeline import polygonize, vectorize_raster
    from geounet.vectorize.regularize import regularize_polygon

_EXPORTS = {
    "VectorizeOptions": "geounet.vectorize.options",
    "polygonize": "geounet.vectorize.pipeline",
    "vectorize_raster": "geounet.vectorize.pipeline",
    "geodesic_area_m2": "geounet.io.geodesy",
    "geodesic_area_perimeter": "geounet.io.geodesy",
    "regularize_polygon": "geounet.vectorize.regularize",
    "write_vectors": "geounet.vectorize.export",
}

__all__ = [
    "VectorizeOptions",
    "geodesic_area_m2",
    "geodesic_area_perimeter",
    "polygonize",
    "regularize_polygon",
    "vectorize_raster",
    "write_vectors",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
