"""load_config: YAML + --set overrides, validated against the dataclass schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from geounet.config import Config, dump_config, load_config, require_training_inputs
from geounet.errors import ConfigError, InputFileNotFoundError

REPO = Path(__file__).resolve().parents[1]


def _yaml(tmp_path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults():
    config = load_config(None)
    assert isinstance(config, Config)
    assert config == Config()
    assert config.data.classes == ["background", "building"]
    assert config.data.images == []
    assert config.train.tile_size == 256
    assert config.train.max_epochs == 100
    assert config.train.precision == "auto"
    assert config.model.name == "unet"
    assert config.run_dir == "runs/run"


def test_yaml_values(tmp_path):
    path = _yaml(
        tmp_path,
        """
data:
  images: [a.tif, b.tif]
  labels: labels.gpkg
  classes: [background, building, road]
  bands: [3, 2, 1]
  resolution: 0.3
model:
  name: unet
  arguments: {width: 16, depth: 3}
train:
  max_epochs: 7
  learning_rate: 0.01
  precision: bf16
run_dir: runs/x
""",
    )
    config = load_config(path)
    assert config.data.images == ["a.tif", "b.tif"]
    assert config.data.labels == "labels.gpkg"
    assert config.data.classes == ["background", "building", "road"]
    assert config.data.bands == [3, 2, 1]
    assert config.data.resolution == 0.3
    assert config.model.arguments == {"width": 16, "depth": 3}
    assert config.train.max_epochs == 7
    assert config.train.learning_rate == 0.01
    assert config.train.precision == "bf16"
    assert config.run_dir == "runs/x"
    # Untouched keys keep their defaults.
    assert config.train.batch_size == 8
    assert config.data.val_fraction == 0.2


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(_yaml(tmp_path, "# nothing here\n")) == Config()


def test_shipped_config_loads():
    config = load_config(REPO / "configs" / "buildings.yaml")
    assert config.data.classes == ["background", "building"]
    assert config.train.tile_size == 256


def test_overrides_nested_and_yaml_parsed(tmp_path):
    path = _yaml(tmp_path, "train:\n  max_epochs: 50\n  batch_size: 4\n")
    config = load_config(
        path,
        [
            "train.max_epochs=5",
            "data.images=[a.tif,b.tif]",
            "model.arguments={width: 8}",
            "train.max_minutes=1.5",
            "data.label_attribute=kind",
            "run_dir=runs/override",
        ],
    )
    assert config.train.max_epochs == 5
    assert config.train.batch_size == 4  # from the file, not overridden
    assert config.data.images == ["a.tif", "b.tif"]
    assert config.model.arguments == {"width": 8}
    assert config.train.max_minutes == 1.5
    assert config.data.label_attribute == "kind"
    assert config.run_dir == "runs/override"


def test_later_override_wins_and_null():
    config = load_config(
        None, ["train.max_minutes=3", "train.max_minutes=null", "train.seed=1", "train.seed=2"]
    )
    assert config.train.max_minutes is None
    assert config.train.seed == 2


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.max_epochs"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("epochs=5", "epochs"),
        ("train.epochs=5", "train.epochs"),
        ("data.image=a.tif", "data.image"),
        ("model.arguments.width=3", None),  # arguments is a free mapping: fine
    ],
)
def test_unknown_keys_name_full_key(override, key):
    if key is None:
        assert load_config(None, [override]).model.arguments == {"width": 3}
        return
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert f"'{key}'" in str(info.value)


def test_unknown_key_in_file(tmp_path):
    path = _yaml(tmp_path, "train:\n  max_epoch: 5\n")
    with pytest.raises(ConfigError, match=r"'train\.max_epoch'"):
        load_config(path)
    path = _yaml(tmp_path, "trian:\n  max_epochs: 5\n")
    with pytest.raises(ConfigError, match="'trian'"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.max_epochs=abc", "train.max_epochs"),
        ("train.batch_size=1.5", "train.batch_size"),
        ("train.precision=fp64", "train.precision"),
        ("train.max_epochs=true", "train.max_epochs"),
        ("train.learning_rate=false", "train.learning_rate"),
        ("train.learning_rate=fast", "train.learning_rate"),
        ("data.images=[1, 2]", "data.images[0]"),
        ("data.images={a: 1}", "data.images"),
        ("data.bands=[1, x]", "data.bands"),
        ("data.colors=[[0, 0, 0], red]", "data.colors"),
        ("model.arguments=[1, 2]", "model.arguments"),
        ("model.name=3", "model.name"),
        ("train=5", "train"),
        ("train.augment=1", "train.augment"),
    ],
)
def test_wrong_types_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert key in str(info.value)
    assert isinstance(info.value, ValueError)


def test_int_accepted_for_float():
    config = load_config(None, ["train.learning_rate=1", "data.resolution=2"])
    assert config.train.learning_rate == 1.0
    assert isinstance(config.train.learning_rate, float)
    assert config.data.resolution == 2.0
    assert isinstance(config.data.resolution, float)


@pytest.mark.parametrize(("text", "value"), [("1e-4", 1e-4), ("5E-3", 5e-3), ("2.5e-2", 0.025)])
def test_exponent_floats_accepted(tmp_path, text, value):
    # PyYAML (YAML 1.1) reads "1e-4" as a string; a float key must still accept it.
    assert load_config(None, [f"train.learning_rate={text}"]).train.learning_rate == value
    path = _yaml(tmp_path, f"train:\n  learning_rate: {text}\n")
    assert load_config(path).train.learning_rate == value


def test_single_string_for_list_of_strings():
    config = load_config(None, ["data.images=scene.tif"])
    assert config.data.images == ["scene.tif"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.val_fraction=0", "data.val_fraction"),
        ("data.val_fraction=1", "data.val_fraction"),
        ("data.test_fraction=-0.1", "data.test_fraction"),
        ("data.test_fraction=0.75", "data.test_fraction"),
        ("data.classes=[background]", "data.classes"),
        ("data.resolution=0", "data.resolution"),
        ("train.tile_size=8", "train.tile_size"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.max_epochs=0", "train.max_epochs"),
        ("train.learning_rate=0", "train.learning_rate"),
        ("train.max_minutes=0", "train.max_minutes"),
        ("data.colors=[[0, 0, 0]]", "data.colors"),
        ("data.colors=[[0, 0, 0], [300, 0, 0]]", "data.colors"),
        ("data.min_class_share=1", "data.min_class_share"),
        ("data.percentiles=[98, 2]", "data.percentiles"),
        ("data.percentiles=[2, 101]", "data.percentiles"),
        ("data.bands=[0, 1]", "data.bands"),
        ("data.bands=[1, 1]", "data.bands"),
        ("data.bands=[]", "data.bands"),
        ("data.mask_channel=-1", "data.mask_channel"),
        ("data.slice_context=-1", "data.slice_context"),
        ("data.spacing=[1, 1]", "data.spacing"),
        ("data.spacing=[1, 0, 1]", "data.spacing"),
        ("data.rgb_bands=[0, 1, 2]", "data.rgb_bands"),
        ("data.other=water", "data.other"),
        ("data.label_map={5: water}", "water"),
        ("train.tile_size=-256", "train.tile_size"),
        ("train.tile_size=[64]", "train.tile_size"),
        ("train.samples_per_epoch=0", "train.samples_per_epoch"),
        ("train.learning_rate=-0.1", "train.learning_rate"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("train.patience=0", "train.patience"),
        ("train.accumulate=0", "train.accumulate"),
        ("train.num_workers=-1", "train.num_workers"),
        ("train.devices=0", "train.devices"),
        ("train.num_nodes=0", "train.num_nodes"),
        ("train.oversample_factor=0.5", "train.oversample_factor"),
        ("train.oversample_classes=[water]", "train.oversample_classes"),
        ("train.foreground_fraction=1.5", "train.foreground_fraction"),
        ("train.ema=1", "train.ema"),
        ("train.seed=-1", "train.seed"),
        ("train.class_weights=[1]", "train.class_weights"),
        ("train.class_weights=[1, -1]", "train.class_weights"),
        ("train.ignore_index=-3", "train.ignore_index"),
        ("train.loss={ce: -1}", "train.loss"),
        ("train.loss={ce: 0, dice: 0}", "train.loss"),
        ("train.loss={crossentropy: 1}", "train.loss.crossentropy"),
        ("train.precision=fp8", "train.precision"),
        ("augmentation.flip=1.5", "augmentation.flip"),
        ("augmentation.rotate90=-0.5", "augmentation.rotate90"),
        ("augmentation.elastic=2", "augmentation.elastic"),
        ("augmentation.rotate=270", "augmentation.rotate"),
        ("augmentation.scale=[1.25, 0.8]", "augmentation.scale"),
        ("augmentation.scale=[0, 1]", "augmentation.scale"),
        ("augmentation.brightness=3", "augmentation.brightness"),
        ("augmentation.noise=-0.1", "augmentation.noise"),
        ("augmentation.hue=0.7", "augmentation.hue"),
        ("objects.mask_threshold=1.5", "objects.mask_threshold"),
        ("objects.min_area_m2=-1", "objects.min_area_m2"),
        ("objects.weights=[1, 1]", "objects.weights"),
        ("lines.width_m=-6", "lines.width_m"),
        ("lines.gap_m=-1", "lines.gap_m"),
        ("run_dir=''", "run_dir"),
    ],
)
def test_invalid_values(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert key in str(info.value)


def _numeric_keys() -> list[str]:
    """Every int and float key of the config sections (dotted), from the dataclasses."""
    import dataclasses
    import typing

    keys = []
    for section, cls in typing.get_type_hints(Config).items():
        if not dataclasses.is_dataclass(cls):
            continue
        for name, hint in typing.get_type_hints(cls).items():
            if hint in (int, float, float | None, int | None):
                keys.append(f"{section}.{name}")
    return keys


NUMERIC_KEYS = _numeric_keys()


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_every_number_key_refuses_nan_infinity_and_text(key):
    assert len(NUMERIC_KEYS) > 40
    for bad in (".nan", ".inf", "-.inf", "ten", "[1]"):
        with pytest.raises(ConfigError) as info:
            load_config(None, [f"{key}={bad}"])
        assert repr(key) in str(info.value) or key in str(info.value), (key, bad)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_yaml(tmp_path, text):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_yaml(tmp_path, text))


def test_section_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="train"):
        load_config(_yaml(tmp_path, "train: [1, 2]\n"))


def test_invalid_yaml(tmp_path):
    path = _yaml(tmp_path, "train: {max_epochs: 5\n")
    with pytest.raises(ConfigError, match="YAML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputFileNotFoundError) as info:
        load_config(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert str(missing) in str(info.value)


def test_dump_config_round_trips(tmp_path):
    config = load_config(
        None,
        [
            "data.images=[a.tif, b.tif]",
            "data.labels=l.gpkg",
            "data.classes=[bg, building, road]",
            "data.colors=[[0, 0, 0], [1, 2, 3], [4, 5, 6]]",
            "data.resolution=0.25",
            "model.arguments={width: 8, depth: 2}",
            "train.learning_rate=1e-4",
            "train.max_minutes=2.5",
            "train.precision=fp16",
        ],
    )
    path = tmp_path / "resolved.yaml"
    dump_config(config, path)
    again = load_config(path)
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert again.train.learning_rate == 1e-4


def test_require_training_inputs(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.images"):
        require_training_inputs(load_config(None))
    with pytest.raises(ConfigError, match=r"data\.labels"):
        require_training_inputs(load_config(None, ["data.images=a.tif"]))
    image = tmp_path / "a.tif"
    labels = tmp_path / "l.gpkg"
    image.write_text("x")
    config = load_config(None, [f"data.images={image}", f"data.labels={labels}"])
    with pytest.raises(InputFileNotFoundError, match=r"l\.gpkg"):
        require_training_inputs(config)
    labels.write_text("x")
    require_training_inputs(config)
    # one label file per scene: each must exist
    second = tmp_path / "second.tif"
    per_scene = load_config(
        None, [f"data.images=[{image}, {image}]", f"data.labels=[{labels}, {second}]"]
    )
    with pytest.raises(InputFileNotFoundError, match=r"second\.tif"):
        require_training_inputs(per_scene)
    second.write_text("x")
    require_training_inputs(per_scene)


def test_land_cover_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"'data\.classes' must be a list .* or 'auto'"):
        load_config(None, ["data.classes=everything"])
    with pytest.raises(ConfigError, match=r"'data\.label_map\.5': 'wetland' is not one"):
        load_config(None, ["data.classes=[a, b]", "data.label_map={5: wetland}"])
    with pytest.raises(ConfigError, match=r"'data\.other': 'rest' is not in data\.classes"):
        load_config(None, ["data.classes=[a, b]", "data.other=rest"])
    with pytest.raises(ConfigError, match=r"data\.label_attribute"):
        load_config(None, ["data.classes=auto"])
    with pytest.raises(ConfigError, match=r"'data\.colors' needs the classes listed"):
        load_config(
            None, ["data.classes=auto", "data.label_attribute=crop", "data.colors=[[0, 0, 0]]"]
        )
    with pytest.raises(ConfigError, match=r"min_class_share"):
        load_config(None, ["data.min_class_share=1.5"])
    with pytest.raises(ConfigError, match=r"boundary needs dense labels"):
        load_config(
            None,
            ["data.classes=[a, b, c]", "objects.enabled=true", "objects.target=boundary"],
        )
    with pytest.raises(ConfigError, match=r"objects.target: footprint needs a two-class"):
        load_config(None, ["data.classes=[background, a, b]", "objects.enabled=true"])
    ok = load_config(
        None,
        [
            "data.classes=[background, barley, maize, other]",
            "data.label_map={Vårbyg: barley, 216: maize}",
            "data.other=other",
            "objects.enabled=true",
            "objects.target=boundary",
        ],
    )
    assert ok.data.label_map == {"Vårbyg": "barley", 216: "maize"}


def test_empty_section_means_defaults(tmp_path):
    # A section whose keys are all commented out is null in YAML.
    path = _yaml(tmp_path, "train:\n  # max_epochs: 5\nmodel:\n")
    assert load_config(path) == Config()
    assert load_config(path, ["train.max_epochs=5"]).train.max_epochs == 5
