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
