"""Every registered architecture: shapes, gradients, bundles, determinism, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from geounet.cli import cli
from geounet.errors import ModelError
from geounet.models.bundle import ModelMeta, build_segmenter, load_bundle, save_bundle
from geounet.models.registry import REGISTRY

# Small settings per variant so the whole zoo runs in seconds on a CPU.
SMALL = {
    "unet": {"width": 4, "depth": 3, "batch_norm": True},
    "unetplusplus": {"encoder": "resnet18", "decoder_channels": [32, 16, 8, 8, 8]},
    "attention_unet": {"width": 4, "depth": 3},
    "resunet": {"width": 4, "depth": 3},
    "linknet": {"encoder": "resnet18"},
    "fcn": {"encoder": "resnet18"},
    "deeplabv3plus": {"encoder": "resnet18"},
    "unet3d": {"width": 4, "depth": 2},
    "vnet": {"width": 4, "depth": 2, "kernel": 3},
    "siamese_unet": {"encoder": "resnet18", "decoder_channels": [32, 16, 8, 8, 8]},
}
SIZES = {2: [(45, 70), (33, 33)], 3: [(11, 20, 13)]}


def _meta(name: str, in_channels: int = 3, classes: int = 3) -> ModelMeta:
    return ModelMeta(
        architecture=name,
        arguments=SMALL[name],
        in_channels=in_channels,
        out_channels=classes,
        classes=[f"c{i}" for i in range(classes)],
        colors=[[i, i, i] for i in range(classes)],
        bands=[f"b{i}" for i in range(in_channels)],
        mean=[0.0] * in_channels,
        std=[1.0] * in_channels,
        tile_size=64,
    )


def test_every_registered_model_is_tested() -> None:
    assert set(SMALL) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_any_size_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build_segmenter(_meta(name, in_channels=4))
    for size in SIZES[REGISTRY[name].dims]:
        x = torch.rand(2, 4, *size) * 255
        y = model(x)
        assert y.shape == (2, 3, *size), name
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bundle_round_trip_and_determinism(name: str, tmp_path: Path) -> None:
    torch.manual_seed(7)
    model = build_segmenter(_meta(name, in_channels=4)).eval()
    torch.manual_seed(7)
    again = build_segmenter(_meta(name, in_channels=4)).eval()
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    path = save_bundle(model, _meta(name, in_channels=4), tmp_path / f"{name}.safetensors")
    loaded, meta = load_bundle(path)
    assert meta.architecture == name
    x = torch.rand(1, 4, *SIZES[REGISTRY[name].dims][0]) * 255
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("name", ["unet", "fcn", "vnet"])
def test_wrong_in_channels_at_load_is_a_clear_error(name: str, tmp_path: Path) -> None:
    meta = _meta(name)
    path = save_bundle(build_segmenter(meta), meta, tmp_path / "m.safetensors")
    wrong = dataclasses.replace(meta, in_channels=5, mean=[0.0] * 5, std=[1.0] * 5)
    forged = save_bundle(build_segmenter(meta), wrong, tmp_path / "forged.safetensors")
    assert load_bundle(path)[1].in_channels == 3
    with pytest.raises(ModelError, match="in_channels=5"):
        load_bundle(forged)


def test_unknown_model_and_bad_arguments() -> None:
    with pytest.raises(ModelError, match=r"available: .*attention_unet"):
        build_segmenter(dataclasses.replace(_meta("unet"), architecture="transformer"))
    with pytest.raises(ModelError, match="resunet"):
        build_segmenter(dataclasses.replace(_meta("resunet"), arguments={"widht": 3}))


def test_models_command_lists_every_variant() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    for name in REGISTRY:
        assert f"\n{name} " in result.output
    assert "M  U-Net (Ronneberger" in result.output


def test_info_command_prints_metadata(tmp_path: Path) -> None:
    meta = _meta("unet")
    path = save_bundle(build_segmenter(meta), meta, tmp_path / "m.safetensors")
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "architecture         unet" in result.output
    assert "'width': 4" in result.output
    result = CliRunner().invoke(cli, ["info", "--json", str(path)])
    assert '"in_channels": 3' in result.output


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("attention_unet", {"depth": 0}, "attention_unet needs positive"),
        ("resunet", {"width": 0}, "resunet needs positive"),
        ("vnet", {"depth": 5}, r"vnet needs .*depth 1\.\.4"),
    ],
)
def test_invalid_own_model_arguments(name: str, arguments: dict, message: str) -> None:
    from geounet.models.registry import build_model

    with pytest.raises(ModelError, match=message):
        build_model(name, 3, 2, **arguments)


def test_siamese_shares_its_encoder_and_localises_from_the_first_date() -> None:
    from geounet.models.registry import build_model

    torch.manual_seed(0)
    net = build_model("siamese_unet", 6, 5, **SMALL["siamese_unet"]).eval()
    encoder = sum(p.numel() for p in net.encoder.parameters())
    assert sum(p.numel() for p in net.parameters()) < 2 * encoder  # one encoder, shared
    x = torch.rand(2, 6, 64, 64)
    with torch.no_grad():
        out = net(x)
        probs = out.softmax(1)
        # outputs are log-probabilities: background from the first date alone
        assert torch.allclose(out.exp().sum(1), torch.ones(2, 64, 64), atol=1e-5)
        changed = x.clone()
        changed[:, 3:] = torch.rand(2, 3, 64, 64)  # another post image
        again = net(changed).softmax(1)
    assert torch.allclose(probs[:, 0], again[:, 0], atol=1e-6)  # localisation: pre only
    assert not torch.allclose(probs[:, 1:], again[:, 1:], atol=1e-4)  # damage: the pair
    with pytest.raises(ModelError, match="do not split into 2 dates"):
        build_model("siamese_unet", 3, 5)
