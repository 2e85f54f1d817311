"""The ``geounet`` command line: thin click commands over :mod:`geounet.api`."""

from __future__ import annotations

import logging
import os
import sys

import click

from geounet import __version__
from geounet.cli.options import verbosity_options

COMMANDS = {
    "train": ("geounet.cli.train", "train"),
    "predict": ("geounet.cli.predict", "predict"),
    "vectorize": ("geounet.cli.vectorize", "vectorize"),
    "evaluate": ("geounet.cli.evaluate", "evaluate"),
    "models": ("geounet.cli.models", "models"),
    "info": ("geounet.cli.models", "info"),
    "demo": ("geounet.cli.demo", "demo"),
}


class LazyGroup(click.Group):
    """Import a command's module only when it runs, so ``--help`` stays instant."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        import importlib

        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geounet")
@verbosity_options
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Segment geospatial imagery with U-Net models.

    \b
    geounet train CONFIG.yaml [--set key=value ...]
    geounet predict MODEL.safetensors SCENE.tif -o MASK.tif
    geounet vectorize MASK.tif -o FOOTPRINTS.geojson
    """
    verbosity = -1 if quiet else verbose
    ctx.obj = {"verbosity": verbosity}
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("geounet").setLevel(logging.INFO if verbosity >= 0 else logging.ERROR)
    if verbosity < 2:
        for noisy in (
            "lightning",
            "lightning.pytorch",
            "lightning.fabric",
            "rasterio",
            "fiona",
            "torch.utils.cpp_extension",  # "no CUDA runtime" when compiling on CPUs
        ):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    """Entry point: run the CLI, printing user errors as one line without a traceback."""
    from geounet.errors import GeounetError

    # GDAL's block cache defaults to 5 % of RAM; streaming needs little and a small cache
    # keeps peak memory independent of the scene size. Set it before GDAL starts.
    os.environ.setdefault("GDAL_CACHEMAX", "64")
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("geounet: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except GeounetError as exc:
        click.echo(f"geounet: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("geounet: interrupted", err=True)
        sys.exit(130)
