"""Batch augmentation on raw band values: geometry moves masks with images.

Geometric transforms are the 8 flips/90-degree rotations (exact, no resampling);
photometric ones jitter brightness, contrast, per-band gain and saturation and add
noise, so models generalise across sensors, dates and illumination.
"""

from __future__ import annotations

import torch
from torch import Tensor


def dihedral(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """One random flip / 90-degree rotation per sample, applied to image and mask alike.

    Args:
        image: (N, C, H, W) images.
        mask: (N, H, W) class ids.

    Returns:
        The transformed ``(image, mask)``; non-square windows are only flipped.
    """
    square = image.shape[-1] == image.shape[-2]
    images, masks = [], []
    for img, msk in zip(image, mask, strict=True):
        if torch.rand(()) < 0.5:
            img, msk = img.flip(-1), msk.flip(-1)
        if square:
            k = int(torch.randint(4, ()))
            img, msk = img.rot90(k, (-2, -1)), msk.rot90(k, (-2, -1))
        elif torch.rand(()) < 0.5:
            img, msk = img.flip(-2), msk.flip(-2)
        images.append(img)
        masks.append(msk)
    return torch.stack(images), torch.stack(masks)


def photometric(
    image: Tensor,
    *,
    brightness: float = 0.2,
    contrast: float = 0.2,
    gain: float = 0.1,
    saturation: float = 0.3,
    noise: float = 0.03,
) -> Tensor:
    """Random brightness, contrast, per-band gain, saturation and Gaussian noise.

    Works on raw values of any range: contrast pivots on each sample's mean and noise
    scales with each sample's standard deviation.

    Args:
        image: (N, C, H, W) raw band values.
        brightness: Maximum relative brightness change.
        contrast: Maximum relative contrast change.
        gain: Maximum relative change of each band on its own (colour shifts).
        saturation: Maximum desaturation towards the band mean (3-band images only).
        noise: Noise standard deviation relative to the sample's.

    Returns:
        The jittered images (float32).
    """
    x = image.float()
    n, c = x.shape[:2]

    def uniform(spread: float, *shape: int) -> Tensor:
        return 1 + (torch.rand(n, *shape, 1, 1, device=x.device) * 2 - 1) * spread

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * uniform(contrast, 1)
    x = x * uniform(brightness, 1) * uniform(gain, c)
    if c == 3 and saturation > 0:
        grey = x.mean(dim=1, keepdim=True)
        amount = torch.rand(n, 1, 1, 1, device=x.device) * saturation
        x = x + (grey - x) * amount
    return x + torch.randn_like(x) * std * noise
