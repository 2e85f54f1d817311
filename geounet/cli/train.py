"""``geounet train``: train a model from a YAML config."""

from __future__ import annotations

import click

from geounet.cli.options import progress_enabled


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set train.max_epochs=5 (repeatable).",
)
@click.pass_context
def train(ctx: click.Context, config: str, overrides: tuple[str, ...]) -> None:
    """Train on the imagery and labels named in CONFIG; write a run directory."""
    from geounet.api import train as run_training

    result = run_training(config, overrides, progress=progress_enabled(ctx))
    click.echo(
        f"best validation IoU {result.best_val_iou:.4f} (epoch {result.best_epoch}) after "
        f"{result.epochs} epochs in {result.seconds / 60:.1f} min"
    )
    click.echo(f"model:   {result.model_path}")
    click.echo(f"metrics: {result.metrics_path}")
