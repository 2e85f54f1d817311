"""Tests for geounet.vectorize.options: checked settings and classes by name."""

from __future__ import annotations

import pytest

from geounet.errors import ConfigError
from geounet.vectorize.options import VectorizeOptions, resolve_classes, selected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("connectivity", 6, "connectivity must be 4 or 8"),
        ("min_area_m2", -1.0, "min_area_m2 must be a number >= 0"),
        ("simplify_m", float("nan"), "simplify_m must be a number >= 0"),
        ("window", 10, "window must be an integer >= 64"),
    ],
)
def test_bad_settings_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VectorizeOptions(**{field: value})
    with pytest.raises(ConfigError, match=message):
        VectorizeOptions().replace(**{field: value})


def test_classes_by_id_or_name() -> None:
    names = ["background", "building", "road"]
    assert resolve_classes(None, names) is None
    assert resolve_classes(["road", 1, "1"], names) == [1, 2]
    with pytest.raises(ConfigError, match=r"unknown class 'tree'.*0=background, 1=building"):
        resolve_classes(["tree"], names)
    with pytest.raises(ConfigError, match="none recorded"):
        resolve_classes(["tree"], None)
    assert selected(True, names, "x") is True
    assert selected(["road"], names, "x") == {2}
