"""Footprint / border / contact probabilities to an instance map: seeded watershed.

Seeds are the pixels where the footprint is confident and neither border nor contact is;
each seed grows back over the footprint mask by watershed on the footprint probability,
so two touching roofs become two objects while a single roof with a thin neck stays one
unless the model marks a border across the neck. Footprint components without any seed
are objects of their own; objects below a minimum size are dropped.

:class:`InstanceStream` does the same on rows arriving one band at a time (as scene
prediction produces them) with the exact result of the whole-raster call: the watershed
never crosses from one footprint component to another, so a component is split as soon
as it is complete (no longer touches the newest row) and its rows are released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from geounet.errors import ConfigError

_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class InstanceParams:
    """Thresholds and sizes of the instance step (sizes in pixels of the output grid).

    Attributes:
        mask_threshold: Footprint probability above which a pixel belongs to an object.
        seed_threshold: Footprint probability a seed pixel needs.
        border_threshold: Seeds exclude pixels whose border probability exceeds this.
        contact_threshold: Seeds exclude pixels whose contact probability exceeds this.
        min_seed_px: Seeds smaller than this are dropped (their pixels join a neighbour).
        min_object_px: Objects smaller than this are dropped.
    """

    mask_threshold: float = 0.5
    seed_threshold: float = 0.7
    border_threshold: float = 0.4
    contact_threshold: float = 0.4
    min_seed_px: int = 8
    min_object_px: int = 16

    def __post_init__(self) -> None:
        for name in ("mask_threshold", "seed_threshold", "border_threshold", "contact_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"objects.{name} must lie in [0, 1], got {value}")

    @classmethod
    def from_meta(cls, objects: dict[str, Any], pixel_m2: float) -> InstanceParams:
        """Parameters from a model's ``objects`` metadata, areas (m²) in output pixels."""
        keys = {f.name for f in fields(cls)}
        values = {k: v for k, v in objects.items() if k in keys}
        px = max(pixel_m2, 1e-12)
        values["min_seed_px"] = max(1, round(objects.get("min_seed_m2", 0.0) / px))
        values["min_object_px"] = max(1, round(objects.get("min_area_m2", 0.0) / px))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for logs and reports)."""
        return asdict(self)


def split_instances(
    footprint: np.ndarray,
    border: np.ndarray,
    contact: np.ndarray,
    params: InstanceParams | None = None,
    *,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Instance map (int32, 0 background, ids 1..n) of one raster.

    Args:
        footprint, border, contact: (H, W) probabilities in [0, 1].
        params: Thresholds and sizes.
        mask: Optional boolean restriction of the object pixels (valid data).

    Returns:
        The instance map; ids follow the first pixel of each seed in raster order.
    """
    params = params or InstanceParams()
    fp = np.asarray(footprint, dtype=np.float32)
    objects = fp > params.mask_threshold
    if mask is not None:
        objects &= mask
    return _split(fp, np.asarray(border), np.asarray(contact), objects, params)


def _split(
    fp: np.ndarray,
    border: np.ndarray,
    contact: np.ndarray,
    objects: np.ndarray,
    params: InstanceParams,
) -> np.ndarray:
    if not objects.any():
        return np.zeros(fp.shape, np.int32)
    seeds = (
        objects
        & (fp > params.seed_threshold)
        & (border <= params.border_threshold)
        & (contact <= params.contact_threshold)
    )
    markers, n = ndimage.label(seeds, structure=_FOUR)
    if n and params.min_seed_px > 1:
        sizes = np.bincount(markers.ravel(), minlength=n + 1)
        small = sizes < params.min_seed_px
        small[0] = False
        if small.any():
            markers[small[markers]] = 0
            markers, n = ndimage.label(markers > 0, structure=_FOUR)
    labels = np.zeros(fp.shape, np.int32)
    if n:
        labels = watershed(-fp, markers, mask=objects, connectivity=1).astype(np.int32)
    # components left without a seed are objects of their own
    rest, m = ndimage.label(objects & (labels == 0), structure=_FOUR)
    if m:
        labels[rest > 0] = rest[rest > 0] + labels.max()
    return _drop_small(labels, params.min_object_px)


def _drop_small(labels: np.ndarray, min_px: int) -> np.ndarray:
    """Remove objects under ``min_px`` pixels and number the rest 1..n in raster order."""
    n = int(labels.max())
    if n == 0:
        return labels
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_px
    keep[0] = False
    # renumber by first pixel in raster order, so ids do not depend on how seeds were found
    flat = labels.ravel()
    present = np.flatnonzero(keep)
    first = np.full(n + 1, flat.size, dtype=np.int64)
    np.minimum.at(first, flat, np.arange(flat.size))
    order = present[np.argsort(first[present], kind="stable")]
    lut = np.zeros(n + 1, np.int32)
    lut[order] = np.arange(1, order.size + 1, dtype=np.int32)
    return lut[labels]


Emit = Callable[[int, np.ndarray], None]


class InstanceStream:
    """Instance maps of rows that arrive in order, equal to :func:`split_instances`.

    Call :meth:`put` with consecutive row bands and :meth:`close` at the end; ``emit`` is
    called with (first row, int32 ids (n, W)) for finished rows, in order. Ids are unique
    over the whole raster (1, 2, ... in the order objects complete).

    Memory holds the rows from the top of the oldest object still open to the newest row.
    """

    def __init__(self, width: int, params: InstanceParams, emit: Emit) -> None:
        self.width, self.params, self.emit = width, params, emit
        self.top = 0  # first buffered row
        self.fp = np.zeros((0, width), np.float32)
        self.border = np.zeros((0, width), np.float32)
        self.contact = np.zeros((0, width), np.float32)
        self.objects = np.zeros((0, width), bool)
        self.ids = np.zeros((0, width), np.int32)
        self.next_id = 1
        self.count = 0

    def put(self, probs: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Append rows: probabilities (3, n, W) of footprint, border, contact."""
        fp = probs[0].astype(np.float32, copy=False)
        obj = fp > self.params.mask_threshold
        if valid is not None:
            obj &= valid
        self.fp = np.concatenate([self.fp, fp])
        self.border = np.concatenate([self.border, probs[1].astype(np.float32, copy=False)])
        self.contact = np.concatenate([self.contact, probs[2].astype(np.float32, copy=False)])
        self.objects = np.concatenate([self.objects, obj])
        self.ids = np.concatenate([self.ids, np.zeros(obj.shape, np.int32)])
        self._flush(final=False)

    def close(self) -> None:
        """Split what is left and emit the remaining rows."""
        self._flush(final=True)

    def _flush(self, final: bool) -> None:
        pending = self.objects & (self.ids == 0)
        comp, n = ndimage.label(pending, structure=_FOUR)
        cut = self.fp.shape[0]  # rows [0, cut) of the buffer are final after this call
        if n:
            done = np.ones(n + 1, bool)
            if not final:
                done[np.unique(comp[-1])] = False  # may still grow into the next rows
            done[0] = False
            growing = ~done
            growing[0] = False
            if growing.any():
                cut = int(np.flatnonzero(growing[comp].any(axis=1))[0])
            ready = done[comp]
            if ready.any():
                self._assign(ready)
        if cut:
            self.emit(self.top, self.ids[:cut])
            for name in ("fp", "border", "contact", "objects", "ids"):
                setattr(self, name, getattr(self, name)[cut:])
            self.top += cut

    def _assign(self, ready: np.ndarray) -> None:
        """Split the finished components (``ready`` pixels) and give them global ids."""
        rows = np.flatnonzero(ready.any(axis=1))
        sl = slice(int(rows[0]), int(rows[-1]) + 1)
        labels = _split(self.fp[sl], self.border[sl], self.contact[sl], ready[sl], self.params)
        hit = labels > 0
        n = int(labels.max())
        if n:
            self.ids[sl][hit] = labels[hit] + (self.next_id - 1)
            self.next_id += n
            self.count += n
        # pixels of finished objects dropped as too small are not split again
        self.objects[sl][ready[sl] & ~hit] = False
