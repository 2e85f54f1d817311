"""Tests for model bundles: one safetensors file with weights and JSON metadata."""

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from geounet import __version__
from geounet.errors import GeounetError, InputFileNotFoundError, ModelError
from geounet.models.bundle import (
    FORMAT_VERSION,
    METADATA_KEY,
    ModelMeta,
    build_segmenter,
    load_bundle,
    read_meta,
    save_bundle,
)
from geounet.models.registry import build_model

UTM_WKT = 'PROJCS["WGS 84 / UTM zone 33N",AUTHORITY["EPSG","32633"]]'


def _meta(**changes) -> ModelMeta:
    values = {
        "architecture": "unet",
        "arguments": {"width": 4, "depth": 2},
        "in_channels": 3,
        "out_channels": 1,
        "classes": ["background", "building"],
        "colors": [[0, 0, 0], [255, 0, 0]],
        "bands": ["red", "green", "blue"],
        "mean": [10.5, 20.25, 30.0],
        "std": [1.5, 2.5, 3.5],
        "tile_size": 64,
        "resolution": [0.5, 0.5],
        "crs": UTM_WKT,
        "metrics": {"val_iou": 0.75},
    }
    values.update(changes)
    return ModelMeta(**values)


def _trained(meta: ModelMeta) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_segmenter(meta)
    with torch.no_grad():  # make the weights differ from a fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


def _rewrite_metadata(src: Path, dst: Path, edit) -> None:
    tensors = load_file(str(src))
    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    raw = json.loads(metadata[METADATA_KEY])
    edit(raw)
    metadata[METADATA_KEY] = json.dumps(raw)
    save_file(tensors, str(dst), metadata=metadata)


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, torch.nn.Module, ModelMeta]:
    meta = _meta()
    model = _trained(meta)
    path = save_bundle(model, meta, tmp_path / "model.safetensors")
    return path, model, meta


def test_round_trip_identical_outputs(bundle) -> None:
    path, model, _ = bundle
    loaded, _ = load_bundle(path)
    assert not loaded.training
    x = torch.rand(2, 3, 37, 50) * 100
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_metadata_round_trip(bundle) -> None:
    path, _, meta = bundle
    for got in (read_meta(path), load_bundle(path)[1]):
        assert got == meta
        assert got.classes == ["background", "building"]
        assert got.bands == ["red", "green", "blue"]
        assert got.mean == [10.5, 20.25, 30.0] and got.std == [1.5, 2.5, 3.5]
        assert got.tile_size == 64
        assert got.resolution == [0.5, 0.5]
        assert got.crs == UTM_WKT
        assert got.geounet_version == __version__
        assert got.format_version == FORMAT_VERSION
        assert got.binary


def test_normalization_stats_are_in_the_weights(bundle) -> None:
    path, _, _ = bundle
    loaded, _ = load_bundle(path)
    assert loaded.mean.flatten().tolist() == [10.5, 20.25, 30.0]
    assert loaded.std.flatten().tolist() == [1.5, 2.5, 3.5]


def test_file_is_plain_safetensors_without_pickle(bundle) -> None:
    path, model, _ = bundle
    header = _header(path)
    assert METADATA_KEY in header["__metadata__"]
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert set(tensors) == set(model.state_dict())
    assert all(set(v) == {"dtype", "shape", "data_offsets"} for v in tensors.values())
    # header + tensor bytes make up the whole file: nothing else (no pickle) is in it
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    end = max(v["data_offsets"][1] for v in tensors.values())
    assert path.stat().st_size == 8 + n + end


def test_loading_never_unpickles(bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, meta = bundle

    def forbidden(*args, **kwargs):
        raise AssertionError("bundle loading must not unpickle")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    _, got = load_bundle(path)
    assert got == meta
    assert read_meta(path) == meta


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"this is not a model at all")
    with pytest.raises(ModelError, match="not a safetensors"):
        load_bundle(path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(ModelError):
        read_meta(tmp_path / "model.pt")


def test_safetensors_without_geounet_metadata(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="without geounet metadata"):
        load_bundle(path)
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="geounet"):
        read_meta(path)


def test_corrupt_metadata(bundle, tmp_path: Path) -> None:
    path, _, _ = bundle
    tensors = load_file(str(path))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={METADATA_KEY: "{not json"})
    with pytest.raises(ModelError, match="corrupt"):
        read_meta(bad)


def test_weights_not_fitting_the_metadata(bundle, tmp_path: Path) -> None:
    path, _, _ = bundle
    bad = tmp_path / "edited.safetensors"

    def edit(raw: dict) -> None:
        raw["in_channels"] = 5
        raw["mean"] = [0.0] * 5
        raw["std"] = [1.0] * 5

    _rewrite_metadata(path, bad, edit)
    assert read_meta(bad).in_channels == 5
    with pytest.raises(ModelError, match="in_channels=5"):
        load_bundle(bad)


def test_missing_file(tmp_path: Path) -> None:
    for fn in (load_bundle, read_meta):
        with pytest.raises(InputFileNotFoundError, match="not found"):
            fn(tmp_path / "nope.safetensors")


def test_save_is_atomic_and_overwrites(bundle) -> None:
    path, model, meta = bundle
    meta.metrics = {"val_iou": 0.9}
    save_bundle(model, meta, path)
    assert read_meta(path).metrics == {"val_iou": 0.9}
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_smp_encoder_model_round_trip(tmp_path: Path) -> None:
    meta = _meta(
        arguments={"encoder": "resnet18"},
        in_channels=4,
        out_channels=3,
        classes=["background", "building", "road"],
        colors=[[0, 0, 0], [255, 0, 0], [0, 0, 255]],
        bands=["r", "g", "b", "nir"],
        mean=[1.0, 2.0, 3.0, 4.0],
        std=[1.0, 1.0, 1.0, 1.0],
    )
    model = _trained(meta)
    path = save_bundle(model, meta, tmp_path / "smp.safetensors")
    loaded, got = load_bundle(path)
    assert got == meta and not got.binary
    x = torch.rand(1, 4, 45, 70)
    with torch.no_grad():
        y = loaded(x)
        torch.testing.assert_close(y, model(x), rtol=0, atol=0)
    assert y.shape == (1, 3, 45, 70)


@pytest.mark.parametrize("name", ["imagenet", "does/not/exist.safetensors"])
def test_encoder_weights_are_never_downloaded(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GeounetError, match="never downloads") as info:
        build_model("unet", 4, 1, encoder="resnet18", encoder_weights=name)
    assert name in str(info.value)


def test_local_encoder_weights_adapt_first_conv(tmp_path: Path) -> None:
    torch.manual_seed(1)
    rgb = build_model("unet", 3, 1, encoder="resnet18")
    state = {k: v.contiguous() for k, v in rgb.encoder.state_dict().items()}
    weights = tmp_path / "resnet18.safetensors"
    save_file(state, str(weights))

    torch.manual_seed(2)
    net = build_model("unet", 4, 1, encoder="resnet18", encoder_weights=str(weights))
    own = net.encoder.state_dict()
    conv1 = state["conv1.weight"]
    assert own["conv1.weight"].shape == (conv1.shape[0], 4, *conv1.shape[2:])
    expected = conv1[:, [0, 1, 2, 0]] * (3 / 4)
    torch.testing.assert_close(own["conv1.weight"], expected)
    for key in ("layer1.0.conv1.weight", "layer4.1.bn2.running_var", "bn1.bias"):
        assert torch.equal(own[key], state[key]), key
    assert net(torch.rand(1, 4, 64, 64)).shape == (1, 1, 64, 64)


def test_encoder_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "random.safetensors"
    save_file({"something.else": torch.zeros(3)}, str(weights))
    with pytest.raises(ModelError, match="no tensor matches"):
        build_model("unet", 3, 1, encoder="resnet18", encoder_weights=str(weights))
