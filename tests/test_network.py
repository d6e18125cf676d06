import os

import pytest
import yaml

from models.errors import ConfigError
from models.network import (CONFIG_DIR, DEFAULT_FLOW_CODES, DEFAULT_FLOW_RANGE, DEFAULT_PREDICT_PLANES, ENDS_FLOAT,
                            ENDS_QUANTIZED, INPUT, OP_IDENTITY, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, OUT_CODES, OUT_FLOAT,
                            OUT_RAW, NetworkConfig, build_layers, default_config_path, float_ends_config_path,
                            load_network_config)


def test_default_network_is_fully_quantized():
    cfg = load_network_config()
    assert (cfg.height, cfg.width, cfg.depth, cfg.ends) == (96, 128, 3, ENDS_QUANTIZED)
    assert (cfg.flow_codes, cfg.flow_range, cfg.predict_planes) == (4, 0.75, 4)
    layers = {layer.name: layer for layer in build_layers(cfg)}
    assert list(layers) == ["conv1", "conv2", "conv3", "conv3_1", "predict_flow3", "upsample_flow3",
                            "deconv2", "cast_conv", "predict_flow2"]
    assert all(layer.accel and layer.binary for layer in layers.values())
    expect = {  # name: (c_in, c_out, h, w, kernel, output, flow_codes, planes, weight shape)
        "conv1": (128, 64, 48, 64, 3, OUT_CODES, 0, 0, (3, 3, 128, 64)),
        "conv2": (256, 128, 24, 32, 3, OUT_CODES, 0, 0, (3, 3, 256, 128)),
        "conv3": (512, 256, 12, 16, 3, OUT_CODES, 0, 0, (3, 3, 512, 256)),
        "conv3_1": (256, 256, 12, 16, 3, OUT_CODES, 0, 0, (3, 3, 256, 256)),
        "predict_flow3": (256, 8, 12, 16, 3, OUT_CODES, 4, 0, (3, 3, 256, 2)),
        "upsample_flow3": (8, 2, 24, 32, 3, OUT_CODES, 0, 0, (3, 3, 8, 2)),
        "deconv2": (256, 64, 24, 32, 3, OUT_CODES, 0, 0, (3, 3, 256, 64)),
        "cast_conv": (194, 194, 24, 32, 1, OUT_CODES, 0, 0, (1, 1, 194, 194)),
        "predict_flow2": (194, 8, 24, 32, 3, OUT_RAW, 0, 4, (3, 3, 194, 2)),
    }
    for name, (ci, co, h, w, k, out, fc, planes, shape) in expect.items():
        layer = layers[name]
        assert (layer.c_in, layer.c_out, layer.height, layer.width, layer.kernel, layer.output, layer.flow_codes,
                layer.planes, layer.param_shapes()["weight"]) == (ci, co, h, w, k, out, fc, planes, shape), name
    assert layers["conv1"].inputs == (INPUT,) and layers["conv1"].input_op == OP_SPACE_TO_DEPTH
    assert layers["predict_flow3"].flow_range == 0.75 and not layers["predict_flow3"].bn
    assert set(layers["predict_flow3"].param_shapes()) == {"weight", "bias"}
    assert layers["predict_flow3"].param_shapes()["bias"] == (2,)
    assert set(layers["predict_flow2"].param_shapes()) == {"weight", "bias"}
    assert layers["upsample_flow3"].inputs == ("predict_flow3",) and layers["upsample_flow3"].input_op == OP_UPSAMPLE
    assert layers["cast_conv"].bn and layers["cast_conv"].bias
    assert layers["cast_conv"].inputs == ("conv2", "deconv2", "upsample_flow3")


def test_float_ends_network_matches_the_design_table():
    cfg = load_network_config(float_ends_config_path())
    assert (cfg.height, cfg.width, cfg.depth, cfg.ends) == (96, 128, 3, ENDS_FLOAT)
    assert (cfg.flow_codes, cfg.flow_range, cfg.predict_planes) == (None, None, None)
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
    assert cfg.ends == ENDS_QUANTIZED
    layers = {layer.name: layer for layer in build_layers(cfg)}
    assert layers["conv4"].c_in == 1024 and layers["conv4"].accel
    assert layers["cast_conv3"].output == OUT_CODES and layers["predict_flow3"].accel
    assert layers["deconv2"].inputs == ("cast_conv3",)
    # every predict_flow that feeds an upsample_flow is a flow quantizer; predict_flow2 has planes
    for name in ("predict_flow4", "predict_flow3"):
        assert (layers[name].flow_codes, layers[name].c_out, layers[name].output) == (4, 8, OUT_CODES), name
    assert layers["upsample_flow4"].c_in == 8 and layers["upsample_flow3"].inputs == ("predict_flow3",)
    assert layers["predict_flow2"].planes == 4 and all(layer.accel for layer in layers.values())
    # the same depth with float ends: Blueoil's division
    float_ends = NetworkConfig.from_dict({k: v for k, v in cfg.to_dict().items()
                                          if k not in ("flow_codes", "flow_range", "predict_planes")}
                                         | {"ends": ENDS_FLOAT})
    fl = {layer.name: layer for layer in build_layers(float_ends)}
    assert [n for n, layer in fl.items() if not layer.accel] == ["conv1", "upsample_flow4", "upsample_flow3",
                                                                 "predict_flow2"]
    assert fl["predict_flow3"].output == OUT_RAW and fl["cast_conv3"].output == OUT_CODES
    assert fl["cast_conv"].output == OUT_RAW
    small = load_network_config().with_resolution(48, 64)
    assert build_layers(small)[-1].height == 12 and small.ends == ENDS_QUANTIZED


def test_quantizer_keys_follow_the_configuration():
    d = base()
    d.update(flow_codes=2, flow_range=0.5, predict_planes=3)
    layers = {layer.name: layer for layer in build_layers(NetworkConfig.from_dict(d))}
    assert layers["predict_flow3"].c_out == 4 and layers["predict_flow3"].flow_range == 0.5
    assert layers["upsample_flow3"].param_shapes()["weight"] == (3, 3, 4, 2)
    assert layers["predict_flow2"].c_out == 6 and layers["predict_flow2"].param_out == 2
    # missing keys take the defaults
    for k in ("flow_codes", "flow_range", "predict_planes"):
        d.pop(k)
    cfg = NetworkConfig.from_dict(d)
    assert (cfg.flow_codes, cfg.flow_range, cfg.predict_planes) == (
        DEFAULT_FLOW_CODES, DEFAULT_FLOW_RANGE, DEFAULT_PREDICT_PLANES)
    # direct construction: the float ends have none of them
    fl = NetworkConfig(name="x", height=16, width=24, in_channels=6, depth=3, channels=(8, 16, 32),
                       deconv_channels={2: 8}, ends=ENDS_FLOAT)
    assert (fl.flow_codes, fl.flow_range, fl.predict_planes) == (None, None, None)
    with pytest.raises(ConfigError, match="ends: must be one of quantized, float, not 'both'"):
        NetworkConfig(name="x", height=16, width=24, in_channels=6, depth=3, channels=(8, 16, 32),
                      deconv_channels={2: 8}, ends="both")


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
    (lambda d: d.update(ends="fpga"), "ends: must be one of quantized, float, not 'fpga'"),
    (lambda d: d.update(flow_codes=0), "flow_codes: must be an integer >= 1, not 0"),
    (lambda d: d.update(flow_codes=2.5), "flow_codes: must be an integer >= 1, not 2.5"),
    (lambda d: d.update(flow_range=0), "flow_range: must be > 0.0, not 0"),
    (lambda d: d.update(flow_range=float("inf")), "flow_range: must be finite, not inf"),
    (lambda d: d.update(predict_planes=-2), "predict_planes: must be an integer >= 1, not -2"),
    (lambda d: d.update(ends="float"), "flow_codes: only with ends: quantized"),
    (lambda d: d["input"].update(channels=3), "input.channels: must be 6 \\(two RGB frames, the frame-pair "
                                              "format\\) with ends: quantized, not 3"),
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
    for path in (default_config_path(), float_ends_config_path()):
        cfg = load_network_config(path)
        assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    fl = load_network_config(float_ends_config_path())
    assert "flow_codes" not in fl.to_dict() and fl.to_dict()["ends"] == ENDS_FLOAT
    # the two divisions are different networks (same name, same shape, other ends)
    assert fl != load_network_config() and fl.name == load_network_config().name
