"""Per-band normalization statistics from the training area only."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from shapely.geometry import Polygon
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import RandomGeoSampler

from geounet.errors import DataError


def _training_pixels(
    images: GeoDataset,
    rois: Sequence[Polygon],
    *,
    size: int,
    samples: int,
    nodata: float | None,
    seed: int,
    per_band: bool = False,
) -> Iterator[torch.Tensor]:
    """Valid pixels (C, N) of random windows inside ``rois`` (spread over them by area).

    As in GDAL's dataset mask, a pixel is left out when all its bands hold ``nodata``;
    with ``per_band`` (stacked band files, each with its own gaps) when any band does,
    since a fill value (-9999) in one band would swamp its statistics.
    """
    generator = torch.Generator().manual_seed(seed)
    total = sum(r.area for r in rois)
    for roi in rois:
        n = max(1, round(samples * roi.area / total))
        for query in RandomGeoSampler(images, size, length=n, roi=roi, generator=generator):
            image = images[query]["image"].double().flatten(1)  # (C, N)
            if nodata is not None:
                missing = image.isnan() if math.isnan(nodata) else image == nodata
                image = image[:, ~(missing.any(dim=0) if per_band else missing.all(dim=0))]
            yield image


def band_statistics(
    images: GeoDataset,
    rois: Sequence[Polygon],
    *,
    size: int,
    samples: int = 64,
    nodata: float | None = None,
    seed: int = 0,
    per_band: bool = False,
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation per band over random windows inside ``rois``.

    Args:
        images: The image dataset (samples with an ``image`` key).
        rois: Training regions; nothing outside them is read.
        size: Window size in pixels.
        samples: Number of windows (spread over regions by area).
        nodata: Pixels whose bands all equal this value are ignored.
        seed: Seed of the window positions.
        per_band: Ignore pixels where any band equals ``nodata`` (bands with nodata
            values of their own, such as stacked band files).

    Returns:
        ``(mean, std)`` lists, one value per band.
    """
    count, s1, s2 = 0, 0.0, 0.0
    for pixels in _training_pixels(
        images, rois, size=size, samples=samples, nodata=nodata, seed=seed, per_band=per_band
    ):
        count += pixels.shape[1]
        s1 = s1 + pixels.sum(1)
        s2 = s2 + (pixels**2).sum(1)
    if not count:
        raise DataError("no valid pixels in the training area to compute band statistics")
    mean = s1 / count
    std = torch.sqrt(torch.clamp(s2 / count - mean**2, min=0.0))
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [float(v) for v in mean], [float(v) for v in np.asarray(std)]


def band_percentiles(
    images: GeoDataset,
    rois: Sequence[Polygon],
    *,
    size: int,
    low: float = 2.0,
    high: float = 98.0,
    samples: int = 64,
    nodata: float | None = None,
    seed: int = 0,
    max_pixels: int = 2_000_000,
    per_band: bool = False,
) -> tuple[list[float], list[float]]:
    """Low and high percentiles per band over random windows inside ``rois``.

    Used for percentile clipping: values are clipped to ``[low, high]`` and scaled to
    ``[0, 1]``, which is robust to bright outliers (clouds, specular roofs) and to the
    long tails of 16-bit sensors.

    Returns:
        ``(low_values, high_values)`` lists, one value per band (high > low).
    """
    chunks = list(
        _training_pixels(
            images, rois, size=size, samples=samples, nodata=nodata, seed=seed, per_band=per_band
        )
    )
    pixels = torch.cat(chunks, dim=1).numpy() if chunks else np.empty((0, 0))
    if pixels.size == 0:
        raise DataError("no valid pixels in the training area to compute band percentiles")
    if pixels.shape[1] > max_pixels:
        keep = np.random.default_rng(seed).choice(pixels.shape[1], max_pixels, replace=False)
        pixels = pixels[:, keep]
    lo, hi = np.percentile(pixels, [low, high], axis=1)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return [float(v) for v in lo], [float(v) for v in hi]
