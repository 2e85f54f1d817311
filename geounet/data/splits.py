"""Spatial train/val/test splits that never share a pixel, and the samplers over them."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import shapely
import torch
from shapely.geometry import Polygon
from torch.utils.data import Sampler
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from geounet.errors import DataError


@dataclass(frozen=True)
class SpatialSplit:
    """Disjoint rectangles (in the dataset's CRS) per split, one per labelled scene."""

    train: list[Polygon]
    val: list[Polygon]
    test: list[Polygon]


def spatial_split(
    dataset: GeoDataset,
    *,
    val_fraction: float,
    test_fraction: float = 0.0,
    min_size: float = 0.0,
) -> SpatialSplit:
    """Cut each scene's labelled area into train | val | test strips along its long axis.

    Strips are disjoint rectangles with edges on the first image's pixel grid, so any
    window drawn inside the train strip shares no pixel with validation or test. The
    test strip (if any) lies at the far end, the validation strip just before it.

    Args:
        dataset: The image-label intersection dataset.
        val_fraction: Share of each scene's long axis for validation.
        test_fraction: Share for testing.
        min_size: Minimum width and height of every strip, in CRS units.

    Returns:
        The split.

    Raises:
        DataError: If a strip would be smaller than ``min_size``.
    """
    snap = _grid_snapper(dataset)
    train, val, test = [], [], []
    for geom in dataset.index.geometry:
        xmin, ymin, xmax, ymax = geom.bounds
        xmin, xmax = snap(xmin, 0, math.ceil), snap(xmax, 0, math.floor)
        ymin, ymax = snap(ymin, 1, math.ceil), snap(ymax, 1, math.floor)
        horizontal = (xmax - xmin) >= (ymax - ymin)
        lo, hi = (xmin, xmax) if horizontal else (ymin, ymax)
        length = hi - lo
        axis = 0 if horizontal else 1
        cut_test = snap(hi - test_fraction * length, axis, round)
        cut_val = snap(cut_test - val_fraction * length, axis, round)
        pieces = [(lo, cut_val), (cut_val, cut_test)]
        if test_fraction > 0:
            pieces.append((cut_test, hi))
        boxes = [
            shapely.box(a, ymin, b, ymax) if horizontal else shapely.box(xmin, a, xmax, b)
            for a, b in pieces
        ]
        for name, box in zip(("train", "validation", "test"), boxes, strict=False):
            bxmin, bymin, bxmax, bymax = box.bounds
            if min(bxmax - bxmin, bymax - bymin) < min_size * (1 - 1e-9):
                bounds = ", ".join(f"{v:.8g}" for v in geom.bounds)
                raise DataError(
                    f"the {name} strip of a labelled area ({bounds}) is "
                    f"{bxmax - bxmin:.3g} x {bymax - bymin:.3g} CRS units, smaller than one "
                    f"tile ({min_size:.3g}); lower train.tile_size, raise data.resolution "
                    "or change data.val_fraction / data.test_fraction"
                )
        train.append(boxes[0])
        val.append(boxes[1])
        if test_fraction > 0:
            test.append(boxes[2])
    return SpatialSplit(train, val, test)


def _grid_snapper(dataset: GeoDataset):
    """A function moving a coordinate onto the pixel grid of the dataset's first image.

    Split edges on the grid keep every window pixel-aligned (no resampling) and make
    the strips share no pixel.
    """
    images = getattr(dataset, "datasets", [dataset])[0]
    x, y, _ = images.bounds
    origin = (x.start, y.stop)  # top-left corner: rasterio grids grow right and down
    res = dataset.res

    def snap(value: float, axis: int, rounding) -> float:
        steps = (value - origin[axis]) / res[axis]
        return origin[axis] + rounding(round(steps, 6)) * res[axis]

    return snap


class MixedSampler(Sampler):
    """Draw from several samplers (one per region) and shuffle the queries together.

    ``set_epoch(e)`` (called by Lightning at each epoch start) reseeds the shared
    generator with ``seed + e``, so an epoch's windows depend only on the seed and the
    epoch: a resumed run draws exactly what an uninterrupted one would have.
    """

    def __init__(
        self,
        samplers: Sequence[Sampler],
        *,
        shuffle: bool,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.samplers = list(samplers)
        self.shuffle = shuffle
        self.seed = seed
        self.generator = generator
        self.rng = random.Random(seed)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration depend only on ``seed`` and ``epoch``."""
        self.rng = random.Random(self.seed + epoch)
        if self.generator is not None:
            self.generator.manual_seed(self.seed + epoch)

    def __iter__(self) -> Iterator:
        queries = [q for s in self.samplers for q in s]
        if self.shuffle:
            self.rng.shuffle(queries)
        return iter(queries)

    def __len__(self) -> int:
        return sum(len(s) for s in self.samplers)


def random_sampler(
    dataset: GeoDataset, rois: Sequence[Polygon], *, size: int, length: int, seed: int
) -> MixedSampler:
    """Random windows of ``size`` pixels inside the regions, ``length`` per epoch in all.

    Windows are spread over the regions in proportion to their areas.
    """
    total = sum(r.area for r in rois)
    generator = torch.Generator().manual_seed(seed)
    samplers = [
        RandomGeoSampler(
            dataset, size, length=max(1, round(length * r.area / total)), roi=r, generator=generator
        )
        for r in rois
    ]
    return MixedSampler(samplers, shuffle=True, seed=seed, generator=generator)


def grid_sampler(dataset: GeoDataset, rois: Sequence[Polygon], *, size: int) -> MixedSampler:
    """Windows of ``size`` pixels tiling each region, every one inside it.

    The last window of a row or column is moved back to end at the region's edge
    (overlapping its neighbour) instead of hanging over it: a validation strip at the
    edge of a scene would otherwise be scored on windows that are mostly zero padding,
    whose prediction flips from one epoch to the next and made validation IoU swing.
    """
    return MixedSampler(
        [_InsideGridSampler(dataset, size, size, roi=r) for r in rois], shuffle=False
    )


class _InsideGridSampler(GridGeoSampler):
    """:class:`GridGeoSampler` whose windows never extend past the region's bounds."""

    def __iter__(self) -> Iterator[tuple[slice, slice, slice]]:
        height, width = self.size
        for k in range(len(self.index)):
            xmin, ymin, xmax, ymax = self.index.geometry.iloc[k].bounds
            if xmax - xmin < width or ymax - ymin < height:
                continue
            t = slice(self.index.index[k].left, self.index.index[k].right)
            for y0 in _starts(ymin, ymax, height, self.stride[0]):
                for x0 in _starts(xmin, xmax, width, self.stride[1]):
                    yield slice(x0, x0 + width), slice(y0, y0 + height), t


def _starts(lo: float, hi: float, size: float, stride: float) -> list[float]:
    """Window starts from ``lo`` every ``stride``, the last one ending exactly at ``hi``."""
    n = max(1, math.ceil((hi - lo - size) / stride - 1e-9) + 1)
    return [min(lo + i * stride, hi - size) for i in range(n)]


def fitting_tile(rois: Sequence[Polygon], res: float, tile: int, multiple: int = 32) -> int:
    """The largest window size <= ``tile`` (a multiple of ``multiple``) fitting every region."""
    smallest = min(min(r.bounds[2] - r.bounds[0], r.bounds[3] - r.bounds[1]) for r in rois)
    pixels = int(smallest / res)
    if tile < multiple and tile <= pixels:
        return tile  # a tile below ``multiple`` was asked for and fits as it is
    fit = min(tile, pixels // multiple * multiple)
    if fit < multiple:
        raise DataError(
            f"a split region is only {smallest / res:.0f} px wide; "
            f"need at least {min(tile, multiple)}. "
            "Use more labelled area or a larger data.val_fraction"
        )
    return fit
