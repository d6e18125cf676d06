import numpy as np
import pytest

from models.quant import (ACT_STEP, activation_code_thresholds, binarize_weights, dequantize_activations,
                          dequantize_weights, quantize_activations)


def test_codes_and_clipping():
    x = np.array([-5.0, -0.0, 0.0, 0.1, 0.5, 0.9, 1.2, 1.6, 1.9, 2.0, 7.0])
    assert quantize_activations(x).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_round_half_up_at_every_half_point():
    # The exact half points are 1/3, 1 and 5/3; 1.0 is exactly representable.
    assert quantize_activations(1.0) == 2          # half-to-even would give 2 as well: check the others
    for k, t in enumerate(activation_code_thresholds()):
        assert quantize_activations(t) == k + 1, t
        assert quantize_activations(np.nextafter(t, -np.inf)) == k, t
        assert quantize_activations(np.nextafter(t, np.inf)) == k + 1, t


def test_half_up_differs_from_half_even():
    # floor(v + 0.5) vs numpy's round-half-even on the scaled value 1.5 * x: x = 1/3 scales to 0.5.
    scaled_half = np.array([0.5, 2.5]) / 1.5   # 1/3 and 5/3 (within float rounding)
    q = quantize_activations(scaled_half)
    assert q.tolist() == [1, 3]


def test_dequantize_roundtrip():
    codes = np.arange(4, dtype=np.uint8)
    assert np.array_equal(quantize_activations(dequantize_activations(codes)), codes)
    assert np.allclose(dequantize_activations(codes), codes * ACT_STEP)


def test_nan_rejected():
    with pytest.raises(ValueError, match="NaN"):
        quantize_activations([0.5, np.nan])


def test_binarize_weights():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 5, 4))
    w[0, 0, 0, 0] = 0.0
    signs, alpha = binarize_weights(w)
    assert signs.dtype == np.int8 and set(np.unique(signs)) <= {-1, 1}
    assert signs[0, 0, 0, 0] == 1                      # exact zero -> +1
    assert np.allclose(alpha, np.abs(w).mean(axis=(0, 1, 2)))
    assert np.array_equal(signs, np.where(w >= 0, 1, -1))
    wq = dequantize_weights(signs, alpha, np.float64)
    assert np.allclose(np.abs(wq).mean(axis=(0, 1, 2)), alpha)


def test_binarize_weights_errors():
    with pytest.raises(ValueError, match="shape"):
        binarize_weights(np.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match="finite"):
        binarize_weights(np.full((1, 1, 1, 1), np.inf))


def test_thermometer_codes():
    from models.quant import INPUT_CODES, thermometer_codes, thermometer_value
    v = np.arange(256, dtype=np.uint8)[:, None]
    codes = thermometer_codes(v)
    assert codes.shape == (256, INPUT_CODES) and codes.dtype == np.uint8 and codes.max() == 3
    assert np.array_equal(codes.sum(axis=1), v[:, 0] >> 4)          # the sum is the 4-bit level
    assert np.all(np.diff(codes.astype(int), axis=1) <= 0)          # thermometer: lower levels fill first
    assert codes[15].tolist() == [0, 0, 0, 0, 0] and codes[16].tolist() == [1, 0, 0, 0, 0]
    assert codes[255].tolist() == [3, 3, 3, 3, 3]
    assert np.array_equal(thermometer_value(codes)[:, 0], (v[:, 0] >> 4) * 16.0 + 8)
    with pytest.raises(ValueError, match="pixels must be uint8"):
        thermometer_codes(np.zeros(3, np.int32))
