"""Augmentation keeps masks aligned with images and changes values plausibly."""

from __future__ import annotations

import torch

from geounet.data.augment import dihedral, photometric


def test_dihedral_moves_masks_with_images() -> None:
    torch.manual_seed(0)
    image = torch.rand(16, 3, 32, 32)
    mask = (image[:, 0] > 0.5).long()  # the mask is a function of the pixel values
    out_image, out_mask = dihedral(image, mask)
    assert torch.equal(out_mask, (out_image[:, 0] > 0.5).long())
    # every sample is one of the 8 symmetries of its input, and they are not all identity
    changed = 0
    for src, dst in zip(image, out_image, strict=True):
        variants = [src.rot90(k, (-2, -1)) for k in range(4)]
        variants += [v.flip(-1) for v in variants]
        assert any(torch.equal(v, dst) for v in variants)
        changed += not torch.equal(src, dst)
    assert changed > 8


def test_dihedral_non_square_windows_keep_shape() -> None:
    image, mask = torch.rand(6, 2, 16, 24), torch.randint(0, 3, (6, 16, 24))
    out_image, out_mask = dihedral(image, mask)
    assert out_image.shape == image.shape and out_mask.shape == mask.shape
    assert torch.equal(out_mask, out_mask.clamp(0, 2))


def test_photometric_jitter_is_bounded_and_random() -> None:
    torch.manual_seed(0)
    image = torch.full((32, 3, 16, 16), 100.0) + torch.randn(32, 3, 16, 16) * 10
    out = photometric(image, noise=0.0, saturation=0.0)
    ratio = out.mean(dim=(1, 2, 3)) / image.mean(dim=(1, 2, 3))
    assert ratio.min() > 0.8 * 0.9 - 1e-3 and ratio.max() < 1.2 * 1.1 + 1e-3
    assert ratio.std() > 0.02  # samples get different jitter
    assert torch.equal(
        photometric(image, brightness=0, contrast=0, gain=0, saturation=0, noise=0), image
    )


def test_photometric_keeps_uint16_scale() -> None:
    image = torch.randint(0, 10000, (4, 4, 8, 8)).float()
    out = photometric(image)
    assert out.dtype == torch.float32
    assert 0.5 < float(out.mean() / image.mean()) < 1.5
