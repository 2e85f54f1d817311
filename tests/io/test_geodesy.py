"""Tests for geounet.io.geodesy: geodesic measures and metric frames."""

from __future__ import annotations

import pytest
import shapely
from affine import Affine
from pyproj import CRS, Transformer

from geounet.io.geodesy import geodesic_area_perimeter, metric_crs, pixel_size_m


def test_square_in_utm_has_its_area_and_perimeter() -> None:
    square = shapely.box(500_000, 0, 500_100, 100)  # on the central meridian, equator
    area, perimeter = geodesic_area_perimeter([square], "EPSG:32633")
    # UTM scale factor 0.9996 on the central meridian: ground = grid / k0.
    assert area[0] == pytest.approx(100 * 100 / 0.9996**2, rel=1e-4)
    assert perimeter[0] == pytest.approx(400 / 0.9996, rel=1e-4)
    holed = square.difference(shapely.box(500_040, 40, 500_060, 60))
    area, perimeter = geodesic_area_perimeter([holed], "EPSG:32633")
    assert perimeter[0] == pytest.approx(480 / 0.9996, rel=1e-4)  # holes count


@pytest.mark.parametrize(
    ("crs", "lonlat", "expected"),
    [
        ("EPSG:32633", (15.0, 45.0), None),  # UTM: true metres
        ("EPSG:3857", (32.6, 0.3), None),  # Web Mercator at the equator (Kampala)
        ("EPSG:3857", (33.0, 60.0), 32636),  # Web Mercator at 60N: scale 2
        ("EPSG:4326", (-115.23, 36.14), 32611),  # degrees: Las Vegas UTM 11N
        ("EPSG:4326", (151.2, -33.9), 32756),  # southern hemisphere
    ],
)
def test_metric_crs(crs: str, lonlat: tuple[float, float], expected: int | None) -> None:
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(*lonlat)
    got = metric_crs(crs, (x - 10, y - 10, x + 10, y + 10))
    if expected is None:
        assert got is None
    else:
        assert CRS(got).to_epsg() == expected


def test_polar_scene_gets_a_local_projection() -> None:
    got = metric_crs("EPSG:4326", (10.0, 89.5, 10.1, 89.6))
    assert got is not None and got.is_projected


def test_pixel_size_in_metres_for_degrees() -> None:
    transform = Affine(2.7e-6, 0, -115.2338, 0, -2.7e-6, 36.1423)
    bounds = (-115.2338, 36.1388, -115.2303, 36.1423)
    size = pixel_size_m("EPSG:4326", transform, bounds)
    # 2.7e-6 deg: ~0.30 m of latitude, ~0.24 m of longitude at 36N.
    assert 0.25 < size < 0.29
