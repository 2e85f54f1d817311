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
    """Entry point: run the CLI, printing every error as one line without a traceback.

    User errors (:class:`GeounetError`) and file-system, GDAL or OGR failures print
    ``geounet: error: ...``; anything else is a bug: one line, with the traceback saved
    to a file to report (``-vv`` prints it instead). Ctrl-C prints ``geounet:
    interrupted`` and exits with 130.
    """
    # GDAL's block cache defaults to 5 % of RAM; streaming needs little and a small cache
    # keeps peak memory independent of the scene size. Set it before GDAL starts.
    os.environ.setdefault("GDAL_CACHEMAX", "64")
    verbose = _verbosity(sys.argv[1:])
    if verbose < 2:
        _quiet_library_warnings()
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__  # click's Abort
        hint = str(cause or "")
        click.echo(f"geounet: interrupted{'; ' + hint if hint else ''}", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if verbose >= 2:
            raise
        click.echo(f"geounet: {_describe(exc)}", err=True)
        sys.exit(1)


def _verbosity(args: list[str]) -> int:
    """-v / -vv / --verbose before the command (click parses them later)."""
    count = 0
    for arg in args:
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count


def _quiet_library_warnings() -> None:
    """Python warnings (GDAL georeferencing, torch, lightning) reach the user as
    geounet's own log messages or not at all (``-vv`` shows them)."""
    import warnings

    warnings.filterwarnings("ignore")


def _describe(exc: Exception) -> str:
    """One line for an exception that reached the top: the user's error or an I/O
    failure as it is, anything else as an internal error with its saved traceback."""
    from geounet.errors import GeounetError, first_line, is_io_error

    text = str(exc)
    if "Original Traceback" in text:  # raised in a DataLoader worker: keep the last line
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1].split(": ", 1)[-1] if lines else type(exc).__name__
    if isinstance(exc, GeounetError):
        return f"error: {text.strip()}"
    if is_io_error(exc):
        return f"error: {first_line(exc)}"
    from geounet.api import save_traceback

    report = save_traceback(exc)
    where = f"; the traceback is in {report}" if report else ""
    return (
        f"internal error: {type(exc).__name__}: {first_line(exc)}{where} (rerun with -vv to "
        "see it; please report it)"
    )
