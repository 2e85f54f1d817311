"""What every non-GeoTIFF source shares: labels to classes, per-case normalization,
resampling to a target voxel spacing, 2D slices (and 2.5D context) from volumes, splits
by patient or case, and the training / validation crop datasets.

Everything here works on in-memory arrays with channels first, ``(C, *spatial)``, and on
plain arguments; sources (:mod:`geounet.data.sources`) only read files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from geounet.data.sources import CaseRef, RawCase, natural_key
from geounet.errors import ConfigError, DataError
from geounet.io.labelmap import IGNORE, LabelSpec
from geounet.io.windows import window_starts

# ---------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Preprocess:
    """How a case's image is prepared before the model sees it (stored in the bundle).

    Args:
        normalize: ``"dataset"`` (the model's own mean/std from the training set),
            ``"zscore"`` (per case and channel) or ``"percentile"`` (per case: clip to
            ``percentiles`` and scale to 0-1).
        mask: ``"nonzero"`` computes per-case statistics inside non-zero voxels only
            (brain MRI) and keeps the outside at 0.
        percentiles: Low and high percentiles for ``"percentile"``.
        spacing: Target voxel spacing of 3D cases (resampled once), None = native.
        slice_axis: For 2D models on volumes: ``"axial"`` or a voxel axis 0-2.
        context: Neighbouring slices on each side stacked as channels (2.5D).
    """

    normalize: str = "dataset"
    mask: str | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    spacing: tuple[float, ...] | None = None
    slice_axis: str | int | None = None
    context: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the bundle."""
        return {
            "normalize": self.normalize,
            "mask": self.mask,
            "percentiles": list(self.percentiles),
            "spacing": list(self.spacing) if self.spacing else None,
            "slice_axis": self.slice_axis,
            "context": self.context,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Preprocess:
        """Inverse of :meth:`to_dict`."""
        return cls(
            normalize=raw.get("normalize", "dataset"),
            mask=raw.get("mask"),
            percentiles=tuple(raw.get("percentiles") or (0.5, 99.5)),
            spacing=tuple(raw["spacing"]) if raw.get("spacing") else None,
            slice_axis=raw.get("slice_axis"),
            context=int(raw.get("context") or 0),
        )


@dataclass
class Case:
    """A case ready for the model: image (C, *spatial) float32, classes (*spatial) int64.

    For 2D models on volumes the slice axis is the first spatial axis.
    """

    id: str
    group: str
    image: np.ndarray
    mask: np.ndarray | None
    spacing: tuple[float, ...]
    raw: RawCase
    slice_axis: int | None = None  # voxel axis moved to the front (2D on volumes)
    native_shape: tuple[int, ...] = ()  # spatial shape before resampling


def normalize(image: np.ndarray, prep: Preprocess) -> np.ndarray:
    """Per-case normalization of a (C, *spatial) image (float32)."""
    image = image.astype(np.float32, copy=False)
    if prep.normalize == "dataset":
        return image
    out = np.empty_like(image)
    for c, channel in enumerate(image):
        inside = channel != 0 if prep.mask == "nonzero" else np.ones(channel.shape, bool)
        values = channel[inside] if inside.any() else channel.ravel()
        if prep.normalize == "zscore":
            mean, std = float(values.mean()), float(values.std())
            scaled = (channel - mean) / (std if std > 0 else 1.0)
        else:
            low, high = np.percentile(values, prep.percentiles)
            scaled = (np.clip(channel, low, high) - low) / (high - low if high > low else 1.0)
        out[c] = np.where(inside, scaled, 0.0) if prep.mask == "nonzero" else scaled
    return out


def resample(image: np.ndarray, shape: Sequence[int], *, labels: bool = False) -> np.ndarray:
    """Resample (C, *spatial) float images (linear) or (*spatial) labels (nearest)."""
    if tuple(image.shape[-len(shape) :]) == tuple(shape):
        return image
    mode = "nearest-exact" if labels else ("trilinear" if len(shape) == 3 else "bilinear")
    t = torch.from_numpy(np.ascontiguousarray(image))
    t = t[None, None].float() if labels else t[None].float()
    kwargs = {} if labels else {"align_corners": False}
    out = F.interpolate(t, size=tuple(int(s) for s in shape), mode=mode, **kwargs)[0]
    return out[0].to(torch.int64).numpy() if labels else out.numpy()


def target_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]):
    """Spatial shape of a grid resampled from ``spacing`` to ``target`` spacing."""
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True))


def prepare_case(raw: RawCase, prep: Preprocess, labels: LabelSpec | None, dims: int) -> Case:
    """Normalize, map labels, resample and orient one case for a model of ``dims`` dims."""
    image = normalize(raw.image, prep)
    mask = labels.apply(raw.label, raw.ref.label) if labels and raw.label is not None else None
    spacing = tuple(raw.spacing)
    native = tuple(image.shape[1:])
    if prep.spacing and image.ndim == 4:
        if len(prep.spacing) != 3:
            raise ConfigError("config key 'data.spacing' needs three values (mm per voxel axis)")
        shape = target_shape(native, spacing, prep.spacing)
        image = resample(image, shape)
        if mask is not None:
            mask = resample(mask, shape, labels=True)
        spacing = tuple(prep.spacing)
    axis = None
    if dims == 2 and image.ndim == 4:
        axis = _slice_axis(prep.slice_axis, raw)
        image = np.moveaxis(image, axis + 1, 1)
        mask = None if mask is None else np.moveaxis(mask, axis, 0)
        spacing = (spacing[axis], *(s for i, s in enumerate(spacing) if i != axis))
    elif dims == 3 and image.ndim != 4:
        raise DataError(f"{raw.ref.images[0]}: a 3D model needs volumes, got a 2D image")
    if mask is not None and labels is not None and labels.num_classes < IGNORE:
        mask = mask.astype(np.uint8)  # 8x smaller than int64; IGNORE fits
    slim = RawCase(raw.ref, None, None, raw.spacing, raw.grid)  # drop the raw arrays
    return Case(
        raw.ref.id,
        raw.ref.group,
        np.ascontiguousarray(image),
        None if mask is None else np.ascontiguousarray(mask),
        spacing,
        slim,
        axis,
        native,
    )


def _slice_axis(value: str | int | None, raw: RawCase) -> int:
    if value in (None, "axial"):
        axial = getattr(raw.grid, "axial_axis", None)
        return int(axial) if axial is not None else 2
    if value not in (0, 1, 2):
        raise ConfigError(f"config key 'data.slice_axis' must be 'axial', 0, 1 or 2, got {value!r}")
    return int(value)


def context_stack(volume: np.ndarray, s: int, k: int) -> np.ndarray:
    """Slice ``s`` of a (C, S, H, W) volume with ``k`` neighbours each side as channels,
    repeating the end slices at the volume's ends: (C * (2k + 1), H, W)."""
    idx = np.clip(np.arange(s - k, s + k + 1), 0, volume.shape[1] - 1)
    return volume[:, idx].reshape(-1, *volume.shape[2:])


# ---------------------------------------------------------------------------- splits


def strip_split(
    refs: Sequence[CaseRef], *, val_fraction: float, test_fraction: float = 0.0
) -> tuple[list[CaseRef], list[CaseRef], list[CaseRef]]:
    """Every case in train | validation | test strips along its long axis, as scenes are
    split: for a few large chips whose classes differ from chip to chip (LoveDA: one
    mostly farmland, one mostly forest), where a split by file would validate on classes
    never trained on. Each part is the same case with ``extra["strip"]`` = (start, stop)
    fractions of its long axis (see :func:`strip_window`)."""
    cut_test = 1.0 - test_fraction
    cut_val = cut_test - val_fraction
    parts: tuple[list[CaseRef], list[CaseRef], list[CaseRef]] = ([], [], [])
    bounds = [(0.0, cut_val), (cut_val, cut_test), (cut_test, 1.0)]
    for ref in refs:
        for part, (a, b) in zip(parts, bounds, strict=True):
            if b > a:
                extra = {**ref.extra, "strip": (a, b)}
                part.append(CaseRef(ref.id, ref.group, ref.images, ref.label, extra))
    return parts


def strip_window(shape: Sequence[int], strip: Sequence[float]) -> tuple[slice, slice]:
    """The (rows, cols) slices of a 2D ``shape`` that a strip of fractions covers along
    its long axis."""
    h, w = shape[-2:]
    n = max(h, w)
    a, b = round(strip[0] * n), round(strip[1] * n)
    return (slice(None), slice(a, b)) if w >= h else (slice(a, b), slice(None))


def crop_strip(case: Case, strip: Sequence[float]) -> Case:
    """The part of a prepared 2D case inside a strip (see :func:`strip_split`)."""
    if case.image.ndim != 3:
        raise ConfigError("config key 'data.split': strips split 2D chips, not volumes")
    rows, cols = strip_window(case.image.shape, strip)
    image = np.ascontiguousarray(case.image[:, rows, cols])
    mask = None if case.mask is None else np.ascontiguousarray(case.mask[rows, cols])
    return dataclasses.replace(case, image=image, mask=mask)


def split_cases(
    refs: Sequence[CaseRef],
    *,
    val_fraction: float,
    test_fraction: float = 0.0,
    seed: int = 0,
    ordered: bool = False,
) -> tuple[list[CaseRef], list[CaseRef], list[CaseRef]]:
    """Split by group (patient, case or file): no group is in two parts.

    ``ordered`` takes the last groups in natural order as validation (and test after
    it): contiguous blocks, for slices of one stack; otherwise groups are shuffled.
    """
    groups = sorted({r.group for r in refs}, key=natural_key)
    if len(groups) < 2:
        raise DataError(
            f"only {len(groups)} case group(s) found; a validation split needs at least two "
            "(or give data.val_images)"
        )
    if not ordered:
        order = np.random.default_rng(seed).permutation(len(groups))
        groups = [groups[i] for i in order]
    n = len(groups)
    n_val = max(1, round(n * val_fraction))
    n_test = round(n * test_fraction) if test_fraction > 0 else 0
    if test_fraction > 0:
        n_test = max(1, n_test)
    if n - n_val - n_test < 1:
        raise DataError(f"{n} case groups leave none for training with these fractions")
    train_g = set(groups[: n - n_val - n_test])
    val_g = set(groups[n - n_val - n_test : n - n_test])
    test_g = set(groups[n - n_test :])

    def pick(keep: set) -> list[CaseRef]:
        return [r for r in refs if r.group in keep]

    return pick(train_g), pick(val_g), pick(test_g)


# ---------------------------------------------------------------------------- datasets


def _crop(
    case: Case, starts: Sequence[int], patch: Sequence[int], context: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of a window at ``starts`` (slice index first for 2D on volumes),
    padded with zeros / :data:`IGNORE` where the case is smaller than the patch."""
    image, mask = case.image, case.mask
    if context is not None and image.ndim == 4:
        s, *rest = starts
        image = context_stack(image, s, context)
        mask = None if mask is None else mask[s]
        starts = rest
    sl = tuple(slice(b, b + p) for b, p in zip(starts, patch, strict=True))
    img = image[(slice(None), *sl)]
    msk = mask[sl] if mask is not None else np.zeros(img.shape[1:], np.int64)
    pads = [(0, p - n) for p, n in zip(patch, msk.shape, strict=True)]
    if any(after for _, after in pads):
        img = np.pad(img, [(0, 0), *pads])
        msk = np.pad(msk, pads, constant_values=IGNORE)
    return img, msk


class CaseCrops(Dataset):
    """Random training windows over cases, with foreground oversampling (as nnU-Net).

    Item ``i`` is a function of ``(seed, i)``: pair it with
    :class:`CropSampler`, which draws fresh indices every epoch.
    With probability ``foreground_fraction`` a window is centred on a random foreground
    voxel; otherwise it is placed uniformly (so slices without foreground are drawn
    less often but still drawn).

    Args:
        cases: Prepared cases (with masks).
        patch: Window size per model spatial axis.
        length: Windows per epoch.
        seed: Base seed.
        foreground_fraction: Share of windows centred on foreground.
        context: For 2D models on volumes, neighbouring slices per side; None otherwise.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        patch: Sequence[int],
        *,
        length: int,
        seed: int = 0,
        foreground_fraction: float = 0.33,
        context: int | None = None,
    ) -> None:
        self.cases, self.patch, self.length = list(cases), tuple(patch), length
        self.seed, self.fg, self.context = seed, foreground_fraction, context
        rng = np.random.default_rng(seed)
        self.foreground = []
        for case in self.cases:
            coords = np.argwhere((case.mask > 0) & (case.mask != IGNORE))
            if len(coords) > 20_000:
                coords = coords[rng.choice(len(coords), 20_000, replace=False)]
            self.foreground.append(coords)
        weights = np.array([c.mask.size for c in self.cases], dtype=np.float64)
        self.weights = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        k = int(rng.choice(len(self.cases), p=self.weights))
        case, fg = self.cases[k], self.foreground[k]
        shape = case.mask.shape
        window = ((1,) if len(shape) > len(self.patch) else ()) + self.patch
        if len(fg) and rng.random() < self.fg:
            centre = fg[int(rng.integers(len(fg)))]
            starts = [
                int(np.clip(c - w // 2 + rng.integers(-(w // 4), w // 4 + 1), 0, max(0, n - w)))
                for c, w, n in zip(centre, window, shape, strict=True)
            ]
        else:
            starts = [
                int(rng.integers(max(1, n - w + 1))) for w, n in zip(window, shape, strict=True)
            ]
        return _item(*_crop(case, starts, self.patch, self.context))


def _item(image: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
        "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64)),
    }


class CaseTiles(Dataset):
    """Every window of a grid covering each case (validation): same-sized, batchable.

    Args:
        cases: Prepared cases (with masks).
        patch: Window size per model spatial axis.
        context: For 2D models on volumes, neighbouring slices per side; None otherwise.
    """

    def __init__(
        self, cases: Sequence[Case], patch: Sequence[int], *, context: int | None = None
    ) -> None:
        self.cases, self.patch, self.context = list(cases), tuple(patch), context
        self.items: list[tuple[int, tuple[int, ...]]] = []
        for k, case in enumerate(self.cases):
            shape = case.mask.shape
            window = ((1,) if len(shape) > len(self.patch) else ()) + self.patch
            axes = [window_starts(n, min(w, n), 0) for n, w in zip(shape, window, strict=True)]
            for starts in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes)):
                self.items.append((k, tuple(int(s) for s in starts)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        k, starts = self.items[index]
        return _item(*_crop(self.cases[k], starts, self.patch, self.context))


class CropSampler(torch.utils.data.Sampler):
    """``length`` random crop indices per epoch, a function of ``seed`` and the epoch."""

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start."""
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randint(0, 2**62, (self.length,), generator=g).tolist())

    def __len__(self) -> int:
        return self.length


def channel_statistics(
    cases: Sequence[Case], *, samples: int = 200_000, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over the cases (sampled voxels)."""
    rng = np.random.default_rng(seed)
    per_case = max(1, samples // max(1, len(cases)))
    values = []
    for case in cases:
        flat = case.image.reshape(case.image.shape[0], -1)
        take = rng.choice(flat.shape[1], min(per_case, flat.shape[1]), replace=False)
        values.append(flat[:, take])
    stacked = np.concatenate(values, axis=1).astype(np.float64)
    std = stacked.std(axis=1)
    return stacked.mean(axis=1).tolist(), np.where(std > 0, std, 1.0).tolist()
