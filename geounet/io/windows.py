"""Window grids that cover a whole raster, ragged edges included.

:func:`window_starts` is pure Python (no rasterio) so that the tensor-level sliding
window, which medical volumes reuse, shares it without pulling in geospatial code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geounet.errors import DataError

if TYPE_CHECKING:
    from rasterio.windows import Window


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of size ``tile`` covering ``[0, length)``.

    Neighbours share at least ``overlap`` pixels; the last window ends exactly at
    ``length`` (none hangs past the edge unless the axis is shorter than a tile).

    Raises:
        DataError: If ``tile < 1`` or ``overlap`` is not in ``[0, tile)``.
    """
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise DataError(
            f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}"
        )
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile - overlap))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def window_grid(height: int, width: int, tile: int, overlap: int = 0) -> list[Window]:
    """Tiles of ``tile x tile`` pixels covering a ``height x width`` raster.

    Args:
        height: Raster height.
        width: Raster width.
        tile: Tile size.
        overlap: Minimum overlap between neighbouring tiles.

    Returns:
        Windows in row-major order. Rasters smaller than a tile give windows that
        extend past the edge (read them boundless).
    """
    from rasterio.windows import Window

    return [
        Window(col, row, tile, tile)
        for row in window_starts(height, tile, overlap)
        for col in window_starts(width, tile, overlap)
    ]
