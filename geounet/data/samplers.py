"""Training samplers that show the model rare classes more often."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import shapely
import torch
from torch import Tensor
from torch.utils.data import Sampler
from torchgeo.datasets import GeoDataset, IntersectionDataset

from geounet.errors import DataError


class OversamplingSampler(Sampler):
    """Weighted random windows: candidates holding a rare class are drawn more often.

    Candidates are windows on a grid (stride ``size // 2``) inside each region, weighted
    ``factor`` when their mask holds any of ``classes`` and 1 otherwise. Each epoch
    draws ``length`` candidates with replacement and shifts each by a random whole
    number of pixels (at most ``stride // 2`` along each axis) that keeps it inside its
    region. Yields torchgeo queries ``(x slice, y slice, t slice)``.
    """

    def __init__(
        self,
        windows: list[tuple[float, float]],
        limits: list[tuple[int, int, int, int]],
        weights: Tensor,
        *,
        extent: tuple[float, float],
        res: tuple[float, float],
        time: slice,
        jitter: int,
        regions: list[shapely.Geometry],
        length: int,
        seed: int,
    ) -> None:
        self.windows, self.limits, self.weights = windows, limits, weights
        self.extent, self.res, self.time, self.jitter = extent, res, time, jitter
        self.regions, self.length = regions, length
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        """Make the next epoch's windows depend only on the seed and ``epoch``.

        Lightning calls this at each epoch start, so a resumed run draws exactly the
        windows an uninterrupted run would have.
        """
        self.generator.manual_seed(self.seed + epoch)

    def __iter__(self) -> Iterator[tuple[slice, slice, slice]]:
        g = self.generator
        picks = torch.multinomial(self.weights, self.length, replacement=True, generator=g)
        draws = torch.rand(self.length, 2, generator=g).tolist()
        w, h, j = *self.extent, self.jitter
        for pick, (u, v) in zip(picks.tolist(), draws, strict=True):
            x0, y0 = self.windows[pick]
            left, right, down, up = self.limits[pick]  # free pixels around the candidate
            x = x0 + _shift(u, max(-j, -left), min(j, right)) * self.res[0]
            y = y0 + _shift(v, max(-j, -down), min(j, up)) * self.res[1]
            if not _inside(self.regions[pick], x, y, w, h):
                x, y = x0, y0  # irregular region: keep the candidate as it is
            yield slice(x, x + w), slice(y, y + h), self.time

    def __len__(self) -> int:
        return self.length


def oversampling_sampler(
    dataset: GeoDataset,
    rois: Sequence[shapely.Polygon],
    *,
    size: int,
    length: int,
    classes: Sequence[int],
    factor: float,
    seed: int = 0,
) -> OversamplingSampler:
    """Random windows of ``size`` pixels, those showing ``classes`` ``factor`` times likelier.

    Windows lie entirely inside the regions, on the pixel grid counted from each
    region's min corner (as torchgeo's random sampler places them). The labels are
    scanned once here, one strip of candidate windows per read.

    Args:
        dataset: The image-label intersection dataset (or a labels-only dataset).
        rois: Regions to sample from, in the dataset's CRS.
        size: Window width and height in pixels.
        length: Windows per epoch.
        classes: Rare class ids.
        factor: Relative weight of windows holding any rare-class pixel.
        seed: Seed of the sampler's generator (epochs differ, runs repeat).

    Returns:
        The sampler.

    Raises:
        DataError: If no window of ``size`` pixels fits in any region.
    """
    labels = dataset.datasets[1] if isinstance(dataset, IntersectionDataset) else dataset
    rx, ry = dataset.res
    w, h = size * rx, size * ry
    stride = max(1, size // 2)
    t = dataset.bounds[2]
    time = slice(t.start, t.stop)
    footprint = shapely.union_all(list(dataset.index.geometry))
    rare = torch.tensor(list(classes), dtype=torch.long)
    windows: list[tuple[float, float]] = []
    limits: list[tuple[int, int, int, int]] = []
    regions: list[shapely.Geometry] = []
    present: list[bool] = []
    for roi in rois:
        region = shapely.intersection(roi, footprint)
        if region.is_empty:
            continue
        xmin, ymin, xmax, ymax = region.bounds
        nx = math.floor(round((xmax - xmin) / rx, 6)) - size  # free pixels across
        ny = math.floor(round((ymax - ymin) / ry, 6)) - size
        if nx < 0 or ny < 0:
            continue
        cols, rows = _offsets(nx, stride), _offsets(ny, stride)
        shapely.prepare(region)
        for j in rows:
            y = ymin + j * ry
            inside = [i for i in cols if _inside(region, xmin + i * rx, y, w, h)]
            if not inside:
                continue
            strip = labels[slice(xmin, xmin + (nx + size) * rx), slice(y, y + h), time]["mask"]
            hit = torch.isin(strip.reshape(-1, strip.shape[-1]), rare).any(0).long()
            counts = torch.cat([hit.new_zeros(1), hit.cumsum(0)])
            for i in inside:
                windows.append((xmin + i * rx, y))
                limits.append((i, nx - i, j, ny - j))
                regions.append(region)
                present.append(bool(counts[i + size] > counts[i]))
    if not windows:
        raise DataError(f"no window of {size} px fits in the sampling regions")
    weights = torch.tensor([factor if p else 1.0 for p in present], dtype=torch.float)
    return OversamplingSampler(
        windows,
        limits,
        weights,
        extent=(w, h),
        res=(rx, ry),
        time=time,
        jitter=stride // 2,
        regions=regions,
        length=length,
        seed=seed,
    )


def _shift(u: float, lo: int, hi: int) -> int:
    """A whole number of pixels in ``[lo, hi]`` from a uniform draw ``u`` in [0, 1)."""
    return lo + min(int(u * (hi - lo + 1)), hi - lo)


def _inside(region: shapely.Geometry, x: float, y: float, w: float, h: float) -> bool:
    """Whether the window at ``(x, y)`` lies in ``region`` (forgiving float noise)."""
    e = 1e-6 * min(w, h)
    return region.covers(shapely.box(x + e, y + e, x + w - e, y + h - e))


def _offsets(free: int, stride: int) -> list[int]:
    """Window offsets 0, stride, ... up to ``free``, always ending at ``free`` itself."""
    offsets = list(range(0, free + 1, stride))
    if offsets[-1] != free:
        offsets.append(free)
    return offsets


class RankShard(Sampler):
    """One process's share of a sampler's draws, for data-parallel training.

    Every process draws the same sequence (same seed and epoch) and keeps items
    ``rank, rank + world, ...``: the processes see disjoint windows, and together exactly
    the windows one process would draw, so that a step of ``world`` processes with
    ``batch / world`` windows each is the single-process step on ``batch`` windows.

    The rank and world size are read when iterating (from ``torch.distributed`` once the
    trainer has set up the process group); without one, the sampler is passed through.

    Args:
        sampler: The sampler to shard (``set_epoch`` is passed on).
        even: Give every process the same number of items, dropping the last
            ``len % world`` (training: processes must take the same number of steps).
            Otherwise, as for validation, every item is used exactly once.
    """

    def __init__(self, sampler: Sampler, *, even: bool) -> None:
        self.sampler, self.even = sampler, even

    @staticmethod
    def place() -> tuple[int, int]:
        """(rank, world size) of this process; (0, 1) outside a process group."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on to the wrapped sampler (its draws depend on it)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        rank, world = self.place()
        if world == 1:
            return iter(self.sampler)
        self._check(world)
        stop = len(self.sampler) // world * world if self.even else None
        return itertools.islice(iter(self.sampler), rank, stop, world)

    def __len__(self) -> int:
        rank, world = self.place()
        n = len(self.sampler)
        if world == 1:
            return n
        self._check(world)  # Lightning asks for the length first: every rank fails alike
        return n // world if self.even else len(range(rank, n, world))

    def _check(self, world: int) -> None:
        n = len(self.sampler)
        if n >= world:
            return
        if self.even:
            raise DataError(
                f"train.samples_per_epoch {n} is below the {world} processes: every "
                "process needs windows; raise it"
            )
        raise DataError(
            f"{n} validation windows for {world} processes: every process needs one; "
            "raise data.val_fraction or lower train.tile_size"
        )
