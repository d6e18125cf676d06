import json
import os

import numpy as np
import pytest

from models.errors import ConfigError, WeightsError
from models.generate import random_weights
from models.network import CONFIG_DIR, load_network_config
from models.weights import MANIFEST_KEY, WEIGHTS_VERSION, load_weights, save_weights


@pytest.fixture(scope="module")
def tiny():
    cfg = load_network_config(os.path.join(os.path.dirname(load_network_config().source), "lmflownet_tiny.yaml"))
    return cfg, random_weights(cfg, seed=1)


def test_roundtrip(tmp_path, tiny):
    cfg, w = tiny
    path = tmp_path / "w.npz"
    save_weights(path, w, cfg, meta={"seed": 1})
    w2, cfg2, meta = load_weights(path)
    assert cfg2 == cfg and meta == {"seed": 1}
    manifest = json.loads(np.load(path)[MANIFEST_KEY].tobytes().decode())
    assert manifest["version"] == WEIGHTS_VERSION == 2 and manifest["network"]["ends"] == "quantized"
    assert w2.keys() == w.keys()
    for name in w:
        for p in w[name]:
            assert np.array_equal(w2[name][p], w[name][p]) and w2[name][p].dtype == np.float32
    assert [f for f in os.listdir(tmp_path)] == ["w.npz"]


def broken(w, layer, param, value):
    out = {n: dict(p) for n, p in w.items()}
    if value is None:
        del out[layer][param]
    else:
        out[layer][param] = value
    return out


@pytest.mark.parametrize("change, match", [
    (lambda w: broken(w, "conv2", "weight", np.zeros((3, 3, 1, 1), np.float32)), "layer 'conv2': weight must have shape"),
    (lambda w: broken(w, "conv3", "gamma", np.full(32, np.nan, np.float32)), "layer 'conv3': gamma contains NaN"),
    (lambda w: broken(w, "conv1", "weight", w["conv1"]["weight"].astype(np.float64)), "layer 'conv1': weight must be float32, not float64"),
    (lambda w: broken(w, "deconv2", "bias", None), "layer 'deconv2': parameter 'bias' is missing"),
    (lambda w: {n: p for n, p in w.items() if n != "cast_conv"}, "layer 'cast_conv' is missing"),
    (lambda w: dict(w, extra={}), "layer 'extra' is not in network"),
    (lambda w: broken(w, "conv2", "var", -np.ones(16, np.float32)), "layer 'conv2': var must be >= 0"),
])
def test_save_rejects_bad_weights_and_writes_nothing(tmp_path, tiny, change, match):
    cfg, w = tiny
    path = tmp_path / "w.npz"
    with pytest.raises(WeightsError, match=match) as e:
        save_weights(path, change(w), cfg)
    assert str(path) in str(e.value)
    assert os.listdir(tmp_path) == []


def test_load_rejects_foreign_and_tampered_files(tmp_path, tiny):
    cfg, w = tiny
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello")
    with pytest.raises(WeightsError, match="junk.npz: not a weights"):
        load_weights(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(WeightsError, match="no __manifest__"):
        load_weights(plain)
    good = tmp_path / "good.npz"
    save_weights(good, w, cfg)
    arrays = dict(np.load(good))
    arrays["conv2/weight"] = arrays["conv2/weight"][..., :3]
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(WeightsError, match="layer 'conv2': weight is float32\\[3, 3, 32, 3\\], the manifest says"):
        load_weights(tampered)
    # loading for another network names the layer that does not fit
    with pytest.raises(WeightsError, match="layer 'conv1': weight must have shape"):
        load_weights(good, load_network_config())


def _tiny(name):
    return load_network_config(os.path.join(CONFIG_DIR, name))


def test_shapes_follow_the_division(tmp_path, tiny):
    cfg, w = tiny
    assert cfg.ends == "quantized"
    assert w["conv1"]["weight"].shape == (3, 3, 128, 8) and w["upsample_flow3"]["weight"].shape == (3, 3, 8, 2)
    assert w["predict_flow3"]["weight"].shape == (3, 3, 32, 2) and w["predict_flow2"]["bias"].shape == (2,)
    fcfg = _tiny("lmflownet_tiny_float_ends.yaml")
    fw = random_weights(fcfg, seed=1)
    assert fw["conv1"]["weight"].shape == (3, 3, 24, 8) and fw["upsample_flow3"]["weight"].shape == (3, 3, 2, 2)
    save_weights(tmp_path / "f.npz", fw, fcfg)
    save_weights(tmp_path / "q.npz", w, cfg)
    # the manifest chooses the division
    assert load_weights(tmp_path / "f.npz")[1] == fcfg and load_weights(tmp_path / "q.npz")[1] == cfg
    with pytest.raises(WeightsError, match=r"f.npz: layer 'conv1': weight must have shape \(3, 3, 128, 8\), not "
                                           r"\(3, 3, 24, 8\) \(network 'lmflownet_tiny' \(16x24, depth 3, "
                                           r"quantized ends\)\)"):
        load_weights(tmp_path / "f.npz", cfg)
    with pytest.raises(WeightsError, match="layer 'predict_flow2': weight must have shape"):
        save_weights(tmp_path / "x.npz", broken(w, "predict_flow2", "weight",
                                                np.zeros((3, 3, 26, 8), np.float32)), cfg)


def _rewrite_manifest(src, dst, change):
    arrays = dict(np.load(src))
    manifest = json.loads(arrays[MANIFEST_KEY].tobytes().decode())
    change(manifest)
    arrays[MANIFEST_KEY] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(dst, **arrays)


def test_version_1_files_are_float_ends(tmp_path):
    fcfg = _tiny("lmflownet_tiny_float_ends.yaml")
    save_weights(tmp_path / "f.npz", random_weights(fcfg, seed=1), fcfg)

    def as_version_1(m):
        m["version"] = 1
        del m["network"]["ends"]            # what version 1 wrote

    _rewrite_manifest(tmp_path / "f.npz", tmp_path / "v1.npz", as_version_1)
    _, cfg, _ = load_weights(tmp_path / "v1.npz")
    assert cfg == fcfg and cfg.ends == "float"
    _rewrite_manifest(tmp_path / "f.npz", tmp_path / "v3.npz", lambda m: m.update(version=3))
    with pytest.raises(WeightsError, match="v3.npz: manifest version must be one of 1, 2, not 3"):
        load_weights(tmp_path / "v3.npz")
    _rewrite_manifest(tmp_path / "f.npz", tmp_path / "bad.npz", lambda m: m["network"].update(ends="half"))
    with pytest.raises(ConfigError, match="bad.npz: manifest network: ends: must be one of quantized, float"):
        load_weights(tmp_path / "bad.npz")
