"""``geounet train``: train a model from a YAML config, or resume an interrupted run."""

from __future__ import annotations

import click

from geounet.cli.options import progress_enabled


class TrainCommand(click.Command):
    """``train`` takes CONFIG, or --resume alone: say so in the usage line."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "CONFIG [--set KEY=VALUE]...")
        formatter.write_usage(ctx.command_path, "--resume RUN_DIR", prefix="   or: ")


@click.command(cls=TrainCommand)
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set train.max_epochs=5 (repeatable).",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False),
    metavar="RUN_DIR",
    default=None,
    help="Continue the interrupted run in this directory exactly where it stopped.",
)
@click.pass_context
def train(
    ctx: click.Context, config: str | None, overrides: tuple[str, ...], resume: str | None
) -> None:
    """Train on the imagery and labels named in CONFIG; write a run directory."""
    from geounet.api import resume as resume_training
    from geounet.api import train as run_training

    if resume is not None:
        if config or overrides:
            raise click.UsageError("--resume takes the run's own config; give no CONFIG or --set")
        result = resume_training(resume, progress=progress_enabled(ctx))
    elif config is None:
        raise click.UsageError("give a CONFIG file (or --resume RUN_DIR)")
    else:
        result = run_training(config, overrides, progress=progress_enabled(ctx))
    if result.global_rank > 0:  # data-parallel run: rank 0 reports
        return
    click.echo(f"metrics: {result.metrics_path}")
    click.echo(result.summary())
