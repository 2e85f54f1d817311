"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def verbosity_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-v/--verbose`` (repeatable) and ``-q/--quiet``."""
    f = click.option("-q", "--quiet", is_flag=True, help="Print errors only.")(f)
    return click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")(f)


device_option = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."
)
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="auto: bf16 on GPUs and CPUs with native bf16, else fp32.",
)


def progress_enabled(ctx: click.Context) -> bool:
    """Progress bars unless ``-q`` was given."""
    return (ctx.find_root().obj or {}).get("verbosity", 0) >= 0
