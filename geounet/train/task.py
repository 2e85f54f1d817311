"""The Lightning module that trains a :class:`~geounet.models.segmenter.Segmenter`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from geounet.data.augment import dihedral, photometric
from geounet.models.segmenter import Segmenter
from geounet.train.losses import SegmentationLoss
from geounet.train.metrics import ConfusionMatrix, predicted_classes


class SegmentationTask(L.LightningModule):
    """Supervised semantic segmentation with Adam, a combined loss and IoU tracking.

    Args:
        model: The model to train.
        num_classes: Number of classes including background.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        augment: Random flips, 90-degree rotations and photometric jitter of training
            batches.
        schedule: ``"plateau"`` halves the learning rate when validation IoU stalls for
            5 epochs; ``"none"`` keeps it constant.
    """

    def __init__(
        self,
        model: Segmenter,
        num_classes: int,
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        augment: bool = True,
        schedule: str = "plateau",
    ) -> None:
        super().__init__()
        self.augment = augment
        self.schedule = schedule
        self.model = model
        self.num_classes = num_classes
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.loss = SegmentationLoss()
        self.confusion = ConfusionMatrix(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for raw images."""
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimisation step on a batch of ``image`` / ``mask``."""
        image, mask = batch["image"], batch["mask"]
        if self.augment:
            image, mask = dihedral(image, mask)
            image = photometric(image)
        loss = self.loss(self(image), mask)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the epoch's confusion matrix."""
        self.confusion = ConfusionMatrix(self.num_classes)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accumulate the loss and the confusion matrix."""
        logits = self(batch["image"])
        self.log("val_loss", self.loss(logits, batch["mask"]), on_epoch=True)
        self.confusion.update(predicted_classes(logits), batch["mask"])

    def on_validation_epoch_end(self) -> None:
        """Log IoU (foreground for binary tasks, mean otherwise) and pixel accuracy."""
        self.log("val_iou", self.confusion.summary_iou(), prog_bar=True)
        self.log("val_accuracy", self.confusion.accuracy())

    def configure_optimizers(self) -> dict[str, Any]:
        """Adam over all parameters, with the learning-rate schedule."""
        optimizer = torch.optim.Adam(
            self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        config: dict[str, Any] = {"optimizer": optimizer}
        if self.schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=0.5, patience=5
            )
            config["lr_scheduler"] = {"scheduler": scheduler, "monitor": "val_iou"}
        return config


class BestModelSaver(L.Callback):
    """Save the model bundle whenever the monitored validation metric improves.

    Args:
        save: Called with the task and the metrics when a new best is reached.
        monitor: Metric to maximise.
    """

    def __init__(self, save: Callable[[SegmentationTask, dict[str, float]], None], monitor: str):
        self.save = save
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check the metric after each validation run."""
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        value = metrics.get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = value, trainer.current_epoch
            metrics["epoch"] = trainer.current_epoch
            self.save(pl_module, metrics)
