"""Training progress that reads well in a log file, and a warning for runs too short.

On a terminal Lightning draws its progress bars. Written to a file or a pipe, bar
redraws (carriage returns, cursor moves) are noise, so :class:`LogLines` prints plain
lines instead: one per epoch, and one a minute inside a long epoch.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, TextIO

import lightning as L

log = logging.getLogger(__name__)

# Fewer optimisation steps or epochs than these: the model cannot be expected to be useful.
MIN_STEPS = 50
MIN_EPOCHS = 3


def clock(seconds: float) -> str:
    """``1:05:09`` / ``5:09``: a duration as a clock."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LogLines(L.pytorch.callbacks.ProgressBar):
    """Progress as plain lines for logs: each validated epoch, and a line every
    ``every`` seconds inside a long epoch (no redraws, no escape codes).

    Args:
        every: Seconds between lines inside an epoch.
        stream: Where to write (default: standard error).
    """

    def __init__(self, every: float = 60.0, stream: TextIO | None = None) -> None:
        super().__init__()
        self.every = every
        self.stream = stream
        self._enabled = True
        self._start = self._last = 0.0
        self._best: float | None = None
        self._loss_sum: Any = 0.0
        self._loss_n = 0

    def disable(self) -> None:
        """Print nothing (the other processes of a data-parallel run)."""
        self._enabled = False

    def enable(self) -> None:
        """Print the lines."""
        self._enabled = True

    def _print(self, text: str) -> None:
        if self._enabled:
            print(text, file=self.stream or sys.stderr, flush=True)

    def _elapsed(self, trainer: L.Trainer) -> str:
        timer = _timer(trainer)
        budget = _time_budget(trainer)
        if timer is not None and budget:  # counts the time before a resume too
            return f"{clock(timer.time_elapsed())} of {clock(budget)}"
        return clock(time.perf_counter() - self._start)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the clock."""
        self._start = self._last = time.perf_counter()
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        budget = _time_budget(trainer)
        limit = f", at most {clock(budget)}" if budget else ""
        self._print(f"training: up to {epochs} epochs of {self.total_train_batches} steps{limit}")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Reset the epoch's mean loss."""
        self._loss_sum, self._loss_n = 0.0, 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        """Add to the epoch's mean loss; a line when ``every`` seconds have passed."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:  # summed on the device: no synchronisation per step
            self._loss_sum, self._loss_n = self._loss_sum + loss.detach(), self._loss_n + 1
        now = time.perf_counter()
        if now - self._last < self.every:
            return
        self._last = now
        self._print(
            f"epoch {trainer.current_epoch}: step {i + 1}/{self.total_train_batches}"
            f"{self._mean_loss()}  [{self._elapsed(trainer)}]"
        )

    def _mean_loss(self) -> str:
        if not self._loss_n:
            return ""
        mean = float(self._loss_sum) / self._loss_n
        return f", loss {mean:.4f}" if math.isfinite(mean) else ""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """One line per epoch: losses, validation IoU and the best so far."""
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch}{self._mean_loss()}"]
        for key, name in (("val_loss", "val loss"), ("val_iou", "val IoU")):
            value = metrics.get(key)
            if value is not None and math.isfinite(float(value)):
                parts.append(f"{name} {float(value):.4f}")
        iou = metrics.get("val_iou")
        if iou is not None:
            best = [float(iou), self._best if self._best is not None else -1.0]
            stopping = trainer.early_stopping_callback  # its best survives a resume
            if stopping is not None and math.isfinite(float(stopping.best_score)):
                best.append(float(stopping.best_score))
            self._best = max(best)
            parts[-1] += f" (best {self._best:.4f})"
        self._print(", ".join(parts) + f"  [{self._elapsed(trainer)}]")
        self._last = time.perf_counter()


def _timer(trainer: L.Trainer) -> L.pytorch.callbacks.Timer | None:
    """Lightning's timer of ``train.max_minutes``, if the run has one."""
    return next((c for c in trainer.callbacks if isinstance(c, L.pytorch.callbacks.Timer)), None)


def _time_budget(trainer: L.Trainer) -> float | None:
    """The run's time limit in seconds (``train.max_minutes``), if any."""
    timer = _timer(trainer)
    remaining = None if timer is None else timer.time_remaining()
    return None if remaining is None else remaining + timer.time_elapsed()


class ShortRunWarning(L.Callback):
    """Warn after the first epoch when the run, at that speed and within its limits, will
    get too few steps or epochs to give a useful model; say what to change."""

    def __init__(self) -> None:
        self._start = 0.0
        self.judged = self.warned = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the first epoch's clock."""
        if not self._start:  # the first epoch this process trains (resumed runs too)
            self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Project the run's steps and epochs from the first epoch's time."""
        if self.judged or not trainer.is_global_zero:
            return
        self.judged = True  # once, after the first epoch of this process
        seconds = max(time.perf_counter() - self._start, 1e-6)
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 10**9
        budget = _time_budget(trainer)
        done = trainer.current_epoch + 1
        if budget:
            epochs = min(epochs, done + int(max(budget - seconds * done, 0) // seconds))
        steps = epochs * max(trainer.num_training_batches, 1) // trainer.accumulate_grad_batches
        if steps >= MIN_STEPS and epochs >= MIN_EPOCHS:
            return
        timed = budget and epochs < (trainer.max_epochs or 0)
        advice = (
            "raise train.max_minutes, or train on a GPU"
            if timed
            else "raise train.max_epochs (or train.samples_per_epoch)"
        )
        self.warned = True
        log.warning(
            "at this speed the run gets about %d training steps in %d epoch(s): too few for "
            "a useful model (aim for %d+ steps, %d+ epochs); %s",
            steps,
            epochs,
            MIN_STEPS,
            MIN_EPOCHS,
            advice,
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Warn about a run that ended short (early stopping, a stop) if not warned yet."""
        steps, epochs = trainer.global_step, trainer.current_epoch
        if self.warned or not trainer.is_global_zero or trainer.interrupted:
            return
        if steps >= MIN_STEPS and epochs >= MIN_EPOCHS:
            return
        self.warned = True
        log.warning(
            "the run stopped after %d training steps in %d epoch(s): too few for a useful "
            "model (aim for %d+ steps, %d+ epochs); if validation IoU stopped improving "
            "this early, raise train.patience or train.samples_per_epoch",
            steps,
            epochs,
            MIN_STEPS,
            MIN_EPOCHS,
        )
