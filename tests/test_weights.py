import os

import numpy as np
import pytest

from models.errors import WeightsError
from models.generate import random_weights
from models.network import load_network_config
from models.weights import load_weights, save_weights


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
