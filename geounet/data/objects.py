"""Targets for countable objects: footprint, border and contact channels.

The SpaceNet 4 and 6 winners separated touching buildings with a U-Net trained on three
channels instead of one: the footprint, a thin border inside every object, and the contact
zone where two objects come close. A seeded watershed then grows seeds (confident
footprint away from borders and contacts) back over the footprint
(:mod:`geounet.infer.instances`).

The three channels are packed as bits of one integer mask, so the samplers, the
augmentation (nearest-neighbour on masks) and the data loaders handle them as any other
label mask: bit 0 footprint, bit 1 border, bit 2 contact. 255 stays "ignore".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

FOOTPRINT, BORDER, CONTACT = 1, 2, 4
CHANNELS = ("footprint", "border", "contact")


def disk(radius: int) -> np.ndarray:
    """Boolean disk of pixels within ``radius`` of the centre (a (2r+1)² footprint)."""
    r = max(int(radius), 0)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r + r  # the "+ r" rounds the disk like a drawn circle


def object_target(instances: np.ndarray, border_px: int, contact_px: int) -> np.ndarray:
    """Bit-packed footprint / border / contact mask of an instance map.

    Args:
        instances: (H, W) integer map, 0 background and one id per object.
        border_px: Border width inside each object, in pixels: object pixels within this
            distance of a pixel of another id (or background) get the border bit. 0: none.
        contact_px: Pixels (object or background) within this distance of two or more
            different objects get the contact bit. 0: none.

    Returns:
        (H, W) uint8 mask with bits :data:`FOOTPRINT`, :data:`BORDER`, :data:`CONTACT`.
        Window edges are not borders: outside pixels repeat the edge (``mode="nearest"``).
    """
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance map must be 2-D, got shape {inst.shape}")
    inst = inst.astype(np.int64, copy=False)
    fp = inst > 0
    out = fp.astype(np.uint8)
    if not fp.any():
        return out
    if border_px > 0:
        out |= borders(inst, border_px).astype(np.uint8) * BORDER
    if contact_px > 0:
        footprint = disk(contact_px)
        big = int(inst.max()) + 1
        hi = ndimage.maximum_filter(inst, footprint=footprint, mode="nearest")
        lo = ndimage.minimum_filter(np.where(fp, inst, big), footprint=footprint, mode="nearest")
        out |= ((lo != big) & (hi != lo)).astype(np.uint8) * CONTACT
    return out


def boundary_target(
    instances: np.ndarray, classes: np.ndarray, border_px: int, boundary_id: int
) -> np.ndarray:
    """Class target with a boundary class, as Fields of the World: background / object
    class / boundary.

    Object pixels within ``border_px`` of another object or the background become
    ``boundary_id``, so neighbouring objects of the same class stay apart in the target
    and the model learns to draw the line between them.

    Args:
        instances: (H, W) object ids, 0 background.
        classes: (H, W) class id of each pixel (0 background).
        border_px: Width of the boundary band inside each object (at least 1).
        boundary_id: Class id of the boundary (the class count: one past the last class).

    Returns:
        (H, W) uint8 class ids. Window edges are not boundaries.
    """
    inst = np.asarray(instances).astype(np.int64, copy=False)
    out = np.where(inst > 0, classes, 0).astype(np.uint8)
    if (inst > 0).any():
        out[borders(inst, max(1, border_px))] = boundary_id
    return out


def borders(instances: np.ndarray, width: int) -> np.ndarray:
    """Object pixels within ``width`` pixels of another object or the background (window
    edges repeat outward, so they are not borders)."""
    footprint = disk(width)
    hi = ndimage.maximum_filter(instances, footprint=footprint, mode="nearest")
    lo = ndimage.minimum_filter(instances, footprint=footprint, mode="nearest")
    return (instances > 0) & (hi != lo)


def components(mask: np.ndarray) -> np.ndarray:
    """Connected components (4-neighbour) of a mask as an instance map (int32)."""
    labels, _ = ndimage.label(np.asarray(mask) > 0)
    return labels.astype(np.int32, copy=False)


def metres_to_px(metres: float, pixel_m: float) -> int:
    """A width in metres as whole pixels (at least 1 for a positive width)."""
    if metres <= 0:
        return 0
    return max(1, round(metres / pixel_m))
