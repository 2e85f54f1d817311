"""Options shared by several commands, defined once."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

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


class PlainProgress:
    """Progress for a log file or a pipe: a plain line every ``every`` seconds and one
    when done, instead of a redrawn bar (tqdm's interface: ``n``, ``total``,
    ``update``, ``close``).

    Args:
        desc: What is counted, e.g. the scene's name.
        unit: Unit of the count (``win``, ``px``).
        every: Seconds between lines.
        stream: Where to write (default: standard error).
    """

    def __init__(
        self, desc: str, unit: str = "it", *, every: float = 30.0, stream: TextIO | None = None
    ) -> None:
        self.desc, self.unit, self.every, self.stream = desc, unit, every, stream
        self.n, self.total = 0, None
        self._start = self._last = time.perf_counter()
        self._closed = False

    def _line(self, text: str) -> None:
        click.echo(f"{self.desc}: {text}", err=True, file=self.stream)

    def update(self, k: int = 1) -> None:
        """Count ``k`` more; print a line when ``every`` seconds have passed."""
        self.n += k
        now = time.perf_counter()
        if now - self._last >= self.every and self.n:
            self._last = now
            share = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
            of = f"/{self.total:,}" if self.total else ""
            self._line(f"{self.n:,}{of} {self.unit}{share}, {_clock(now - self._start)}")

    def close(self) -> None:
        """The final line: how much in how long."""
        if not self._closed and self.n:
            self._line(
                f"done, {self.n:,} {self.unit} in {_clock(time.perf_counter() - self._start)}"
            )
        self._closed = True


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def progress_bar(ctx: click.Context, desc: str, unit: str = "it", **tqdm_args: Any) -> Any:
    """A tqdm bar on a terminal; plain lines (:class:`PlainProgress`) in a log or a pipe;
    nothing with ``-q``."""
    from tqdm import tqdm

    enabled = progress_enabled(ctx)
    if enabled and not sys.stderr.isatty():
        return PlainProgress(desc, unit)
    return tqdm(desc=desc, unit=unit, disable=not enabled, **tqdm_args)


def _class_list(value: str | None) -> list[int | str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return [int(v) if v.lstrip("-").isdigit() else v for v in items]


def vector_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Polygon and line-network options shared by ``vectorize`` and ``predict --vector``."""
    decorators = [
        click.option(
            "--classes",
            default=None,
            help="Classes to vectorize, ids or names, comma-separated [all but background].",
        ),
        click.option("--min-area", type=float, default=0.0, help="Drop polygons below this, m2."),
        click.option("--fill-holes", type=float, default=0.0, help="Fill holes below this, m2."),
        click.option(
            "--simplify", type=float, default=0.0, help="Simplify: largest outline shift, m."
        ),
        click.option(
            "--regularize",
            is_flag=False,
            flag_value="all",
            default=None,
            metavar="[CLASSES]",
            help="Building outlines: right angles, rectangles (all classes, or those listed).",
        ),
        click.option(
            "--smooth",
            is_flag=False,
            flag_value="all",
            default=None,
            metavar="[CLASSES]",
            help="Rounded outlines for natural classes (all classes, or those listed).",
        ),
        click.option(
            "--connectivity",
            type=click.Choice(["4", "8"]),
            default="4",
            show_default=True,
            help="8: pixels touching at a corner join one polygon.",
        ),
        click.option(
            "--lines/--polygons",
            "lines",
            default=None,
            help="Road networks: centre lines with length_m instead of polygons "
            "[lines for road models' masks, polygons otherwise].",
        ),
        click.option(
            "--spur",
            type=float,
            default=None,
            help="Lines: prune dead ends shorter than this, m [the road model's; else 10].",
        ),
        click.option(
            "--gap",
            type=float,
            default=None,
            help="Lines: bridge breaks up to this, m [the model's; else --spur].",
        ),
        click.option(
            "--min-length",
            type=float,
            default=None,
            help="Lines: drop pieces shorter in total, m [the model's; else --spur].",
        ),
        click.option(
            "--crs",
            "vector_crs",
            default=None,
            help="CRS of .gpkg/.fgb/.parquet/.shp output, e.g. EPSG:3857 [the raster's].",
        ),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def make_vectorize_options(
    classes: str | None,
    min_area: float,
    fill_holes: float,
    simplify: float,
    regularize: str | None,
    smooth: str | None,
    connectivity: str,
    lines: bool | None = None,
    spur: float | None = None,
    gap: float | None = None,
    min_length: float | None = None,
    window: int = 2048,
) -> Any:
    """A :class:`~geounet.vectorize.VectorizeOptions` from the shared CLI options."""
    from geounet.api import VectorizeOptions

    def choice(value: str | None) -> bool | list[int | str]:
        if value is None:
            return False
        return True if value == "all" else _class_list(value) or False

    return VectorizeOptions(
        classes=_class_list(classes),
        connectivity=int(connectivity),
        min_area_m2=min_area,
        fill_holes_m2=fill_holes,
        simplify_m=simplify,
        regularize=choice(regularize),
        smooth=choice(smooth),
        window=window,
        lines=lines,
        spur_m=spur,
        gap_m=gap,
        min_length_m=min_length,
    )


def describe_features(gdf: Any) -> str:
    """``"12 polygons"``, or ``"34 lines, 5.21 km"`` for a road network."""
    if "length_m" in gdf.columns:
        return f"{len(gdf)} lines, {gdf['length_m'].sum() / 1000:.2f} km"
    return f"{len(gdf)} polygons"
