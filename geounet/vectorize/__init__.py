"""Class-map rasters to polygons, and polygons to vector files.

The public functions are re-exported lazily so that importing this package does not
import rasterio, geopandas or pyogrio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geounet.vectorize.export import write_vectors
    from geounet.vectorize.polygons import geodesic_area_m2, polygonize, polygonize_raster

_EXPORTS = {
    "polygonize": "geounet.vectorize.polygons",
    "polygonize_raster": "geounet.vectorize.polygons",
    "geodesic_area_m2": "geounet.vectorize.polygons",
    "write_vectors": "geounet.vectorize.export",
}

__all__ = ["geodesic_area_m2", "polygonize", "polygonize_raster", "write_vectors"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
