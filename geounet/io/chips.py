"""Plain images without georeferencing (PNG, JPEG, TIFF chips): read them, write class maps.

Reading goes through GDAL (rasterio) for every format, so 16-bit and multi-band TIFFs work
as well as 8-bit PNG and JPEG; a PNG with a palette is read as its palette indexes, which
is what class-coded masks need.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from geounet.errors import InvalidRasterError
from geounet.io.atomic import atomic_output, require_file
from geounet.io.style import class_colors, write_class_map_styles

CHIP_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def is_chip(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a chip image by its extension."""
    return Path(path).suffix.lower() in CHIP_SUFFIXES


def read_chip(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a (C, H, W) array in its own dtype.

    Raises:
        InputFileNotFoundError: If the file does not exist.
        InvalidRasterError: If it cannot be decoded as an image.
    """
    p = require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                return src.read()
    except rasterio.errors.RasterioError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRasterError(f"{p}: not a readable image ({first})") from exc


def chip_profile(path: str | os.PathLike[str]) -> dict | None:
    """The georeferencing (CRS, transform) of a chip when it has one, else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None:
                    return None
                return {"crs": src.crs, "transform": src.transform}
    except rasterio.errors.RasterioError:
        return None


def write_chip_classes(
    path: str | os.PathLike[str],
    classes: np.ndarray,
    *,
    colors: Sequence[Sequence[int]],
    class_names: Sequence[str] = (),
    georef: dict | None = None,
) -> Path:
    """Write a (H, W) class map as a palette PNG or a GeoTIFF, atomically.

    A PNG's palette (and its transparency) has exactly the class colours, so image viewers
    and QGIS show the classes in colour while the pixel values stay the class ids; a TIFF
    gets its palette and class names in ``NAME.tif.aux.xml`` and a QGIS style
    ``NAME.qml``, as scene class maps do.

    Args:
        path: Output path; ``.png`` or ``.tif`` / ``.tiff``.
        classes: Class ids (fewer than 256 classes).
        colors: RGB(A) colour of each class.
        class_names: Names of the classes, stored in a TIFF's metadata.
        georef: ``{"crs", "transform"}`` to georeference a TIFF (from :func:`chip_profile`).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    data = classes.astype(np.uint8)
    names = list(class_names) or [str(i) for i in range(len(colors))]
    rgba = class_colors(names, colors)
    if suffix == ".png":
        from PIL import Image

        image = Image.fromarray(data, mode="P")
        image.putpalette([v for c in rgba for v in c[:3]])
        alpha = bytes(c[3] for c in rgba)
        extra = {"transparency": alpha} if min(alpha, default=255) < 255 else {}
        with atomic_output(out) as tmp:
            image.save(tmp, format="PNG", optimize=True, **extra)
        return out
    if suffix not in (".tif", ".tiff"):
        raise InvalidRasterError(f"{out}: write class maps of chips as .png or .tif")
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "uint8",
        "compress": "deflate",
        **(georef or {}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with atomic_output(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, "class")
            if class_names:
                dst.update_tags(GEOUNET_CLASSES=",".join(class_names))
    write_class_map_styles(out, names, rgba)
    return out
