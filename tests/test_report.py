"""Report figures: every preset's classes in the legend, error colours explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from geounet import report
from geounet.config import load_config
from geounet.models.bundle import ModelMeta

PRESETS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _meta(classes: list[str], colors) -> ModelMeta:
    return ModelMeta(
        architecture="unet",
        arguments={},
        in_channels=3,
        out_channels=len(classes),
        classes=classes,
        colors=colors or [],
        bands=["red", "green", "blue"],
        mean=[0.0] * 3,
        std=[1.0] * 3,
        tile_size=64,
    )


@pytest.fixture
def legends(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The legend texts of each figure saved (and the figure still saved)."""
    texts: list[list[str]] = []
    save = report._save

    def keep(fig, path, **kwargs):
        texts.append([t.get_text() for legend in fig.legends for t in legend.get_texts()])
        return save(fig, path, **kwargs)

    monkeypatch.setattr(report, "_save", keep)
    return texts


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_gets_a_report_picture_with_its_class_legend(preset, tmp_path, legends):
    data = load_config(preset).data
    classes = data.classes if isinstance(data.classes, list) else ["background", "a", "b"]
    meta = _meta(classes, data.colors)
    rng = np.random.default_rng(0)
    k = len(classes)
    truth = rng.integers(0, k, (48, 48))
    truth[:4] = 255  # not labelled
    pred = np.where(rng.random((48, 48)) < 0.8, truth % 255, rng.integers(0, k, (48, 48)))
    samples = [(rng.random((3, 48, 48)), truth, pred)] * 2
    out = report.windows_figure(samples, meta, tmp_path / "windows.png")
    assert out.stat().st_size > 10_000
    texts = legends[0]
    _, alpha = report._class_colors(meta)
    named = [c if alpha[i] > 0 else f"{c} (transparent)" for i, c in enumerate(classes)]
    assert texts[:k] == named  # the class legend, in class order
    # the imagery shows through background (clear sky), except in LoveDA's legend
    see_through = classes[0] in ("background", "clear") and preset.stem != "loveda"
    assert (alpha[:k] == 0).sum() == see_through
    background = classes[0] == "background"
    errors = ["right", "wrong"]
    if background:
        errors = ["right", "right, background", "false alarm / wrong class", "missed"]
    assert texts[k:] == [*errors, "not labelled / no data"]


def test_transparent_background_shows_the_imagery():
    meta = _meta(["background", "building"], [[0, 0, 0, 0], [255, 0, 0]])
    colors, alpha = report._class_colors(meta)
    assert alpha[0] == 0 and alpha[1] == 1
    image = np.full((2, 2, 3), 0.5)
    ids = np.array([[0, 1], [0, 1]])
    shown = report._overlay(image, ids, colors, alpha)
    assert np.allclose(shown[0, 0], shown[1, 0]) and shown[0, 0].max() > 0.5  # grey imagery
    assert np.allclose(shown[0, 1], [1, 0, 0])


def test_object_and_network_figures_explain_their_colours(tmp_path, legends):
    square = shapely.box(5, 5, 20, 20)
    report.objects_figure(np.zeros((3, 40, 40)), [square], [square], tmp_path / "o.png")
    line = shapely.LineString([(0, 20), (39, 20)])
    report.network_figure(np.zeros((3, 40, 40)), [line], [line], tmp_path / "n.png")
    assert legends[0] == [
        "true, found",
        "true, missed",
        "predicted, matched",
        "predicted, false alarm",
    ]
    assert legends[1] == ["true centre lines", "predicted network", "line ends and junctions"]


def test_line_legends_fit_a_narrow_picture(tmp_path: Path, monkeypatch) -> None:
    inside, titles = [], []
    save = report._save

    def keep(fig, path, **kwargs):
        box = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
        inside.append(box.x0 >= 0 and box.x1 <= fig.bbox.x1)
        titles.append(fig.get_suptitle())
        return save(fig, path, **kwargs)

    monkeypatch.setattr(report, "_save", keep)
    square = shapely.box(5, 5, 20, 20)
    tall = np.zeros((3, 400, 100))  # a narrow validation strip
    report.objects_figure(tall, [square], [square], tmp_path / "o.png", "first region: ")
    line = shapely.LineString([(50, 0), (50, 399)])
    report.network_figure(tall, [line], [line], tmp_path / "n.png")
    assert inside == [True, True]
    assert titles[0] == "first region: 1 matched (IoU > 0.5) of 1 true, 1 predicted"
