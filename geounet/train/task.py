"""The Lightning module that trains a :class:`~geounet.models.segmenter.Segmenter`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from geounet.errors import TrainingError
from geounet.models.segmenter import Segmenter
from geounet.train.losses import SegmentationLoss
from geounet.train.metrics import ConfusionMatrix, predicted_classes

Augment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SegmentationTask(L.LightningModule):
    """Supervised semantic segmentation with a configurable loss, optimizer and schedule.

    Args:
        model: The model to train.
        num_classes: Number of classes including background.
        loss: Maps (logits, target) to a scalar; BCE/CE + Dice by default.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9, Nesterov).
        learning_rate: Initial learning rate.
        weight_decay: Weight decay.
        schedule: ``"plateau"`` halves the learning rate when validation IoU stalls for
            5 epochs, ``"cosine"`` anneals it to 0 over ``max_epochs``, ``"none"``.
        max_epochs: Epoch count of the cosine schedule.
        augment: Applied to each training batch ``(image, mask)``; None disables it.
        ignore_index: Label value excluded from the validation metrics.
        seed: Base seed; epoch ``e`` reseeds the augmentation RNG with ``seed + e`` so that
            a resumed run continues exactly as an uninterrupted one.
        objects: The model predicts footprint / border / contact channels and masks are
            bit-packed (:mod:`geounet.data.objects`); validation scores the footprint.
        ema: Decay of an exponential moving average of the weights and batch-norm
            statistics, used for validation and saved as the model; None: off.
        compile_model: Compile the training forward (and backward) pass with
            torch.compile; validation stays eager.
    """

    def __init__(
        self,
        model: Segmenter,
        num_classes: int,
        *,
        loss: nn.Module | None = None,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        schedule: str = "plateau",
        max_epochs: int = 100,
        augment: Augment | None = None,
        ignore_index: int | None = None,
        seed: int = 0,
        objects: bool = False,
        ema: float | None = None,
        compile_model: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        # the training forward pass compiled (a function, not a submodule: the weights and
        # checkpoints keep their names)
        self.train_forward = torch.compile(model.forward) if compile_model else model.forward
        self.num_classes = num_classes
        self.loss = loss if loss is not None else SegmentationLoss()
        self.optimizer_name = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.max_epochs = max_epochs
        self.augment = augment
        self.ignore_index = ignore_index
        self.seed = seed
        self.objects = objects
        self.confusion = ConfusionMatrix(num_classes)
        self.ema = None
        if ema:
            self.ema = AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True
            )
            self.ema.requires_grad_(False)

    @property
    def inference_model(self) -> Segmenter:
        """The model to validate and save: the weight average when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the trained (raw, not averaged) model for raw images."""
        return self.model(x)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Update the weight average after each optimisation step."""
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Reseed the augmentation RNG at each epoch's first batch (exact resumption).

        At the first batch rather than at epoch start, so that whatever the data loader
        draws from the global RNG while prefetching cannot shift the augmentations.
        """
        if batch_idx == 0:  # each process of a data-parallel run draws its own
            torch.manual_seed(self.seed + self.current_epoch + 1_000_003 * self.global_rank)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimisation step on a batch of ``image`` / ``mask``."""
        image, mask = batch["image"], batch["mask"]
        if self.augment is not None:
            image, mask = self.augment(image, mask)
        loss = self.loss(self.train_forward(image), mask)
        self._check_finite(loss)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop with a :class:`TrainingError` when the loss is NaN or infinite (on any
        process of a data-parallel run, so that all of them stop together)."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise TrainingError(
                f"the training loss became {float(loss.detach()):g} at epoch "
                f"{self.current_epoch}, step {self.global_step}"
            )

    def on_validation_epoch_start(self) -> None:
        """Reset the epoch's confusion matrix."""
        self.confusion = ConfusionMatrix(self.num_classes)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accumulate the loss and the confusion matrix."""
        logits = self.inference_model(batch["image"])
        mask = batch["mask"]
        self.log("val_loss", self.loss(logits, mask), on_epoch=True, sync_dist=True)
        if self.objects:  # score the footprint channel against the footprint bit
            logits = logits[:, :1]
            keep = mask == self.ignore_index if self.ignore_index is not None else None
            mask = mask & 1 if keep is None else (mask & 1).masked_fill(keep, self.ignore_index)
        self.confusion.update(predicted_classes(logits), mask, ignore_index=self.ignore_index)

    def on_validation_epoch_end(self) -> None:
        """Log IoU (foreground for binary tasks, mean otherwise) and pixel accuracy, of
        the confusion matrix summed over all processes of a data-parallel run."""
        if self.trainer.world_size > 1:
            matrix = self.confusion.matrix.to(self.device)
            self.confusion.matrix = self.trainer.strategy.reduce(matrix, reduce_op="sum").cpu()
        self.log("val_iou", self.confusion.summary_iou(), prog_bar=True)
        self.log("val_accuracy", self.confusion.accuracy())
        if self.trainer.optimizers:
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer and its learning-rate schedule."""
        params, lr, wd = self.model.parameters(), self.learning_rate, self.weight_decay
        if self.optimizer_name == "adamw":
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        elif self.optimizer_name == "sgd":
            optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
        else:
            optimizer = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        config: dict[str, Any] = {"optimizer": optimizer}
        if self.schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=0.5, patience=5
            )
            config["lr_scheduler"] = {"scheduler": scheduler, "monitor": "val_iou"}
        elif self.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
            config["lr_scheduler"] = {"scheduler": scheduler, "interval": "epoch"}
        return config


class BestModelSaver(L.Callback):
    """Save the model bundle whenever the monitored validation metric improves.

    Its state (best value and epoch) is part of Lightning checkpoints, so a resumed run
    keeps comparing against the true best.

    Args:
        save: Called with the task and the metrics when a new best is reached.
        monitor: Metric to maximise.
        save_last: Called with the task and the metrics after every validation.
    """

    def __init__(
        self,
        save: Callable[[SegmentationTask, dict[str, float]], None],
        monitor: str,
        save_last: Callable[[SegmentationTask, dict[str, float]], None] | None = None,
    ):
        self.save = save
        self.save_last = save_last
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check the metric after each validation run."""
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics["epoch"] = trainer.current_epoch
        value = metrics.get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = value, trainer.current_epoch
            self.save(pl_module, metrics)
        if self.save_last is not None:
            self.save_last(pl_module, metrics)

    def state_dict(self) -> dict[str, Any]:
        """Best value and epoch, for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the best value and epoch from a checkpoint."""
        self.best = state_dict.get("best")
        self.best_epoch = state_dict.get("best_epoch")


class Throughput(L.Callback):
    """Log ``samples_per_s``: training windows per second of each epoch, over all
    processes of a data-parallel run (validation not counted)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.samples = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self.start, self.samples = time.perf_counter(), 0
        self.end = self.start

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        """Count the batch's windows."""
        image = batch["image"] if isinstance(batch, dict) else batch[0]
        self.samples += int(image.shape[0])
        self.end = time.perf_counter()  # validation, run before the epoch ends, not counted

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the epoch's rate."""
        seconds = self.end - self.start
        if self.samples and seconds > 0:
            rate = self.samples * trainer.world_size / seconds
            pl_module.log("samples_per_s", rate, on_epoch=True, rank_zero_only=True)
