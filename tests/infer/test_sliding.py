"""Tests for geounet.infer.sliding (tensor-level sliding-window inference)."""

import itertools
import math

import pytest
import torch
from torch import nn

from geounet.errors import DataError, GeounetError
from geounet.infer import sliding
from geounet.infer.sliding import blend_weights, sliding_window_predict, window_starts

MODES = ["constant", "cosine", "gaussian"]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


# --------------------------------------------------------------------------- window_starts


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "expected"),
    [
        (10, 4, 0, [0, 4, 6]),  # ragged end shifted back
        (8, 4, 0, [0, 4]),  # exact end
        (10, 4, 2, [0, 2, 4, 6]),
        (11, 4, 1, [0, 3, 6, 7]),
        (4, 4, 0, [0]),
        (3, 4, 2, [0]),  # smaller than tile
        (1, 1, 0, [0]),
        (5, 1, 0, [0, 1, 2, 3, 4]),
    ],
)
def test_window_starts_examples(length: int, tile: int, overlap: int, expected: list[int]) -> None:
    assert window_starts(length, tile, overlap) == expected


def test_window_starts_properties() -> None:
    for length in range(1, 40):
        for tile in range(1, 12):
            for overlap in range(tile):
                starts = window_starts(length, tile, overlap)
                assert starts[0] == 0
                assert all(b > a for a, b in itertools.pairwise(starts))
                if length <= tile:
                    assert starts == [0]
                    continue
                assert starts[-1] + tile == length  # no window beyond the edge
                for a, b in itertools.pairwise(starts):
                    assert a + tile - b >= overlap  # at least `overlap` shared pixels
                covered = set()
                for s in starts:
                    covered.update(range(s, s + tile))
                assert covered == set(range(length))


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (4, -1), (4, 4), (4, 5)])
def test_window_starts_invalid(tile: int, overlap: int) -> None:
    with pytest.raises(DataError):
        window_starts(10, tile, overlap)
    with pytest.raises(ValueError):
        window_starts(10, tile, overlap)


# --------------------------------------------------------------------------- blend_weights


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tile", [(8, 8), (5, 9), (4, 6, 7), (1, 3)])
def test_blend_weights_shape_positive_symmetric(mode: str, tile: tuple[int, ...]) -> None:
    w = blend_weights(tile, mode)
    assert w.shape == tile
    assert w.dtype == torch.float32
    assert bool((w > 0).all())
    assert float(w.max()) == pytest.approx(1.0)
    for ax in range(len(tile)):
        torch.testing.assert_close(w, w.flip(ax))
    if mode == "constant":
        assert bool((w == 1).all())
    else:  # centre weighs more than the corner
        assert float(w[tuple(n // 2 for n in tile)]) >= float(w[(0,) * len(tile)])


def test_blend_weights_gaussian_and_cosine_values() -> None:
    g = blend_weights((16, 16), "gaussian")
    assert float(g.max()) == pytest.approx(1.0)
    assert float(g.min()) >= 1e-3 - 1e-9
    assert float(blend_weights((8, 8, 8), "gaussian").min()) >= 1e-3 - 1e-9  # product clamped
    c = blend_weights((16,), "cosine")
    assert float(c.min()) > 0
    assert float(c[0]) < 0.1


@pytest.mark.parametrize("mode", MODES)
def test_blend_weights_edge(mode: str) -> None:
    w = blend_weights((10, 8), mode, edge=2)
    assert bool((w[:2] == 0).all()) and bool((w[-2:] == 0).all())
    assert bool((w[:, :2] == 0).all()) and bool((w[:, -2:] == 0).all())
    assert bool((w[2:-2, 2:-2] > 0).all())


def test_blend_weights_invalid() -> None:
    with pytest.raises(DataError):
        blend_weights((8, 8), "triangle")
    with pytest.raises(DataError):
        blend_weights((8, 8), "cosine", edge=4)
    with pytest.raises(GeounetError):
        blend_weights((8, 8), "cosine", edge=-1)


# --------------------------------------------------------------------------- sliding_window_predict

CASES = [
    # (spatial size, tile, overlap, edge)
    ((13, 9), 4, 0, 0),
    ((13, 9), 4, 2, 1),
    ((16, 12), (8, 4), (3, 1), 0),
    ((3, 5), 8, 2, 0),  # smaller than the tile on both axes
    ((3, 17), 6, 2, 1),  # smaller on one axis only
    ((7, 5, 9), 4, 1, 0),  # 3D
    ((7, 5, 9), 4, 2, 1),
    ((2, 3, 2), 4, 0, 0),  # 3D smaller than tile
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("size", "tile", "overlap", "edge"), CASES)
def test_identity_is_exact(mode, size, tile, overlap, edge) -> None:
    torch.manual_seed(0)
    image = torch.randn(2, *size)
    out = sliding_window_predict(
        image, _identity, tile=tile, overlap=overlap, edge=edge, blend=mode, batch_size=3
    )
    assert out.shape == image.shape
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, image, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "constant"])
@pytest.mark.parametrize("size", [(1, 1), (2, 7), (5, 3)])
def test_padding_tiny_images(pad_mode: str, size: tuple[int, int]) -> None:
    image = torch.randn(3, *size)
    out = sliding_window_predict(image, _identity, tile=6, pad_mode=pad_mode)
    torch.testing.assert_close(out, image, atol=1e-6, rtol=1e-6)


def test_pointwise_predict_has_no_seams() -> None:
    torch.manual_seed(1)
    image = torch.randn(3, 21, 17)
    conv1 = nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        expected = conv1(image[None])[0] * 2 + 1

    def predict(x: torch.Tensor) -> torch.Tensor:
        return conv1(x) * 2 + 1

    for mode in MODES:
        for tile, overlap in [(4, 0), (7, 3), (8, 5), (32, 0), ((5, 9), (0, 4))]:
            out = sliding_window_predict(image, predict, tile=tile, overlap=overlap, blend=mode)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_edge_crop_removes_tile_border_artefacts_2d(mode: str) -> None:
    torch.manual_seed(2)
    image = torch.randn(2, 20, 23)
    conv = nn.Conv2d(2, 3, 3, padding=1)  # zero padding: wrong at tile borders
    with torch.no_grad():
        whole = conv(image[None])[0]
    kwargs = {"tile": 8, "overlap": 2, "blend": mode}
    cropped = sliding_window_predict(image, conv, edge=1, **kwargs)
    # Valid pixels are >= 1 px from any interior tile border, and tiles touching the image
    # border keep their border side, where tile zero padding == whole-image zero padding.
    torch.testing.assert_close(cropped, whole, atol=1e-5, rtol=1e-5)
    plain = sliding_window_predict(image, conv, edge=0, **kwargs)
    assert float((plain - whole).abs().max()) > 1e-2  # seams without the edge crop


def test_edge_crop_removes_tile_border_artefacts_3d() -> None:
    torch.manual_seed(3)
    image = torch.randn(1, 9, 10, 11)
    conv = nn.Conv3d(1, 2, 3, padding=1)
    with torch.no_grad():
        whole = conv(image[None])[0]
    out = sliding_window_predict(image, conv, tile=6, overlap=2, edge=1, blend="gaussian")
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)
    plain = sliding_window_predict(image, conv, tile=6, overlap=2, blend="gaussian")
    assert float((plain - whole).abs().max()) > 1e-2


@pytest.mark.parametrize("out_channels", [None, 5])
def test_out_channels_differ_from_input(out_channels: int | None) -> None:
    image = torch.randn(2, 11, 10)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.sum(1, keepdim=True), -x], dim=1)  # K = 5

    out = sliding_window_predict(image, predict, tile=4, overlap=1, out_channels=out_channels)
    assert out.shape == (5, 11, 10)
    torch.testing.assert_close(out[:2], image, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out[2], image.sum(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 5, 1000])
def test_batch_size_and_progress(batch_size: int) -> None:
    image = torch.randn(1, 13, 9)  # tile 4, overlap 0 -> 4 x 3 = 12 windows
    calls: list[tuple[int, int]] = []
    sizes: list[int] = []

    def predict(x: torch.Tensor) -> torch.Tensor:
        assert torch.is_inference_mode_enabled()
        sizes.append(x.shape[0])
        return x * 3

    out = sliding_window_predict(
        image, predict, tile=4, batch_size=batch_size, progress=lambda d, t: calls.append((d, t))
    )
    torch.testing.assert_close(out, image * 3, atol=1e-5, rtol=1e-5)
    assert len(calls) == math.ceil(12 / batch_size) == len(sizes)
    assert calls[-1] == (12, 12)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert max(sizes) == min(batch_size, 12) and sum(sizes) == 12


def test_dtype_and_result_is_a_normal_tensor() -> None:
    image = torch.randn(2, 9, 9, dtype=torch.float64)
    out = sliding_window_predict(image, lambda x: x.half(), tile=4, overlap=1)
    assert out.dtype == torch.float32
    assert not out.is_inference()
    out.add_(1)  # callers may update the result in place


def test_invalid_arguments() -> None:
    image = torch.randn(1, 10, 10)
    with pytest.raises(DataError):
        sliding_window_predict(torch.randn(10, 10), _identity, tile=4)
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=4, overlap=2, edge=2)  # overlap < 2 edge
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=4, blend="box")
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=(4, 4, 4))
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=4, batch_size=0)
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=4, pad_mode="wrap")
    with pytest.raises(DataError):
        sliding_window_predict(image, lambda x: x[..., :2], tile=4)
    with pytest.raises(DataError):
        sliding_window_predict(image, _identity, tile=4, out_channels=3)


def test_zero_total_weight_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sliding, "_outer", lambda profiles: torch.zeros(4, 4))
    with pytest.raises(RuntimeError, match="zero total weight"):
        sliding_window_predict(torch.randn(1, 8, 8), _identity, tile=4)
