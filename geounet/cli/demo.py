"""``geounet demo``: the whole pipeline on generated sample scenes."""

from __future__ import annotations

import click

from geounet.cli.options import progress_enabled


@click.command()
@click.option(
    "-o", "--output", default="demo_output", show_default=True, type=click.Path(file_okay=False)
)
@click.option("--minutes", default=2.5, show_default=True, help="Training time budget.")
@click.pass_context
def demo(ctx: click.Context, output: str, minutes: float) -> None:
    """Generate a sample scene, train a U-Net, predict a second scene, vectorize it."""
    from geounet.api import demo as run_demo

    run_demo(output, minutes=minutes, progress=progress_enabled(ctx), echo=click.echo)
