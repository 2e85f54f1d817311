"""Compiled forward passes: torch.compile (inductor, frozen weights) when it repays itself.

:class:`AdaptiveForward` runs a model's forward pass eagerly, times it, and compiles it
once the windows still to come would take long enough to repay the compilation
(``auto``), or at once (``on``). Compiled code is cached on disk between runs (see
:func:`cache_root`), so a second run of the same model and window size compiles in a
fraction of the time. When compilation fails (no C++ compiler, an unsupported operator)
or the compiled pass turns out slower than the eager one, prediction goes on eagerly
after a one-line notice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable

import torch
from torch import Tensor

from geounet.errors import GeounetError
from geounet.runtime import cache_root, use_compile_cache

log = logging.getLogger(__name__)

COMPILE_MODES = ("auto", "on", "off")
# eager seconds still to run for "auto" to compile: compiling takes about 10 s when the
# cache holds the model's code and 30-60 s when it does not (2-core CPU), and saves 5-30 %
WARM_PAYBACK_S = 120.0
COLD_PAYBACK_S = 360.0
_TIMED_CALLS = 2  # eager calls timed (after the first, which warms up) before deciding


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`COMPILE_MODES`.

    Raises:
        GeounetError: Another value.
    """
    if mode not in COMPILE_MODES:
        raise GeounetError(f"unknown compile mode {mode!r}; use one of {', '.join(COMPILE_MODES)}")
    return mode


class AdaptiveForward:
    """A forward pass (batch -> tensor) that compiles itself when it pays.

    Args:
        forward: The eager pass; always called with batches of ``batch`` or fewer items
            of one shape (shorter batches are padded for the compiled pass).
        mode: ``auto``, ``on`` or ``off``.
        total: Items (windows) the caller will pass in all, for the ``auto`` estimate.
        batch: The largest batch.
        key: What identifies the compiled code (model, window shape, dtype, device):
            a compilation of the same key is remembered as cached.
    """

    def __init__(
        self,
        forward: Callable[[Tensor], Tensor],
        *,
        mode: str = "auto",
        total: int = 0,
        batch: int = 1,
        key: str = "",
    ) -> None:
        self.eager = forward
        self.mode = check_mode(mode)
        self.total, self.batch = total, batch
        self.marker = cache_root() / "compiled" / f"{hashlib.sha256(key.encode()).hexdigest()}"
        self.compiled: Callable[[Tensor], Tensor] | None = None
        self.done = 0  # items passed so far
        self.calls = 0
        self.eager_s = 0.0  # seconds of timed eager calls
        self.eager_items = 0
        self.compiled_s = 0.0
        self.compiled_items = 0
        self.state = "off" if mode == "off" else "eager"  # eager, compiled, off

    @property
    def is_compiled(self) -> bool:
        """Whether the compiled pass is in use."""
        return self.state == "compiled"

    def __call__(self, x: Tensor) -> Tensor:
        """The forward pass of a batch."""
        n = x.shape[0]
        if self.state == "eager" and self._should_compile():
            self._compile()
        if self.state == "compiled":
            out = self._run_compiled(x)
            if out is not None:
                self.done += n
                return out
        start = time.perf_counter()
        out = self.eager(x)
        if self.calls > 0 and n == self.batch:
            self.eager_s += time.perf_counter() - start
            self.eager_items += n
        self.calls += 1
        self.done += n
        return out

    def _should_compile(self) -> bool:
        if self.mode == "on":
            return True
        if self.calls <= _TIMED_CALLS or not self.eager_items:
            return False
        remaining = (self.total - self.done) * self.eager_s / self.eager_items
        payback = WARM_PAYBACK_S if self.marker.exists() else COLD_PAYBACK_S
        if remaining < payback:
            self.state = "off"  # decided: not worth it for this scene
            return False
        log.info(
            "compiling the model (about %.0f s of windows left; compiled code is cached in %s)",
            remaining,
            cache_root(),
        )
        return True

    def _compile(self) -> None:
        use_compile_cache()
        try:
            self.compiled = torch.compile(self.eager, dynamic=False, options={"freezing": True})
        except Exception as exc:  # torch.compile itself refuses (platform, Python version)
            self._give_up(exc)
            return
        self.state = "compiled"
        self.first = True

    def _run_compiled(self, x: Tensor) -> Tensor | None:
        """The compiled pass of ``x`` (padded to the full batch), or None after falling
        back to eager."""
        n = x.shape[0]
        if n < self.batch:
            pad = x[-1:].expand(self.batch - n, *x.shape[1:])
            x = torch.cat([x, pad])
        start = time.perf_counter()
        try:
            out = self.compiled(x)[:n]
        except Exception as exc:  # compilation happens at the first call
            self._give_up(exc)
            return None
        seconds = time.perf_counter() - start
        if self.first:
            self.first = False
            self._remember()
            return out
        self.compiled_s += seconds
        self.compiled_items += n
        if self.compiled_items >= _TIMED_CALLS * self.batch and self.eager_items:
            eager = self.eager_s / self.eager_items
            compiled = self.compiled_s / self.compiled_items
            if compiled > 1.02 * eager:
                log.info(
                    "the compiled model is slower here (%.3g s vs %.3g s a window); "
                    "predicting eagerly",
                    compiled,
                    eager,
                )
                self.state = "off"
            self.eager_items = 0  # compare once
        return out

    def _give_up(self, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        log.warning(
            "compiling the model failed (%s: %s); predicting eagerly", type(exc).__name__, first
        )
        self.state = "off"
        self.compiled = None

    def _remember(self) -> None:
        """Note that this key's compiled code is in the cache (for the next run's
        ``auto`` estimate)."""
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(json.dumps({"torch": torch.__version__}))
        except OSError:
            pass


def forward_key(meta_json: str, shape: tuple[int, ...], dtype: object, device: str) -> str:
    """The :class:`AdaptiveForward` key of a model (its metadata), an input batch shape,
    an autocast dtype and a device."""
    return json.dumps([meta_json, list(shape), str(dtype), device, torch.__version__])
