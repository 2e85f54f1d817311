"""Chips, volumes and slices end to end through geounet.api and the CLI: train, predict,
evaluate, and one-line errors without partial outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_cases import AFFINE, chip_folder, figshare_v73, nifti_cases, write_nifti
from _fixtures_ml import run_cli as _cli

import geounet.api as gu
from geounet.io.nifti import read_volume

TINY = "{width: 4, depth: 2}"
FAST = [
    "train.batch_size=4",
    "train.samples_per_epoch=8",
    "train.max_epochs=2",
    "train.augment=true",
]


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chip_folder(tmp_path_factory.mktemp("chips") / "chips", n=5)


@pytest.fixture(scope="module")
def chip_run(chips: Path, tmp_path_factory: pytest.TempPathFactory):
    run = tmp_path_factory.mktemp("chip_run")
    result = gu.train(
        None,
        [
            "data.source=folders",
            f"data.images=[{chips}]",
            "data.image_pattern='*_sat.png'",
            "data.mask_pattern='*_mask.png'",
            "data.classes=[background, roof]",
            "data.mask_threshold=128",
            "data.split=ordered",
            f"model.arguments={TINY}",
            "train.tile_size=32",
            f"run_dir={run}",
            *FAST,
        ],
        progress=False,
    )
    return result


def test_chip_training_writes_a_self_describing_bundle(chip_run) -> None:
    info = gu.model_info(chip_run.model_path)
    assert info["source"] == "folders" and info["in_channels"] == 3
    assert info["preprocess"]["mask_threshold"] == 128
    assert info["classes"] == ["background", "roof"]
    assert 0.0 <= chip_run.best_val_iou <= 1.0


def test_predict_a_chip_folder_to_palette_pngs(chip_run, chips: Path, tmp_path: Path) -> None:
    from PIL import Image

    results = gu.predict_many(chip_run.model_path, [chips], tmp_path / "out")
    names = sorted(r.path.name for r in results)
    # the folder holds images and masks: the model's image pattern picks the images
    assert names == [f"{i}_sat_pred.png" for i in range(5)]
    # a second run into the input folder itself does not take the results as inputs
    again = gu.predict_many(chip_run.model_path, [chips], tmp_path / "out")
    assert len(again) == 5
    with Image.open(tmp_path / "out" / "0_sat_pred.png") as img:
        assert img.mode == "P" and img.size == (64, 64)
        assert img.getpalette()[3:6] == gu.model_info(chip_run.model_path)["colors"][1][:3]
    one = gu.predict(chip_run.model_path, chips / "1_sat.png", tmp_path / "one.tif")
    assert one.path.exists() and sum(one.class_pixels.values()) == 64 * 64


def test_evaluate_chips_per_case(chip_run, chips: Path, tmp_path: Path) -> None:
    config = Path(chip_run.run_dir) / "config.yaml"
    result = gu.evaluate(chip_run.model_path, tmp_path / "eval", config=config)
    m = json.loads(result.metrics_path.read_text())
    assert len(m["cases"]) == 1 and m["cases"][0]["case"] == "4"  # ordered: the last chip
    assert set(m["mean"]) == {"roof"} and 0 <= m["mean"]["roof"]["dice"] <= 1
    assert 0 <= m["pixel_error"] <= 1
    assert "| **mean** |" in result.report_path.read_text()
    assert (tmp_path / "eval" / "cases.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nifti")
    nifti_cases(root / "train", n=2)
    nifti_cases(root / "val", n=1)
    return root


def _nifti_overrides(cases: Path, run: Path) -> list[str]:
    return [
        "data.source=nifti",
        f"data.images=['{cases}/train/*']",
        f"data.val_images=['{cases}/val/*']",
        "data.modalities=['t1c*', 'flair*']",
        "data.label_file='seg*'",
        "data.normalization=case_zscore",
        "data.normalization_mask=nonzero",
        f"run_dir={run}",
        *FAST,
    ]


def test_2d_slices_with_context_from_volumes(cases: Path, tmp_path: Path) -> None:
    result = gu.train(
        None,
        [
            *_nifti_overrides(cases, tmp_path / "run"),
            "data.label_groups={tumour: [1, 2, 3, 4]}",
            "data.slice_context=1",
            f"model.arguments={TINY}",
            "train.tile_size=16",
        ],
        progress=False,
    )
    info = gu.model_info(result.model_path)
    assert info["in_channels"] == 6 and info["bands"][0] == "t1c*@-1"
    out = tmp_path / "seg.nii.gz"
    folder = cases / "val" / "case_0"
    gu.predict(result.model_path, folder, out)
    seg = read_volume(out)
    assert seg.data.shape == (24, 28, 16) and np.allclose(seg.affine, AFFINE)
    # the modality files joined by commas give the same result
    out2 = tmp_path / "seg2.nii.gz"
    gu.predict(result.model_path, f"{folder / 't1c.nii.gz'},{folder / 'flair.nii.gz'}", out2)
    assert np.array_equal(read_volume(out2).data, seg.data)
    # slices larger than the window go through the sliding window one by one; TTA works
    small = gu.PredictOptions(tile=16, overlap=4, tta=True)
    out3 = gu.predict(result.model_path, folder, tmp_path / "seg3.nii.gz", small).path
    assert read_volume(out3).data.shape == (24, 28, 16)
    # as the CLI does it: one case folder -> that file; a folder of cases -> a folder
    (one,) = gu.predict_many(result.model_path, [folder], tmp_path / "one.nii.gz")
    assert one.path == tmp_path / "one.nii.gz" and one.path.is_file()
    (each,) = gu.predict_many(result.model_path, [cases / "val"], tmp_path / "all")
    assert each.path == tmp_path / "all" / "case_0_pred.nii.gz"
    with pytest.raises(ValueError, match=r"give an output folder"):
        gu.predict_many(result.model_path, [folder, folder], tmp_path / "two.nii.gz")
    assert not (tmp_path / "two.nii.gz").exists()


def test_3d_unet_regions_and_spacing(cases: Path, tmp_path: Path) -> None:
    result = gu.train(
        None,
        [
            *_nifti_overrides(cases, tmp_path / "run"),
            "data.label_groups={whole: [1, 2, 3, 4], core: [1, 3, 4], enhancing: [4]}",
            "data.spacing=[1.8, 2.2, 2.5]",
            "model.name=unet3d",
            "model.arguments={width: 4, depth: 2}",
            "train.tile_size=[16, 16, 8]",
            "train.batch_size=2",
        ],
        progress=False,
    )
    info = gu.model_info(result.model_path)
    assert info["classes"] == ["background", "whole", "core", "enhancing"]
    assert info["patch"] == [16, 16, 8] and info["preprocess"]["spacing"] == [1.8, 2.2, 2.5]
    out = tmp_path / "seg3d.nii.gz"
    gu.predict(result.model_path, cases / "val" / "case_0", out)
    assert read_volume(out).data.shape == (24, 28, 16)  # back on the input's own grid
    evaluation = gu.evaluate(
        result.model_path, tmp_path / "eval", config=result.run_dir / "config.yaml"
    )
    mean = evaluation.metrics["mean"]
    assert set(mean) == {"whole", "core", "enhancing"}
    row = evaluation.metrics["cases"][0]
    # nested regions: the whole tumour holds at least the core's true voxels
    assert (
        row["whole"]["true_voxels"]
        >= row["core"]["true_voxels"]
        >= row["enhancing"]["true_voxels"]
        > 0
    )


def test_figshare_mat_training_and_prediction(tmp_path: Path) -> None:
    folder = tmp_path / "mat"
    for i, pid in enumerate(["p1", "p1", "p2", "p3"]):
        figshare_v73(folder / f"{i + 1}.mat", size=64 if i != 2 else 32, pid=pid, seed=i)
    preset = Path(__file__).resolve().parents[1] / "configs" / "brain_tumour_mat.yaml"
    result = gu.train(
        preset,
        [
            f"data.images=[{folder}]",
            f"model.arguments={TINY}",
            "train.tile_size=32",
            f"run_dir={tmp_path / 'run'}",
            *FAST,
        ],
        progress=False,
    )
    info = gu.model_info(result.model_path)
    assert info["source"] == "figshare_mat" and info["preprocess"]["normalize"] == "percentile"
    # three patients: one trains, one validates, one is the test split evaluate uses
    evaluation = gu.evaluate(
        result.model_path, tmp_path / "e", config=result.run_dir / "config.yaml"
    )
    assert len(evaluation.metrics["cases"]) == 1
    out = tmp_path / "pred.png"
    gu.predict(result.model_path, folder / "1.mat", out)
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (64, 64)


def test_every_preset_loads() -> None:
    from geounet.config import load_config

    presets = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))
    assert len(presets) >= 6
    for preset in presets:
        config = load_config(preset)
        assert config.run_dir.startswith("runs/"), preset
    brats = load_config(presets[0].with_name("brain_tumour_3d.yaml"))
    assert brats.data.classes == ["background", "whole_tumour", "tumour_core", "enhancing"]


def test_brain_tumour_2d_preset() -> None:
    from geounet.config import load_config

    preset = Path(__file__).resolve().parents[1] / "configs" / "brain_tumour_2d.yaml"
    config = load_config(preset)
    assert config.data.source == "nifti" and config.model.name == "unet"
    assert config.data.classes == ["background", "tumour"]
    assert config.data.label_groups == {"tumour": [1, 2, 3, 4]}
    assert config.data.modalities == ["T1c*.nii.gz", "Flair*.nii.gz"]
    assert config.data.slice_axis == "axial" and config.data.slice_context == 1
    assert config.data.normalization == "case_zscore"
    assert config.data.val_images and config.train.max_minutes == 15


def _bad_label_case(root: Path) -> Path:
    folders = nifti_cases(root, n=2)
    write_nifti(folders[0] / "seg.nii.gz", np.full((24, 28, 16), 7, np.int16))
    return root


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("shape", "label grid (shape (24, 28, 15)) differs"),
        ("value", "label values [7] map to no class; add them to data.label_groups"),
        ("nomask", "no masks found for the 2 images"),
        ("nocjdata", "no 'cjdata' struct"),
    ],
)
def test_bad_inputs_are_one_line_and_write_nothing(
    kind: str, expected: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    if kind in ("shape", "value"):
        folders = nifti_cases(tmp_path / "c", n=2)
        bad = (
            np.zeros((24, 28, 15), np.int16)
            if kind == "shape"
            else np.full((24, 28, 16), 7, np.int16)
        )
        write_nifti(folders[0] / "seg.nii.gz", bad)
        args = [
            "data.source=nifti",
            f"data.images=['{tmp_path}/c/*']",
            "data.modalities=['t1c*', 'flair*']",
            "data.label_file='seg*'",
            "data.label_groups={tumour: [1, 2, 4]}",
        ]
    elif kind == "nomask":
        from PIL import Image

        for folder in ("img", "lab"):
            (tmp_path / folder).mkdir()
        for i in range(2):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img" / f"{i}.png")
        args = [
            "data.source=folders",
            f"data.images=[{tmp_path / 'img'}]",
            f"data.labels={tmp_path / 'lab'}",
        ]
    else:
        import h5py

        (tmp_path / "m").mkdir()
        with h5py.File(tmp_path / "m" / "1.mat", "w") as f:
            f["x"] = np.zeros(2)
        args = ["data.source=figshare_mat", f"data.images=[{tmp_path / 'm'}]"]
    sets = [
        a for arg in [*args, f"run_dir={run}", f"model.arguments={TINY}"] for a in ("--set", arg)
    ]
    (tmp_path / "empty.yaml").write_text("# all from --set\n")
    proc = _cli("train", str(tmp_path / "empty.yaml"), *sets)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("geounet: error: ") and expected in lines[0]
    assert not (run / "model.safetensors").exists()


def test_predict_errors_leave_no_output(chip_run, tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "o.png"
    proc = _cli("predict", str(chip_run.model_path), str(tmp_path / "broken.png"), "-o", str(out))
    assert proc.returncode == 1 and "broken.png: not a readable image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
    proc = _cli("predict", str(chip_run.model_path), str(tmp_path / "broken.png"), "-o", "x.nii.gz")
    assert proc.returncode == 1 and "NIfTI output needs a NIfTI input" in proc.stderr


def test_explicit_validation_cases(chips: Path) -> None:
    from geounet.config import load_config
    from geounet.train.cases import evaluation_refs

    config = load_config(
        None,
        [
            "data.source=folders",
            f"data.images=[{chips}]",
            "data.image_pattern='*_sat.png'",
            "data.mask_pattern='*_mask.png'",
            "data.val_cases=['1', '3']",
        ],
    )
    assert [r.id for r in evaluation_refs(config)] == ["1", "3"]
    config.data.val_cases = ["9"]
    with pytest.raises(ValueError, match=r"val_cases.*'9'"):
        evaluation_refs(config)


def test_evaluate_one_chip_with_its_mask(chip_run, chips: Path, tmp_path: Path) -> None:
    result = gu.evaluate(
        chip_run.model_path, tmp_path / "e", image=chips / "2_sat.png", labels=chips / "2_mask.png"
    )
    (row,) = result.metrics["cases"]
    assert row["case"] == "2_sat" and row["roof"]["true_voxels"] > 0  # threshold from the model


def test_resume_of_a_volume_run_continues_exactly(cases: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    def overrides(run: Path, epochs: int) -> list[str]:
        return [
            *_nifti_overrides(cases, run),
            "data.label_groups={tumour: [1, 2, 3, 4]}",
            f"model.arguments={TINY}",
            "train.tile_size=16",
            f"train.max_epochs={epochs}",
        ]

    straight = gu.train(None, overrides(tmp_path / "a", 4), progress=False)
    gu.train(None, overrides(tmp_path / "b", 2), progress=False)
    config = tmp_path / "b" / "config.yaml"
    config.write_text(config.read_text().replace("max_epochs: 2", "max_epochs: 4"))
    resumed = gu.resume(tmp_path / "b", progress=False)
    assert resumed.epochs == straight.epochs == 4
    a, b = (
        load_file(tmp_path / "a" / "last.safetensors"),
        load_file(tmp_path / "b" / "last.safetensors"),
    )
    for key in a:
        assert np.allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5), key


def test_config_combinations_that_cannot_work_are_named(chips: Path, tmp_path: Path) -> None:
    base = [
        "data.source=folders",
        f"data.images=[{chips}]",
        f"data.labels={chips}",
        "data.image_pattern='*_sat.png'",
        "data.mask_pattern='*_mask.png'",
        f"run_dir={tmp_path / 'r'}",
    ]
    with pytest.raises(ValueError, match=r"data\.val_labels"):
        gu.train(None, [*base, f"data.val_images=[{chips}]"], progress=False)
    with pytest.raises(ValueError, match="case_percentile"):
        gu.train(None, [*base, "data.normalization=percentile"], progress=False)
    with pytest.raises(ValueError, match=r"normalization_mask"):
        gu.train(None, [*base, "data.normalization_mask=nonzero"], progress=False)


def test_two_inputs_writing_one_output_are_refused(chip_run, chips: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(chips, other)
    with pytest.raises(ValueError, match="would both write"):
        gu.predict_many(chip_run.model_path, [chips, other], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_figure_shows_a_square_of_a_long_validation_strip() -> None:
    from geounet.evaluate_cases import _sample

    truth = np.zeros((400, 100), dtype=np.int64)
    truth[210:290, 20:60] = 2  # in the strip's third square: the one with two classes
    image = np.random.default_rng(0).random((3, 400, 100))
    shown, t, p = _sample(image, truth, truth.copy())
    assert shown.shape == (3, 100, 100) and t.shape == p.shape == (100, 100)
    assert (t == 2).sum() == 80 * 40
    cube = np.zeros((8, 64, 64), dtype=np.int64)
    volume = _sample(np.zeros((1, 8, 64, 64)), cube, cube)  # a slice of a volume, whole
    assert volume[1].shape == (64, 64)
