"""The accelerator tests' case builder (sim/accel_cases.py): a layer of the kind asked for, or a
clear error naming the kind (never a layer of another kind under the wanted label)."""

import numpy as np
import pytest

from models.engine import EngineParams
from models.hwconfig import load_hw_config
from sim.accel_runner import ENGINE_TEST_CONFIGS
from sim.accel_cases import random_layer


@pytest.mark.parametrize("config", list(ENGINE_TEST_CONFIGS))
def test_every_kind_is_drawn_as_asked(config):
    params = load_hw_config(config).engine_params
    rng = np.random.default_rng(0)
    for kernel in (1, 3):
        for op in (0, 1, 2):
            for raw in (False, True):
                layer = random_layer(rng, params, kernel=kernel, op=op, raw=raw)
                assert (layer.kernel, layer.op, layer.raw) == (kernel, op, raw)
                assert layer.signs.shape[0] == kernel and (layer.table is None) == raw


def test_a_kind_that_cannot_fit_is_an_error():
    # a 3x3 space_to_depth layer has at least 4*S input channels: beyond this accumulator bound
    params = EngineParams(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 16, act_buffer_words=8, weight_buffer_words=8)
    with pytest.raises(RuntimeError, match=r"no random layer \(kernel=3, op=1, raw=False\) fits this engine"):
        random_layer(np.random.default_rng(0), params, kernel=3, op=1, raw=False)
