"""The one blending accumulator: whole regions and streamed row bands agree exactly."""

from __future__ import annotations

import pytest
import torch

from geounet.errors import DataError
from geounet.infer.accumulate import BlendAccumulator
from geounet.infer.sliding import blend_weights
from geounet.io.windows import window_starts


def _windows(height: int, width: int, tile: int, overlap: int):
    return [
        (r, c)
        for r in window_starts(height, tile, overlap)
        for c in window_starts(width, tile, overlap)
    ]


def test_streamed_rows_equal_the_whole_region() -> None:
    torch.manual_seed(0)
    height, width, tile, overlap = 50, 37, 16, 6
    weight = blend_weights((tile, tile), "cosine")
    preds = {w: torch.rand(3, tile, tile) for w in _windows(height, width, tile, overlap)}
    whole = BlendAccumulator((height, width))
    for (r, c), p in preds.items():
        whole.add(p, weight, (r, c))
    expected = whole.result()

    band = BlendAccumulator((tile, width))
    rows = window_starts(height, tile, overlap)
    out = []
    for i, r0 in enumerate(rows):
        for (r, c), p in preds.items():
            if r == r0:
                band.add(p, weight, (0, c))
        n = (rows[i + 1] if i + 1 < len(rows) else height) - r0
        out.append(band.pop_rows(n))
    streamed = torch.cat(out, dim=1)
    assert streamed.shape == expected.shape
    assert torch.allclose(streamed, expected, atol=1e-6)


def test_3d_windows_and_errors() -> None:
    acc = BlendAccumulator((4, 6, 6))
    with pytest.raises(DataError, match="no window"):
        acc.result()
    weight = torch.ones(4, 4, 4)
    acc.add(torch.full((2, 4, 4, 4), 2.0), weight, (0, 0, 0))
    with pytest.raises(DataError, match="expected 2"):
        acc.add(torch.ones(3, 4, 4, 4), weight, (0, 2, 2))
    with pytest.raises(RuntimeError, match="zero total weight"):
        acc.result()
    acc.add(torch.full((2, 4, 4, 4), 4.0), weight, (0, 2, 2))
    full = BlendAccumulator((4, 6, 6))
    full.add(torch.zeros(1, 4, 6, 6), torch.ones(4, 6, 6), (0, 0, 0))
    assert full.result().shape == (1, 4, 6, 6)
