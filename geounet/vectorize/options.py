"""What to vectorize and how to clean it: one options object shared by API and CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from geounet.errors import ConfigError

ClassRef = int | str


@dataclass(frozen=True)
class VectorizeOptions:
    """Options of :func:`geounet.vectorize.vectorize_raster`.

    Lengths are in metres and areas in m² whatever the raster's CRS; classes are given by
    id or by name.

    Attributes:
        classes: Classes to vectorize (default: every class except background 0 and nodata).
        connectivity: 4 or 8: whether pixels touching only at a corner join one polygon.
        min_area_m2: Drop polygons smaller than this.
        fill_holes_m2: Fill holes smaller than this (polygons of other classes inside a
            filled hole are dropped so that nothing overlaps).
        simplify_m: Simplification tolerance (largest allowed shift of the outline). With
            one class it is Douglas-Peucker per polygon; with several, shared boundaries
            are simplified once (GEOS coverage simplification) so no gaps open.
        regularize: ``True`` or a list of classes: building outlines with right angles,
            aligned to their dominant direction, rectangles where close.
        smooth: ``True`` or a list of classes: rounded outlines (Chaikin corner cutting)
            for natural classes such as fields, water or forest.
        window: Side, in pixels, of the windows read at a time (memory vs overhead).
        lines: Write a line network (roads) instead of polygons: the mask's centre lines
            as LineStrings with ``length_m``. ``None``: lines for class maps of road
            models (tagged ``GEOUNET_LINES``), polygons otherwise.
        spur_m: Lines: dead-end branches shorter than this are pruned (``None``: the
            road model's setting, else 10 m).
        gap_m: Lines: breaks up to this long are bridged (``None``: as ``spur_m``).
        min_length_m: Lines: isolated pieces shorter than this are dropped (``None``: as
            ``spur_m``).
    """

    classes: Sequence[ClassRef] | None = None
    connectivity: int = 4
    min_area_m2: float = 0.0
    fill_holes_m2: float = 0.0
    simplify_m: float = 0.0
    regularize: bool | Sequence[ClassRef] = False
    smooth: bool | Sequence[ClassRef] = False
    window: int = 2048
    lines: bool | None = None
    spur_m: float | None = None
    gap_m: float | None = None
    min_length_m: float | None = None

    def __post_init__(self) -> None:
        if self.connectivity not in (4, 8):
            raise ConfigError(f"connectivity must be 4 or 8, got {self.connectivity}")
        for name in ("min_area_m2", "fill_holes_m2", "simplify_m"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        for name in ("spur_m", "gap_m", "min_length_m"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        if not isinstance(self.window, int) or self.window < 64:
            raise ConfigError(f"window must be an integer >= 64 pixels, got {self.window}")

    def replace(self, **changes: object) -> VectorizeOptions:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def resolve_classes(
    refs: Sequence[ClassRef] | None, names: Sequence[str] | None, what: str = "classes"
) -> list[int] | None:
    """Class ids for ``refs`` given by id or name (``None`` stays ``None``).

    Raises:
        ConfigError: A name that is not one of ``names``.
    """
    if refs is None:
        return None
    names = list(names or [])
    ids = []
    for ref in refs:
        if isinstance(ref, str) and not ref.strip().lstrip("-").isdigit():
            if ref not in names:
                known = ", ".join(f"{i}={n}" for i, n in enumerate(names)) or "none recorded"
                raise ConfigError(f"{what}: unknown class {ref!r}; known classes: {known}")
            ids.append(names.index(ref))
        else:
            ids.append(int(ref))
    return sorted(set(ids))


def selected(
    choice: bool | Sequence[ClassRef], names: Sequence[str] | None, what: str
) -> set[int] | bool:
    """``True`` (all classes), ``False`` (none) or the set of class ids of ``choice``."""
    if isinstance(choice, bool):
        return choice
    return set(resolve_classes(choice, names, what) or [])
