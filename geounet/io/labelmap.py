"""Raw label values to class ids, for every source: raster codes, vector attributes, chips.

Land-cover and crop labels come as codes (``41``, ``"Vårbyg"``) rather than class ids
``0..K-1``, with values that mean "not labelled" (a raster's nodata, LoveDA's 0, NULL
attributes). :class:`LabelSpec` maps both kinds; :func:`auto_classes` derives classes from
an attribute, grouping rare values into "other" by their share of the labelled area.
Unlabelled pixels become :data:`IGNORE`, excluded from losses and metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geounet.errors import ConfigError, DataError

IGNORE = 255  # label value of unlabelled / padded pixels (excluded from losses and metrics)


@dataclass(frozen=True)
class LabelSpec:
    """How raw label values become class ids.

    Applied in order: ``nodata`` and ``ignore_values`` (become :data:`IGNORE`),
    ``threshold`` (raw > threshold is class 1), then ``groups`` (class ``i + 1`` = the
    smallest group holding the value, so nested regions such as BraTS whole tumour /
    core / enhancing become exclusive classes) or ``label_map`` (raw value -> class id;
    values it does not list go to class ``other`` when given), else the raw values are
    class ids (for two classes any non-zero value is the foreground). Vector attribute
    values (:meth:`map_values`) may also be class ``names``.
    """

    num_classes: int
    label_map: dict[Any, int] | None = None
    groups: list[list[int]] | None = None
    ignore_values: list[Any] = field(default_factory=list)
    threshold: float | None = None
    other: int | None = None
    names: tuple[str, ...] = ()  # class names: attribute values may name classes

    def __post_init__(self) -> None:
        if self.groups is not None:
            check_groups(self.groups)
        if self.label_map is not None:
            wrong = [c for c in self.label_map.values() if not 0 <= c < self.num_classes]
            if wrong:
                raise ConfigError(
                    f"config key 'data.label_map': class ids {wrong} are not in "
                    f"0..{self.num_classes - 1} (one per data.classes entry)"
                )

    @classmethod
    def from_record(cls, classes: Sequence[str], record: Mapping[str, Any]) -> LabelSpec:
        """The spec of a label record as training stores it in a model: ``map`` (raw
        value -> class name), ``other`` (class collecting the rest), ``ignore_values``."""
        classes = list(classes)
        other = record.get("other")
        return cls(
            len(classes),
            label_map=resolve_label_map(record.get("map") or None, classes),
            ignore_values=list(record.get("ignore_values") or []),
            other=classes.index(other) if other in classes else None,
            names=tuple(classes),
        )

    def apply(self, raw: np.ndarray, where: object, nodata: float | None = None) -> np.ndarray:
        """Class ids (int64, :data:`IGNORE` for unlabelled pixels) of a raw label array.

        Args:
            raw: Raw label values.
            where: The file (named in errors).
            nodata: The file's nodata value: "not labelled", never a class.

        Raises:
            DataError: Naming ``where`` when a value maps to no class.
        """
        raw = np.asarray(raw)
        ignored = np.zeros(raw.shape, bool)
        if self.ignore_values:
            ignored |= np.isin(raw, self.ignore_values)
        if nodata is not None:
            ignored |= np.isnan(raw) if math.isnan(nodata) else raw == nodata
        if self.threshold is not None:
            out = (raw > self.threshold).astype(np.int64)
        elif self.groups is not None:
            out = np.zeros(raw.shape, dtype=np.int64)
            order = sorted(range(len(self.groups)), key=lambda i: -len(self.groups[i]))
            for i in order:  # larger groups first: nested (smaller) groups overwrite them
                out[np.isin(raw, self.groups[i])] = i + 1
            known = np.isin(raw, [0, *(v for g in self.groups for v in g)]) | ignored
            self._refuse(raw[~known], where, "data.label_groups")
        elif self.label_map is not None:
            out = np.full(raw.shape, -1, dtype=np.int64)
            for value, class_id in self.label_map.items():
                key = _key(value)
                if not isinstance(key, str):  # text keys are attribute values, not codes
                    out[raw == key] = class_id
            bad = (out < 0) & ~ignored
            if self.other is not None:
                out[bad] = self.other
            else:
                self._refuse(raw[bad], where, "data.label_map")
        else:
            out = raw.astype(np.int64) if raw.dtype.kind != "f" else _integral(raw, ignored, where)
            if self.num_classes == 2:
                out = (out > 0).astype(np.int64)
            else:
                bad = ((out < 0) | (out >= self.num_classes)) & ~ignored
                self._refuse(raw[bad], where, "data.label_map")
        out[ignored] = IGNORE
        return out

    def map_values(self, values: Sequence[Any], where: object) -> tuple[np.ndarray, int]:
        """Class ids of vector attribute values (names, codes or ids).

        NULL / NaN values are "not labelled" (:data:`IGNORE`), counted, never an error.

        Returns:
            ``(ids, n_null)``.

        Raises:
            DataError: Naming ``where`` when values map to no class.
        """
        out = np.full(len(values), -1, dtype=np.int64)
        null = np.array([_is_null(v) for v in values], dtype=bool)
        lookup = {_key(k): v for k, v in (self.label_map or {}).items()}
        unknown: list[Any] = []
        for i, value in enumerate(values):
            if null[i]:
                continue
            if _key(value) in {_key(v) for v in self.ignore_values}:
                out[i] = IGNORE
                continue
            class_id = lookup.get(_key(value))
            if class_id is None and str(value) in self.names:
                class_id = self.names.index(str(value))
            if class_id is None and self.label_map is None:
                class_id = _as_id(value, self.num_classes)
            if class_id is None:
                class_id = self.other
            if class_id is None:
                unknown.append(value)
            else:
                out[i] = class_id
        if unknown:
            shown = sorted({str(v) for v in unknown})[:5]
            key = "data.label_map" if self.label_map is not None else "data.classes"
            known = f" (classes: {list(self.names)})" if self.names else ""
            raise DataError(
                f"{where}: values {shown} ({len(unknown)} feature(s)) map to no class"
                f"{known}; add them to {key}, or set data.other to collect them"
            )
        out[null] = IGNORE
        return out, int(null.sum())

    def _refuse(self, values: np.ndarray, where: object, key: str) -> None:
        if values.size:
            shown = np.unique(values)[:5].tolist()
            raise DataError(
                f"{where}: label values {shown} map to no class; add them to {key} "
                "(or to data.ignore_values, or declare the file's nodata)"
            )


def _integral(raw: np.ndarray, ignored: np.ndarray, where: object) -> np.ndarray:
    """Float label codes (1.0, 2.0, ...) as integers; fractions are an error."""
    values = raw[~ignored]
    fractional = ~np.isfinite(values) | (values != np.round(values))
    if fractional.any():
        shown = np.unique(values[fractional])[:5].tolist()
        raise DataError(
            f"{where}: label values {shown} are not class codes; give integer codes and "
            "declare the nodata value (e.g. gdal_edit.py -a_nodata)"
        )
    out = np.zeros(raw.shape, dtype=np.int64)
    out[~ignored] = values.astype(np.int64)
    return out


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _key(value: Any) -> Any:
    """A lookup key equal for ``3``, ``3.0`` and ``"3"``; strings stripped otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | np.integer | np.floating):
        f = float(value)
        return int(f) if f.is_integer() else f
    text = str(value).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    return int(f) if f.is_integer() else text


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_id(value: Any, n: int) -> int | None:
    key = _key(value)
    if isinstance(key, int) and 0 <= key < n:
        return key
    return None


def check_groups(groups: Sequence[Sequence[int]]) -> None:
    """Refuse label groups that overlap without one containing the other."""
    sets = [set(g) for g in groups]
    for i, a in enumerate(sets):
        if not a:
            raise ConfigError(f"config key 'data.label_groups': group {i + 1} is empty")
        for b in sets[i + 1 :]:
            if a & b and not (a <= b or b <= a):
                raise ConfigError(
                    f"config key 'data.label_groups': groups {sorted(a)} and {sorted(b)} "
                    "overlap without one containing the other"
                )


def region_classes(groups: Sequence[Sequence[int]]) -> list[list[int]]:
    """For each group, the class ids whose pixels lie inside it (itself and nested ones)."""
    sets = [set(g) for g in groups]
    return [[j + 1 for j, b in enumerate(sets) if b <= a] for a in sets]


def resolve_label_map(
    label_map: Mapping[Any, Any] | None, classes: Sequence[str], key: str = "data.label_map"
) -> dict[Any, int] | None:
    """A label map whose targets may be class names as one of raw value -> class id.

    Raises:
        ConfigError: A target that is neither a class name nor a valid id.
    """
    if label_map is None:
        return None
    out: dict[Any, int] = {}
    for raw, target in label_map.items():
        if isinstance(target, str) and target in classes:
            out[raw] = classes.index(target)
        elif _is_id(target) and 0 <= target < len(classes):
            out[raw] = target
        else:
            raise ConfigError(
                f"config key '{key}.{raw}': {target!r} is not one of the classes "
                f"{list(classes)} (give a class name or an id 0..{len(classes) - 1})"
            )
    return out


@dataclass(frozen=True)
class AutoClasses:
    """Classes derived from attribute values: names, value -> name, and each value's share."""

    classes: list[str]
    mapping: dict[str, str]
    shares: dict[str, float]


def auto_classes(
    values: Sequence[Any],
    areas: Sequence[float],
    *,
    min_share: float,
    other: str = "other",
    background: bool = True,
) -> AutoClasses:
    """One class per attribute value, rare values (under ``min_share`` of the labelled
    area) grouped into ``other``.

    Args:
        values: Attribute value of each feature (NULLs are skipped).
        areas: Area of each feature (any unit).
        min_share: Share of the total area below which a value joins ``other``.
        other: Name of the class collecting rare values.
        background: Put a ``background`` class first (dense labels: pixels outside
            every feature); without it (sparse labels) the classes are the values only.

    Returns:
        Classes ordered background, values by decreasing area, ``other`` (when used).
    """
    totals: dict[str, float] = {}
    for value, area in zip(values, areas, strict=True):
        if not _is_null(value):
            name = str(_key(value))
            totals[name] = totals.get(name, 0.0) + float(area)
    if not totals:
        raise DataError("no labelled feature has a value in the class attribute")
    whole = sum(totals.values()) or 1.0
    shares = {k: v / whole for k, v in totals.items()}
    ordered = sorted(shares, key=lambda k: (-shares[k], k))
    kept = [k for k in ordered if shares[k] >= min_share]
    if not kept:
        raise ConfigError(
            f"config key 'data.min_class_share': {min_share:g} leaves no class (the largest "
            f"value covers {max(shares.values()):.3f} of the labelled area)"
        )
    if other in kept:
        raise ConfigError(
            f"config key 'data.other': {other!r} is also an attribute value; choose another name"
        )
    rare = [k for k in ordered if k not in kept]
    classes = (["background"] if background else []) + kept + ([other] if rare else [])
    mapping = {k: k for k in kept} | dict.fromkeys(rare, other)
    return AutoClasses(classes, mapping, shares)
