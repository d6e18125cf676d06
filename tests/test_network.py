import os

import pytest
import yaml

from models.errors import ConfigError
from models.network import (CONFIG_DIR, INPUT, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, OUT_CODES, OUT_FLOAT, OUT_RAW,
                            NetworkConfig, build_layers, default_config_path, load_network_config)


def test_default_network_matches_the_design_table():
    cfg = load_network_config()
    assert (cfg.height, cfg.width, cfg.depth) == (96, 128, 3)
    layers = {layer.name: layer for layer in build_layers(cfg)}
    assert list(layers) == ["conv1", "conv2", "conv3", "conv3_1", "predict_flow3", "upsample_flow3",
                            "deconv2", "cast_conv", "predict_flow2"]
    expect = {  # name: (c_in, c_out, h, w, kernel, accel, output)
        "conv1": (24, 64, 48, 64, 3, False, OUT_CODES),
        "conv2": (256, 128, 24, 32, 3, True, OUT_CODES),
        "conv3": (512, 256, 12, 16, 3, True, OUT_CODES),
        "conv3_1": (256, 256, 12, 16, 3, True, OUT_CODES),
        "predict_flow3": (256, 2, 12, 16, 3, True, OUT_RAW),
        "upsample_flow3": (2, 2, 24, 32, 3, False, OUT_CODES),
        "deconv2": (256, 64, 24, 32, 3, True, OUT_CODES),
        "cast_conv": (194, 194, 24, 32, 1, True, OUT_RAW),
        "predict_flow2": (194, 2, 24, 32, 3, False, OUT_FLOAT),
    }
    for name, (ci, co, h, w, k, accel, out) in expect.items():
        layer = layers[name]
        assert (layer.c_in, layer.c_out, layer.height, layer.width, layer.kernel, layer.accel, layer.output) \
            == (ci, co, h, w, k, accel, out), name
    assert layers["conv1"].inputs == (INPUT,) and layers["conv1"].input_op == OP_SPACE_TO_DEPTH
    assert layers["deconv2"].input_op == OP_UPSAMPLE and layers["deconv2"].bias and layers["deconv2"].bn
    assert layers["cast_conv"].inputs == ("conv2", "deconv2", "upsample_flow3")
    accel_macs = sum(layer.macs for layer in layers.values() if layer.accel)
    assert accel_macs == 709_263_360 + 3072


def test_depth_and_resolution_are_configurable():
    cfg = load_network_config(os.path.join(CONFIG_DIR, "lmflownet_d4_96x128.yaml"))
    layers = {layer.name: layer for layer in build_layers(cfg)}
    assert layers["conv4"].c_in == 1024 and layers["conv4"].accel
    assert layers["cast_conv3"].output == OUT_CODES and layers["predict_flow3"].accel
    assert layers["deconv2"].inputs == ("cast_conv3",)
    small = load_network_config().with_resolution(48, 64)
    assert build_layers(small)[-1].height == 12


def write(tmp_path, data):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def base():
    with open(default_config_path()) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(depth=2), "depth: must be an integer >= 3"),
    (lambda d: d.update(depth=7), "depth: must be 3..6"),
    (lambda d: d["input"].update(height=100), "input: height and width must be multiples of 2\\*\\*depth = 8"),
    (lambda d: d.update(channels=[64, 128]), "channels: must be a list of 3"),
    (lambda d: d.update(channels=[64, -1, 256]), "channels\\[1\\]: must be an integer >= 1"),
    (lambda d: d.update(deconv_channels={3: 64}), "deconv_channels: must map each level \\[2\\]"),
    (lambda d: d.update(colour="red"), "colour: unknown key"),
    (lambda d: d.pop("depth"), "depth: missing"),
    (lambda d: d["input"].update(width="wide"), "input.width: must be an integer"),
    (lambda d: d.update(flow_scale=-1), "flow_scale: must be > 0.0"),
])
def test_config_errors_name_file_and_key(tmp_path, mutate, match):
    data = base()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=match) as e:
        load_network_config(path)
    assert str(path) in str(e.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_network_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_network_config(write(tmp_path, "a: [1, 2"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_network_config(write(tmp_path, "- 1\n- 2\n"))


def test_roundtrip_dict():
    cfg = load_network_config()
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
