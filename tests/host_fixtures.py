"""Fixtures the host tests share (imported by tests/test_sw_runtime.py and tests/test_sw_faults.py):
the float-ends network on random weights (Blueoil's division: two descriptor lists a frame, three
host layers) and two random frame pairs of its size."""

import pytest

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights
from models.network import float_ends_config_path


@pytest.fixture(scope="module")
def model():
    """The float-ends network (Blueoil's division) on random weights."""
    cfg = load_network_config(float_ends_config_path())
    return QuantizedModel(cfg, random_weights(cfg, seed=0))


@pytest.fixture(scope="module")
def frames(model):
    """Two random frame pairs of the network's size."""
    frames, _ = random_frame_pairs(2, model.cfg.height, model.cfg.width, seed=100)
    return frames
