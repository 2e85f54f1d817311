"""Augmentation keeps masks aligned with images and changes values plausibly."""

from __future__ import annotations

import pytest
import torch

from geounet.config import AugmentConfig
from geounet.data.augment import Augmenter, build_augmentation, dihedral, photometric, rot90


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


# --- Augmenter: configurable geometry (kornia) + photometric jitter ------------------------

OFF = {
    "flip": 0.0,
    "rotate90": 0.0,
    "rotate": 0.0,
    "scale": None,
    "elastic": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "gain": 0.0,
    "saturation": 0.0,
    "noise": 0.0,
}
GEOMETRY = {
    "flip": {"flip": 1.0},
    "rotate90": {"rotate90": 1.0},
    "rotate": {"rotate": 30.0},
    "scale": {"scale": [0.7, 1.4]},
    "elastic": {"elastic": 1.0},
    "all": {"flip": 0.5, "rotate90": 0.5, "rotate": 30.0, "scale": [0.7, 1.4], "elastic": 1.0},
}


def _config(**changes) -> AugmentConfig:
    return AugmentConfig(**{**OFF, **changes})


def _blocky(n: int = 8, bands: int = 4, size: int = 128, block: int = 16):
    """Masks of 3 classes in ``block``-px squares; band 0 encodes the class (x100)."""
    g = torch.Generator().manual_seed(1)
    cells = torch.randint(0, 3, (n, size // block, size // block), generator=g)
    mask = cells.repeat_interleave(block, 1).repeat_interleave(block, 2)
    image = torch.rand(n, bands, size, size, generator=g) * 1000
    image[:, 0] = mask * 100 + torch.rand(n, size, size, generator=g) * 4 - 2
    return image, mask


def _agreement(image: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of pixels whose band-0 value is clearly a class level and matches the mask."""
    level = image[:, 0] / 100
    clear = (level - level.round()).abs() < 0.1
    return float((mask == level.round().long())[clear].float().mean())


@pytest.mark.parametrize("name", list(GEOMETRY))
@pytest.mark.parametrize("bands", [4, 13])
def test_augmenter_keeps_masks_aligned(name: str, bands: int) -> None:
    torch.manual_seed(0)
    image, mask = _blocky(bands=bands)
    out_image, out_mask = Augmenter(_config(**GEOMETRY[name]))(image, mask)
    assert out_image.shape == image.shape and out_mask.shape == mask.shape
    assert out_mask.dtype == torch.long
    assert set(out_mask.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(out_mask, mask)  # the transform did something
    assert _agreement(out_image, out_mask) >= 0.97
    if name in ("flip", "rotate90"):  # exact: every pixel is a copy of an input pixel
        assert torch.equal(out_mask, (out_image[:, 0] / 100).round().long())


def test_augmenter_alignment_check_detects_misalignment() -> None:
    torch.manual_seed(0)
    image, mask = _blocky()
    out_image, _ = Augmenter(_config(rotate=30.0))(image, mask)
    assert _agreement(out_image, mask) < 0.9


def test_augmenter_with_photometric_keeps_class_levels_and_masks() -> None:
    torch.manual_seed(0)
    image, mask = _blocky(bands=13)
    augment = build_augmentation(_config(**GEOMETRY["all"], brightness=0.2, gain=0.1))
    out_image, out_mask = augment(image, mask)
    assert torch.isfinite(out_image).all() and out_image.dtype == torch.float32
    assert set(out_mask.unique().tolist()) <= {0, 1, 2}
    assert 0.6 < float(out_image.mean() / image.mean()) < 1.5
    assert not torch.equal(out_mask, mask)


def test_augmenter_all_zero_is_identity() -> None:
    image, mask = _blocky(bands=13)
    out_image, out_mask = Augmenter(_config())(image, mask)
    assert torch.equal(out_image, image) and torch.equal(out_mask, mask)


def test_augmenter_default_config_runs() -> None:
    torch.manual_seed(0)
    image, mask = _blocky()
    out_image, out_mask = build_augmentation(AugmentConfig())(image, mask)
    assert out_image.shape == image.shape and out_mask.shape == mask.shape


def test_augmenter_is_deterministic_under_seed() -> None:
    image, mask = _blocky()
    augment = Augmenter(_config(**GEOMETRY["all"], brightness=0.2, noise=0.03))
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(augment(image, mask))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    torch.manual_seed(8)
    assert not torch.equal(augment(image, mask)[0], runs[0][0])


def test_rot90_non_square_windows_only_turn_half() -> None:
    torch.manual_seed(0)
    image, mask = torch.rand(6, 2, 16, 24), torch.randint(0, 3, (6, 16, 24))
    out_image, out_mask = rot90(image, mask, p=1.0)
    assert out_image.shape == image.shape
    assert torch.equal(out_image, image.rot90(2, (-2, -1)))
    assert torch.equal(out_mask, mask.rot90(2, (-2, -1)))


def test_hue_rotation_turns_colours_about_the_grey_axis() -> None:
    import math

    from geounet.data.augment import _hue_rotation, photometric

    turn = _hue_rotation(torch.tensor([2 * math.pi / 3]))[0]
    torch.testing.assert_close(turn @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    grey = torch.tensor([0.4, 0.4, 0.4])
    torch.testing.assert_close(turn @ grey, grey)
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8) * 200
    still = {"brightness": 0, "contrast": 0, "gain": 0, "saturation": 0, "noise": 0}
    y = photometric(x, **still, hue=0.5)
    torch.testing.assert_close(y.mean(1), x.mean(1), rtol=1e-4, atol=1e-3)  # brightness kept
    assert (y - x).abs().max() > 1  # colours changed
    torch.testing.assert_close(photometric(x, **still, hue=0.0), x)
