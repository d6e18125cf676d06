"""Hardware configuration (models/hwconfig.py): YAML validation, derived widths, targets, network checks."""

import os

import pytest

from models.hwconfig import (CONFIG_DIR, ENGINE_DEFAULTS, ENGINE_PARAM_FIELDS, TARGETS, HardwareConfig, check_network,
                             check_target, default_hw_config_path, load_hw_config, target_problems)
from models.conv import acc_bound
from models.errors import ConfigError
from models.formats import threshold_record
from models.network import build_layers, load_network_config
from models.thresholds import threshold_bits

NETWORKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "configs")

GOOD = {"name": "t", "pe_count": 4, "simd_lanes": 8, "max_kernel": 3, "max_in_channels": 32,
        "pipeline": {"popcount_stages": 1}, "clock_mhz": 100}


def test_default():
    cfg = load_hw_config()
    assert cfg.source == default_hw_config_path()
    assert (cfg.pe_count, cfg.simd_lanes, cfg.max_kernel, cfg.max_in_channels) == (64, 64, 3, 1024)
    assert cfg.macs_per_cycle == 4096 and cfg.clock_mhz == 100
    assert cfg.acc_bound == acc_bound(3, 1024) == 27648
    assert cfg.acc_width == 16
    assert cfg.threshold_bits == threshold_bits(27648) == 16
    assert cfg.threshold_record.bits == threshold_record(27648).bits == 64


@pytest.mark.parametrize("name", sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml")))
def test_shipped_configs_load(name):
    cfg = load_hw_config(name)
    assert HardwareConfig.from_dict(cfg.to_dict(), cfg.source) == cfg
    assert str(cfg.pe_count) in cfg.summary()


def test_name_defaults_to_file_name(tmp_path):
    data = dict(GOOD)
    del data["name"]
    path = tmp_path / "mine.yaml"
    path.write_text("\n".join(f"{k}: {v}" for k, v in data.items()))
    assert load_hw_config(str(path)).name == "mine"


@pytest.mark.parametrize("key,value,message", [
    ("pe_count", 0, "pe_count: must be an integer >= 1, not 0"),
    ("pe_count", 2.0, "pe_count: must be an integer >= 1, not 2.0"),
    ("simd_lanes", 12, "simd_lanes: must be a multiple of 8"),
    ("simd_lanes", 4, "simd_lanes: must be an integer >= 8, not 4"),
    ("simd_lanes", True, "simd_lanes: must be an integer >= 8, not True"),
    ("max_kernel", 2, "max_kernel: must be odd (SAME padding), not 2"),
    ("max_in_channels", -1, "max_in_channels: must be an integer >= 1, not -1"),
    ("pipeline", 3, "pipeline: must be a mapping with popcount_stages, not 3"),
    ("pipeline", {"popcount_stages": 4}, "pipeline.popcount_stages: must be at most 3 "
                                         "(the levels of a 8-input popcount tree), not 4"),
    ("pipeline", {"popcount_stages": -1}, "pipeline.popcount_stages: must be an integer >= 0, not -1"),
    ("pipeline", {}, "pipeline.popcount_stages: missing"),
    ("pipeline", {"popcount_stages": 1, "x": 1}, "pipeline.x: unknown key"),
    ("clock_mhz", 0, "clock_mhz: must be a positive number, not 0"),
    ("clock_mhz", "fast", "clock_mhz: must be a positive number, not 'fast'"),
    ("name", "", "name: must be a non-empty string"),
    ("colour", "red", "colour: unknown key (expected one of name, pe_count"),
])
def test_wrong_key(key, value, message):
    data = dict(GOOD, **{key: value})
    with pytest.raises(ConfigError) as e:
        HardwareConfig.from_dict(data, source="hw.yaml")
    assert str(e.value).startswith(f"hw.yaml: {message}")


@pytest.mark.parametrize("key", ["pe_count", "simd_lanes", "max_kernel", "max_in_channels", "pipeline",
                                 "clock_mhz"])
def test_missing_key(key):
    data = {k: v for k, v in GOOD.items() if k != key}
    with pytest.raises(ConfigError, match=rf"^hw.yaml: {key}: missing$"):
        HardwareConfig.from_dict(data, source="hw.yaml")


def test_not_a_mapping():
    with pytest.raises(ConfigError, match=r"^hw.yaml: the hardware configuration must be a mapping, not list$"):
        HardwareConfig.from_dict([1], source="hw.yaml")


def test_file_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{missing}: no such hardware configuration \(shipped: default, "):
        load_hw_config(str(missing))
    bad = tmp_path / "bad.yaml"
    bad.write_text("pe_count: [1,\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: not valid YAML"):
        load_hw_config(str(bad))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("pe_count: 1\n")
    with pytest.raises(ConfigError, match=rf"^{wrong}: simd_lanes: missing"):
        load_hw_config(str(wrong))


@pytest.mark.parametrize("network", ["lmflownet_d3_96x128.yaml", "lmflownet_d4_96x128.yaml",
                                     "lmflownet_tiny.yaml"])
def test_default_design_runs_every_network(network):
    net = load_network_config(os.path.join(NETWORKS, network))
    layers = check_network(load_hw_config(), net)
    assert layers == [layer for layer in build_layers(net) if layer.accel]
    assert max(layer.acc_bound for layer in layers) <= 27648


def test_d4_needs_1024_channels():
    """Depth 4 reaches exactly the default bound (conv4: 3x3x1024); one channel less overflows."""
    net = load_network_config(os.path.join(NETWORKS, "lmflownet_d4_96x128.yaml"))
    assert max(layer.acc_bound for layer in build_layers(net) if layer.accel) == 27648
    small = HardwareConfig.from_dict(dict(load_hw_config().to_dict(), max_in_channels=1023),
                                     source="small.yaml")
    with pytest.raises(ConfigError) as e:
        check_network(small, net)
    message = str(e.value)
    assert message.startswith(f"network lm_flownet_4_q_quarter ({net.source}) does not fit "
                              f"hardware configuration de10nano_p64_s64 (small.yaml)")
    assert "layer conv4 (3x3x1024, |acc| up to 27648)" in message
    assert "acc bound 27621" in message and "layer conv3 " not in message


def test_overflowing_layers_are_named():
    net = load_network_config(os.path.join(NETWORKS, "lmflownet_d3_96x128.yaml"))
    with pytest.raises(ConfigError) as e:
        check_network(load_hw_config("test_p8_s32"), net)
    message = str(e.value)
    for layer in build_layers(net):
        if layer.accel and layer.acc_bound > 1728:
            assert f"layer {layer.name} ({layer.kernel}x{layer.kernel}x{layer.c_in}" in message
    assert "12-bit accumulators" in message


def test_kernel_too_large():
    net = load_network_config(os.path.join(NETWORKS, "lmflownet_tiny.yaml"))
    one = HardwareConfig.from_dict(dict(GOOD, max_kernel=1, max_in_channels=10000), source="k1.yaml")
    with pytest.raises(ConfigError, match=r"max_kernel is 1, larger kernels in layer conv1 \(3x3\), "
                                          r"layer conv2 \(3x3\)"):
        check_network(one, net)


def test_engine_section():
    cfg = load_hw_config()
    assert cfg.engine == {"act_buffer_words": 8192, "weight_buffer_words": 256, "max_burst": 64}
    kw = cfg.accelerator_kwargs()
    assert (kw["pe_count"], kw["simd_lanes"], kw["acc_bound"], kw["act_buffer_words"]) == (64, 64, 27648, 8192)
    assert set(kw) == set(ENGINE_PARAM_FIELDS)
    small = HardwareConfig.from_dict(dict(GOOD, pe_count=8, engine={"max_burst": 8}))
    assert small.accelerator_kwargs()["max_burst"] == 8
    assert small.accelerator_kwargs()["act_buffer_words"] == ENGINE_DEFAULTS["act_buffer_words"]
    assert small.engine_params.pe_count == 8


@pytest.mark.parametrize("change,target,message", [
    ({"pe_count": 4}, "accelerator", "pe_count: pe_count must be a power of two"),
    ({"pe_count": 8, "simd_lanes": 32}, "de10nano", "simd_lanes: the board top needs a 128-bit bus"),
    ({"pe_count": 8, "simd_lanes": 64, "engine": {"max_burst": 256}}, "de10nano",
     "engine.max_burst: must be below 256 beats"),
    ({"pe_count": 8, "simd_lanes": 64, "clock_mhz": 600}, "de10nano", "clock_mhz: must be within the PLL's"),
])
def test_targets(change, target, message):
    cfg = HardwareConfig.from_dict(dict(GOOD, **change), "t.yaml")
    assert target_problems(cfg, "components") == []
    with pytest.raises(ConfigError, match=rf"^t.yaml: hardware configuration t cannot be built for the {target} "
                                          rf"target: .*{message}"):
        check_target(cfg, target)


def test_default_serves_every_target():
    cfg = load_hw_config()
    for target in TARGETS:
        assert check_target(cfg, target) is cfg


@pytest.mark.parametrize("engine,message", [
    ({"act_buffer_words": 3000}, "engine.act_buffer_words: must be a power of two, not 3000"),
    ({"weight_buffer_words": 0}, "engine.weight_buffer_words: must be an integer >= 1, not 0"),
    ({"fifo": 8}, "engine.fifo: unknown key"),
    ([1, 2], "engine: must be a mapping"),
])
def test_wrong_engine(engine, message):
    with pytest.raises(ConfigError, match=message):
        HardwareConfig.from_dict(dict(GOOD, engine=engine), "x.yaml")
