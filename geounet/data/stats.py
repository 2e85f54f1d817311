"""Per-band normalization statistics from the training area only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from shapely.geometry import Polygon
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import RandomGeoSampler

from geounet.errors import DataError


def band_statistics(
    images: GeoDataset,
    rois: Sequence[Polygon],
    *,
    size: int,
    samples: int = 64,
    nodata: float | None = None,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation per band over random windows inside ``rois``.

    Args:
        images: The image dataset (samples with an ``image`` key).
        rois: Training regions; nothing outside them is read.
        size: Window size in pixels.
        samples: Number of windows (spread over regions by area).
        nodata: Pixels whose bands all equal this value are ignored.
        seed: Seed of the window positions.

    Returns:
        ``(mean, std)`` lists, one value per band.
    """
    generator = torch.Generator().manual_seed(seed)
    total = sum(r.area for r in rois)
    count, s1, s2 = 0, None, None
    for roi in rois:
        n = max(1, round(samples * roi.area / total))
        for query in RandomGeoSampler(images, size, length=n, roi=roi, generator=generator):
            image = images[query]["image"].double().flatten(1)  # (C, N)
            valid = torch.ones(image.shape[1], dtype=torch.bool)
            if nodata is not None:
                valid = ~(image == nodata).all(dim=0)
            pixels = image[:, valid]
            count += pixels.shape[1]
            s1 = pixels.sum(1) if s1 is None else s1 + pixels.sum(1)
            s2 = (pixels**2).sum(1) if s2 is None else s2 + (pixels**2).sum(1)
    if not count:
        raise DataError("no valid pixels in the training area to compute band statistics")
    mean = s1 / count
    std = torch.sqrt(torch.clamp(s2 / count - mean**2, min=0.0))
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [float(v) for v in mean], [float(v) for v in np.asarray(std)]
