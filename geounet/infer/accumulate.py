"""The one place where overlapping window predictions are blended.

:class:`BlendAccumulator` keeps the weighted sum of window predictions and the sum of
their weights over a region; each pixel's result is ``sum(w * pred) / sum(w)``. It serves
whole 2D images and 3D volumes (:func:`geounet.infer.sliding.sliding_window_predict`)
and streamed scenes, where it holds only the band of rows that windows still touch and
hands finished rows out with :meth:`BlendAccumulator.pop_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from geounet.errors import DataError


class BlendAccumulator:
    """Weighted sums of predictions (K, *shape) and of weights (*shape).

    Args:
        shape: Spatial shape of the region (the band height for streamed scenes).
        device: Where the sums live.
    """

    def __init__(self, shape: Sequence[int], device: torch.device | str | None = None) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.device = device
        self.values: Tensor | None = None  # allocated at the first add (K is known then)
        self.weights = torch.zeros(self.shape, dtype=torch.float32, device=device)

    def add(self, pred: Tensor, weight: Tensor, starts: Sequence[int]) -> None:
        """Add one window's prediction (K, *tile) with its weights (*tile) at ``starts``."""
        if self.values is None:
            k = pred.shape[0]
            self.values = torch.zeros((k, *self.shape), dtype=torch.float32, device=self.device)
        if pred.shape[0] != self.values.shape[0]:
            raise DataError(
                f"predict returned {pred.shape[0]} channels, expected {self.values.shape[0]}"
            )
        region = tuple(slice(s, s + n) for s, n in zip(starts, weight.shape, strict=True))
        self.values[(slice(None), *region)] += pred.to(self.values) * weight
        self.weights[region] += weight

    def result(self) -> Tensor:
        """The blended prediction of the whole region (K, *shape), divided in place (no
        second copy): call it once, after the last :meth:`add`."""
        if self.values is None:
            raise DataError("no window was added")
        if not bool((self.weights > 0).all()):
            raise RuntimeError("BlendAccumulator: some pixels got zero total weight (bug)")
        return self.values.div_(self.weights)

    def pop_rows(self, n: int) -> Tensor:
        """The blended first ``n`` rows (K, n, ...); the rows below move up in place and
        the freed rows at the bottom start again from zero (no growing allocations)."""
        if self.values is None:
            raise DataError("no window was added")
        out = self.values[:, :n] / self.weights[:n]
        rest = self.shape[0] - n
        self.values[:, :rest] = self.values[:, n:].clone()
        self.values[:, rest:] = 0
        self.weights[:rest] = self.weights[n:].clone()
        self.weights[rest:] = 0
        return out
