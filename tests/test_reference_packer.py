"""The testbenches' bit-by-bit packers (sim/reference_packer.py) against models.formats: written
independently from docs/formats.md, they must agree bit for bit, so a bit-order change in either
is caught here and not cancelled out in the accelerator tests."""

import numpy as np
import pytest

from models.formats import pack_activations, pack_thresholds_tiled, pack_weights_tiled, threshold_record
from models.thresholds import DIR_CONSTANT, DIR_DECREASING, DIR_INCREASING, ThresholdTable
from sim.reference_packer import (pack_activations_ref, pack_thresholds_tiled_ref, pack_weights_tiled_ref,
                                  record_bits_ref)


@pytest.mark.parametrize("h, w, c, word_bits", [(1, 1, 1, 8), (2, 3, 17, 16), (3, 2, 64, 32), (2, 2, 70, 64)])
def test_activations(h, w, c, word_bits):
    rng = np.random.default_rng(c)
    codes = rng.integers(0, 4, (h, w, c)).astype(np.uint8)
    assert np.array_equal(pack_activations_ref(codes, word_bits), pack_activations(codes, word_bits).reshape(-1))


@pytest.mark.parametrize("k, cin, o, p, s", [(1, 5, 3, 8, 16), (3, 16, 8, 8, 16), (3, 33, 20, 8, 32), (1, 64, 40, 16, 32)])
def test_tiled_weights(k, cin, o, p, s):
    rng = np.random.default_rng(cin + o)
    signs = np.where(rng.random((k, k, cin, o)) < 0.5, -1, 1).astype(np.int8)
    assert np.array_equal(pack_weights_tiled_ref(signs, p, s), pack_weights_tiled(signs, p, s).reshape(-1))


@pytest.mark.parametrize("channels, p, acc_bound", [(3, 8, 864), (13, 8, 3456), (40, 16, 27648)])
def test_tiled_thresholds(channels, p, acc_bound):
    rng = np.random.default_rng(channels)
    th = np.sort(rng.integers(-acc_bound - 1, acc_bound + 2, (channels, 3)), axis=1)
    direction = rng.choice([DIR_INCREASING, DIR_DECREASING, DIR_CONSTANT], channels).astype(np.uint8)
    th[direction == DIR_DECREASING] = th[direction == DIR_DECREASING][:, ::-1]
    th[direction == DIR_CONSTANT] = 0
    const = np.where(direction == DIR_CONSTANT, rng.integers(0, 4, channels), 0).astype(np.uint8)
    table = ThresholdTable(th.astype(np.int64), direction, const, acc_bound)
    layout = threshold_record(acc_bound)
    assert record_bits_ref(acc_bound) == layout.bits
    assert np.array_equal(pack_thresholds_tiled_ref(table, p, acc_bound),
                          pack_thresholds_tiled(table, p, layout).reshape(-1))
