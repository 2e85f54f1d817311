"""Batch augmentation on raw band values: geometry moves masks with images.

Geometric transforms are flips and 90-degree rotations (exact, no resampling) plus,
optionally, free rotations, scaling and elastic deformations (kornia; images bilinear,
masks nearest, both reflection-padded); photometric ones jitter brightness, contrast,
per-band gain and saturation and add noise, so models generalise across sensors, dates
and illumination. Everything is band-agnostic: any band count works.
"""

from __future__ import annotations

import math
from typing import Any

import kornia.augmentation as K
import torch
from kornia.constants import DataKey, Resample
from torch import Tensor, nn


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
    group: int = 1,
    hue: float = 0.0,
) -> Tensor:
    """Random brightness, contrast, per-band gain, saturation, hue and Gaussian noise.

    Works on raw values of any range: contrast pivots on each sample's mean and noise
    scales with each sample's standard deviation.

    Args:
        image: (N, C, H, W) raw band values.
        brightness: Maximum relative brightness change.
        contrast: Maximum relative contrast change.
        gain: Maximum relative change of each band on its own (colour shifts).
        saturation: Maximum desaturation towards the band mean (3-band images only).
        noise: Noise standard deviation relative to the sample's.
        group: Consecutive channels that are one band (2.5D: the neighbouring slices of
            one modality): they share one gain, and saturation is off.
        hue: Maximum hue rotation as a fraction of a full turn (0.5: any hue), 3-band
            images only: each pixel's colour turns about the grey axis, so grey stays grey
            and brightness is kept (red roofs become blue, blue ones red, ...).

    Returns:
        The jittered images (float32).
    """
    x = image.float()
    n, c = x.shape[:2]

    def uniform(spread: float, *shape: int) -> Tensor:
        return 1 + (torch.rand(n, *shape, *spatial, device=x.device) * 2 - 1) * spread

    dims = tuple(range(1, x.ndim))
    spatial = (1,) * (x.ndim - 2)
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    x = mean + (x - mean) * uniform(contrast, 1)
    gains = uniform(gain, c // group).repeat_interleave(group, dim=1) if group > 1 else None
    x = x * uniform(brightness, 1) * (gains if gains is not None else uniform(gain, c))
    if c == 3 and saturation > 0 and group == 1:
        grey = x.mean(dim=1, keepdim=True)
        amount = torch.rand(n, 1, *spatial, device=x.device) * saturation
        x = x + (grey - x) * amount
    if c == 3 and hue > 0 and group == 1:
        angle = (torch.rand(n, device=x.device) * 2 - 1) * (2 * math.pi * hue)
        x = torch.einsum("nij,nj...->ni...", _hue_rotation(angle), x)
    return x + torch.randn_like(x) * std * noise


def _hue_rotation(angle: Tensor) -> Tensor:
    """(N, 3, 3) rotations of RGB about the grey axis (1, 1, 1) by ``angle`` radians."""
    u = torch.full((3,), 1 / math.sqrt(3), device=angle.device)
    cross = torch.tensor(
        [[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]], device=angle.device
    )
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    eye = torch.eye(3, device=angle.device)
    return cos * eye + sin * cross + (1 - cos) * torch.outer(u, u)


def rot90(image: Tensor, mask: Tensor, p: float) -> tuple[Tensor, Tensor]:
    """Rotate each sample by a random nonzero multiple of 90 degrees with probability ``p``.

    Exact (no resampling). Non-square windows are only rotated by 180 degrees.

    Args:
        image: (N, C, H, W) images.
        mask: (N, H, W) class ids.
        p: Probability that a sample is rotated.

    Returns:
        The rotated ``(image, mask)``.
    """
    n = image.shape[0]
    if p <= 0 or n == 0:
        return image, mask
    square = image.shape[-1] == image.shape[-2]
    ks = torch.randint(1, 4, (n,)) if square else torch.full((n,), 2)
    ks = torch.where(torch.rand(n) < p, ks, 0).to(image.device)
    image, mask = image.clone(), mask.clone()
    for k in (1, 2, 3):
        idx = ks == k
        if idx.any():
            image[idx] = image[idx].rot90(k, (-2, -1))
            mask[idx] = mask[idx].rot90(k, (-2, -1))
    return image, mask


class Augmenter(nn.Module):
    """Random geometry (image and mask alike) then photometric jitter, per the config.

    Order: 90-degree rotations, flips, affine (rotation/scale), elastic, photometric.
    Steps whose probability or strength is 0 are skipped; an all-zero config returns
    the inputs unchanged. Randomness comes from torch's global generator. Elastic
    deformation uses kornia's defaults (kernel 63, sigma 32, alpha 1): mild, about
    1 px RMS displacement on 256 px windows.
    """

    def __init__(self, config: Any, *, channel_group: int = 1) -> None:
        super().__init__()
        self.config = config
        steps: list[nn.Module] = []
        if config.flip > 0:
            steps += [K.RandomHorizontalFlip(p=config.flip), K.RandomVerticalFlip(p=config.flip)]
        if config.rotate > 0 or config.scale:
            steps.append(
                K.RandomAffine(
                    degrees=config.rotate,
                    scale=tuple(config.scale) if config.scale else None,
                    padding_mode="reflection",
                    p=1.0,
                )
            )
        if config.elastic > 0:
            steps.append(K.RandomElasticTransform(padding_mode="reflection", p=config.elastic))
        self.geometric = (
            K.AugmentationSequential(
                *steps,
                data_keys=["input", "mask"],
                extra_args={DataKey.MASK: {"resample": Resample.NEAREST, "align_corners": False}},
            )
            if steps
            else None
        )
        self.jitter = {
            "brightness": config.brightness,
            "contrast": config.contrast,
            "gain": config.gain,
            "saturation": config.saturation,
            "noise": config.noise,
            "hue": getattr(config, "hue", 0.0),
        }
        self.channel_group = channel_group

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Augment a batch.

        Args:
            image: (N, C, H, W) float raw band values, any band count.
            mask: (N, H, W) long class ids.

        Returns:
            The augmented ``(image, mask)``, same shapes; the mask keeps its dtype and
            holds only ids present in the input (nearest resampling, reflection padding).
        """
        if image.ndim == 5:
            return self._volumes(image, mask)
        image, mask = rot90(image, mask, self.config.rotate90)
        if self.geometric is not None:
            out_image, out_mask = self.geometric(image.float(), mask[:, None].float())
            image, mask = out_image, out_mask[:, 0].round().to(mask.dtype)
        if any(v > 0 for v in self.jitter.values()):
            image = photometric(image, **self.jitter, group=self.channel_group)
        return image, mask

    def _volumes(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """3D batches (N, C, D, H, W): a random flip per axis, in-plane 90-degree
        rotations of square patches, then the photometric jitter."""
        if self.config.flip > 0:
            image, mask = image.clone(), mask.clone()
            for axis in (2, 3, 4):
                flip = torch.rand(image.shape[0]) < self.config.flip
                if flip.any():
                    image[flip] = image[flip].flip(axis)
                    mask[flip] = mask[flip].flip(axis - 1)
        if image.shape[-1] == image.shape[-2]:
            image, mask = rot90(image, mask, self.config.rotate90)
        if any(v > 0 for v in self.jitter.values()):
            image = photometric(image, **self.jitter, group=self.channel_group)
        return image, mask


def build_augmentation(config: Any, *, channel_group: int = 1) -> Augmenter:
    """The training :class:`Augmenter` for ``config``: any object with the fields of the
    ``augmentation`` config section (flip, rotate90, rotate, scale, elastic, brightness,
    contrast, gain, saturation, noise). ``channel_group``: consecutive channels that are
    one band (2.5D context slices), jittered alike.

    For 3D batches the geometry is random flips along every axis (as nnU-Net mirrors)
    and in-plane 90-degree rotations; free rotation, scaling and elastic deformation
    apply to 2D batches only.
    """
    return Augmenter(config, channel_group=channel_group)
