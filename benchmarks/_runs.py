"""Reading training runs for the table scripts: epochs trained, numbers as table cells."""

from __future__ import annotations

import csv
from pathlib import Path


def epochs(run: Path) -> str:
    """Validated epochs of a run (rows of its metrics.csv with a val_iou), or "-"."""
    path = run / "metrics.csv"
    if not path.exists():
        return "-"
    with path.open(newline="") as f:
        return str(sum(1 for r in csv.DictReader(f) if r.get("val_iou")))


def cell(value: float | None) -> str:
    """A score with three decimals, "-" for None."""
    return "-" if value is None else f"{value:.3f}"
