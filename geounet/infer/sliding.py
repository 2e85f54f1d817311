"""Tensor-level sliding-window inference for 2D images and 3D volumes (no geospatial code)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from geounet.errors import DataError
from geounet.infer.accumulate import BlendAccumulator
from geounet.io.windows import window_starts

BLEND_MODES = ("constant", "cosine", "gaussian")
_MIN_WEIGHT = 1e-3


def _profile(n: int, mode: str, edge: int, keep_lo: bool = False, keep_hi: bool = False) -> Tensor:
    """1D weight profile of length ``n``; ``edge`` pixels zeroed per side unless kept."""
    if mode not in BLEND_MODES:
        raise DataError(f"unknown blend mode {mode!r}; expected one of {BLEND_MODES}")
    if edge < 0 or 2 * edge >= n:
        raise DataError(f"edge crop {edge} must be >= 0 and leave pixels in a tile of {n}")
    m = n - 2 * edge
    x = torch.arange(m, dtype=torch.float64)
    if mode == "constant":
        ramp = torch.ones(m, dtype=torch.float64)
    elif mode == "cosine":
        ramp = 0.5 - 0.5 * torch.cos(2 * math.pi * (x + 0.5) / m)
    else:
        sigma = max(m / 8, 1e-6)
        ramp = torch.exp(-((x - (m - 1) / 2) ** 2) / (2 * sigma**2))
    ramp = (ramp / ramp.max()).clamp_min(1e-12)  # the product is clamped in _outer
    out = torch.zeros(n, dtype=torch.float64)
    out[edge : n - edge] = ramp
    if edge and keep_lo:
        out[:edge] = ramp[0]
    if edge and keep_hi:
        out[n - edge :] = ramp[-1]
    return out


def _outer(profiles: Sequence[Tensor]) -> Tensor:
    """Separable product of 1D profiles, non-zero values clamped to >= 1e-3, as float32."""
    w = profiles[0]
    for p in profiles[1:]:
        w = w.unsqueeze(-1) * p
    return torch.where(w > 0, w.clamp_min(_MIN_WEIGHT), 0.0).float()


def blend_weights(
    tile: tuple[int, ...],
    mode: str = "cosine",
    *,
    edge: int | Sequence[int] = 0,
    keep: Sequence[tuple[bool, bool]] | None = None,
) -> Tensor:
    """Per-pixel blending weights of shape ``tile`` (2D or 3D), max 1.

    Args:
        tile: Window size per spatial axis.
        mode: ``"constant"`` (ones), ``"cosine"`` (raised-cosine) or ``"gaussian"``
            (sigma = size / 8); non-constant weights are clamped to >= 1e-3.
        edge: Pixels zeroed along every window border (int or per axis).
        keep: Per axis, whether the low and the high border keep their edge pixels
            (sides on the image's border, which no other window covers).

    Raises:
        DataError: On an unknown mode or an edge leaving no pixel.
    """
    edges = _per_axis(edge, len(tile), "edge")
    keep = keep or [(False, False)] * len(tile)
    axes = zip(tile, edges, keep, strict=True)
    return _outer([_profile(int(n), mode, e, lo, hi) for n, e, (lo, hi) in axes])


def _per_axis(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    vals = (value,) * ndim if isinstance(value, int) else tuple(int(v) for v in value)
    if len(vals) != ndim:
        raise DataError(f"{name} has {len(vals)} values for {ndim} spatial dims")
    return vals


def sliding_window_predict(
    image: Tensor,
    predict: Callable[[Tensor], Tensor],
    *,
    tile: int | Sequence[int],
    overlap: int | Sequence[int] = 0,
    batch_size: int = 4,
    blend: str = "cosine",
    out_channels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    pad_mode: str = "reflect",
    edge: int | Sequence[int] = 0,
) -> Tensor:
    """Predict ``image`` (C, *spatial) window by window and blend into (K, *spatial) float32.

    Each output pixel is ``sum_w(weight_w * pred_w) / sum_w(weight_w)``. Axes shorter than the
    tile are padded (``pad_mode``, replicate when reflect is impossible) and cropped back.
    ``edge`` pixels of each window border get zero weight except on sides touching the image
    border; it needs ``overlap >= 2 * edge`` where an axis has several windows.

    Args:
        image: Input tensor with 2 or 3 spatial dims.
        predict: Maps (N, C, *tile) to (N, K, *tile); wrap it for device/autocast.
        tile: Window size (int or per axis).
        overlap: Minimum shared pixels between neighbouring windows.
        batch_size: Windows per ``predict`` call.
        blend: Blend mode, see :func:`blend_weights`.
        out_channels: K, inferred from the first batch when None.
        progress: Called as ``progress(done_windows, total_windows)`` after each batch.
        pad_mode: ``"reflect"``, ``"replicate"`` or ``"constant"``.
        edge: Border crop in pixels (int or per axis).

    Raises:
        DataError: On bad shapes or arguments.
    """
    ndim = image.dim() - 1
    if ndim not in (2, 3):
        raise DataError(f"image must be (C, H, W) or (C, D, H, W), got shape {tuple(image.shape)}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if pad_mode not in ("reflect", "replicate", "constant"):
        raise DataError(f"unknown pad_mode {pad_mode!r}")
    tiles = _per_axis(tile, ndim, "tile")
    overlaps = _per_axis(overlap, ndim, "overlap")
    edges = _per_axis(edge, ndim, "edge")
    size = tuple(image.shape[1:])
    if min(size) < 1:
        raise DataError(f"image has an empty spatial axis: shape {tuple(image.shape)}")
    pads = [max(t - s, 0) for t, s in zip(tiles, size, strict=True)]
    if any(pads):
        mode = pad_mode
        if mode == "reflect" and any(p >= s for p, s in zip(pads, size, strict=True)):
            mode = "replicate"
        flat = [v for p in reversed(pads) for v in (0, p)]
        image = F.pad(image.unsqueeze(0), flat, mode=mode).squeeze(0)
    padded = tuple(image.shape[1:])
    starts = [window_starts(n, t, o) for n, t, o in zip(padded, tiles, overlaps, strict=True)]
    for st, t, o, e in zip(starts, tiles, overlaps, edges, strict=True):
        _profile(t, blend, e)  # validates blend mode and edge before any predict call
        if len(st) > 1 and o < 2 * e:
            raise DataError(f"overlap {o} must be >= 2 * edge ({e}) to cover every pixel")
    cache: dict[tuple[tuple[bool, bool], ...], Tensor] = {}

    def window_weight(w: tuple[int, ...]) -> Tensor:
        key = tuple((s == 0, s + t == n) for s, t, n in zip(w, tiles, padded, strict=True))
        if key not in cache:
            cache[key] = blend_weights(tiles, blend, edge=edges, keep=key).to(image.device)
        return cache[key]

    windows = list(itertools.product(*starts))
    total = len(windows)
    acc = BlendAccumulator(padded, device=image.device)
    k_expected = out_channels
    with torch.no_grad():
        for b in range(0, total, batch_size):
            batch = windows[b : b + batch_size]
            slices = [tuple(slice(s, s + t) for s, t in zip(w, tiles, strict=True)) for w in batch]
            with torch.inference_mode():
                pred = predict(torch.stack([image[(slice(None), *sl)] for sl in slices]))
            if pred.dim() != ndim + 2 or pred.shape[0] != len(batch) or pred.shape[2:] != tiles:
                raise DataError(
                    f"predict returned shape {tuple(pred.shape)}, expected ({len(batch)}, K, "
                    f"{', '.join(map(str, tiles))})"
                )
            if k_expected is not None and pred.shape[1] != k_expected:
                raise DataError(f"predict returned {pred.shape[1]} channels, expected {k_expected}")
            pred = pred.to(device=image.device, dtype=torch.float32)
            for i, w in enumerate(batch):
                acc.add(pred[i], window_weight(w), w)
            if progress is not None:
                progress(min(b + batch_size, total), total)
        out = acc.result()
    return out[(slice(None), *(slice(0, s) for s in size))].contiguous()
