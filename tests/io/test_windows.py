"""window_starts / window_grid cover every pixel, with the overlap respected."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geounet.errors import DataError
from geounet.io.windows import window_grid, window_starts


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "expected"),
    [
        (10, 4, 0, [0, 4, 6]),
        (12, 4, 0, [0, 4, 8]),
        (12, 4, 2, [0, 2, 4, 6, 8]),
        (13, 4, 2, [0, 2, 4, 6, 8, 9]),
        (4, 4, 0, [0]),
        (3, 4, 1, [0]),
        (1, 1, 0, [0]),
        (5, 1, 0, [0, 1, 2, 3, 4]),
    ],
)
def test_window_starts_values(length, tile, overlap, expected):
    assert window_starts(length, tile, overlap) == expected


@pytest.mark.parametrize("length", [1, 7, 63, 64, 65, 100, 127, 128, 129, 300, 1001])
@pytest.mark.parametrize(("tile", "overlap"), [(64, 0), (64, 16), (64, 63), (32, 8), (7, 3)])
def test_window_starts_cover_with_overlap(length, tile, overlap):
    starts = window_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    covered = np.zeros(max(length, tile), dtype=bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered[:length].all()
    if length >= tile:
        # No window hangs past the edge and the last one ends exactly there.
        assert all(s + tile <= length for s in starts)
        assert starts[-1] + tile == length
    else:
        assert starts == [0]
    for a, b in itertools.pairwise(starts):
        assert a + tile - b >= overlap  # neighbours share at least `overlap` pixels
        assert b - a <= tile - overlap  # and the stride never exceeds tile - overlap


@pytest.mark.parametrize(
    ("height", "width"), [(100, 130), (64, 64), (65, 200), (20, 30), (30, 300), (1, 1)]
)
@pytest.mark.parametrize("overlap", [0, 10])
def test_window_grid_covers_every_pixel(height, width, overlap):
    tile = 64
    windows = window_grid(height, width, tile, overlap)
    count = np.zeros((height, width), dtype=int)
    for w in windows:
        assert (w.width, w.height) == (tile, tile)
        assert w.col_off >= 0 and w.row_off >= 0
        if width >= tile:
            assert w.col_off + tile <= width
        if height >= tile:
            assert w.row_off + tile <= height
        count[w.row_off : w.row_off + tile, w.col_off : w.col_off + tile] += 1
    assert (count >= 1).all()
    rows = window_starts(height, tile, overlap)
    cols = window_starts(width, tile, overlap)
    assert len(windows) == len(rows) * len(cols)
    # Row-major order.
    assert [(w.row_off, w.col_off) for w in windows] == [(r, c) for r in rows for c in cols]


def test_window_grid_smaller_than_tile_is_one_window():
    (w,) = window_grid(10, 20, 32, 4)
    assert (w.col_off, w.row_off, w.width, w.height) == (0, 0, 32, 32)


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (-4, 0), (8, 8), (8, 9), (8, -1)])
def test_invalid_arguments_raise_data_error(tile, overlap):
    with pytest.raises(DataError, match="tile"):
        window_starts(100, tile, overlap)
    with pytest.raises(DataError):
        window_grid(100, 100, tile, overlap)
    with pytest.raises(ValueError):  # DataError is also a ValueError
        window_starts(100, tile, overlap)
