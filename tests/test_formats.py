import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from models.errors import FormatError
from models.formats import (Field, RecordLayout, channel_groups, ints_to_words, pack_accumulators,
                            pack_activations, pack_thresholds, pack_weights, threshold_record,
                            unpack_accumulators, unpack_activations, unpack_thresholds, unpack_weights,
                            words_to_ints)
from models.thresholds import apply_thresholds, fold_thresholds

WIDTHS = [8, 16, 32, 64, 128, 256]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 300), st.sampled_from(WIDTHS), st.integers(0, 2**31))
def test_activation_roundtrip(h, w, c, word_bits, seed):
    codes = np.random.default_rng(seed).integers(0, 4, (h, w, c)).astype(np.uint8)
    packed = pack_activations(codes, word_bits)
    assert packed.shape == (channel_groups(c, word_bits), h, w, 2, word_bits // 8)
    assert np.array_equal(unpack_activations(packed, c), codes)


def test_activation_bit_layout():
    codes = np.zeros((1, 2, 40), dtype=np.uint8)
    codes[0, 1, 0] = 1      # plane 0, bit 0 of group 0
    codes[0, 1, 33] = 2     # plane 1, bit 1 of group 1
    codes[0, 1, 39] = 3     # both planes, bit 7 of group 1
    words = words_to_ints(pack_activations(codes, 32))      # (G, H, W, 2)
    assert words[0, 0, 1, 0] == 1 and words[0, 0, 1, 1] == 0
    assert words[1, 0, 1, 0] == 1 << 7
    assert words[1, 0, 1, 1] == (1 << 1) | (1 << 7)
    assert not words[:, 0, 0].any()
    # memory order: little-endian bytes
    raw = pack_activations(codes, 32).tobytes()
    g1_pixel1_plane1 = ((1 * 1 + 0) * 2 + 1) * 2 + 1
    assert raw[g1_pixel1_plane1 * 4:(g1_pixel1_plane1 + 1) * 4] == ((1 << 1) | (1 << 7)).to_bytes(4, "little")


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([1, 3]), st.integers(1, 200), st.integers(1, 6), st.sampled_from(WIDTHS), st.integers(0, 2**31))
def test_weight_roundtrip(k, c, o, word_bits, seed):
    signs = np.where(np.random.default_rng(seed).random((k, k, c, o)) < 0.5, -1, 1).astype(np.int8)
    packed = pack_weights(signs, word_bits)
    assert packed.shape == (o, channel_groups(c, word_bits), k, k, word_bits // 8)
    assert np.array_equal(unpack_weights(packed, c), signs)


def test_weight_bit_layout():
    signs = -np.ones((3, 3, 10, 2), dtype=np.int8)
    signs[1, 2, 9, 1] = 1
    words = words_to_ints(pack_weights(signs, 8))           # (O, G, k, k)
    assert words[1, 1, 1, 2] == 1 << 1
    assert words.sum() == 1 << 1


def test_threshold_roundtrip_and_layout():
    rng = np.random.default_rng(0)
    c = 40
    table = fold_thresholds(alpha=rng.uniform(-1, 1, c), gamma=rng.normal(0, 1, c), beta=rng.normal(1, 1, c),
                            mean=rng.normal(0, 50, c), var=rng.uniform(1, 100, c), acc_bound=13824)
    layout = threshold_record(13824)
    assert layout.field("t0").width == 15 and layout.bits == 64
    packed = pack_thresholds(table)
    assert packed.shape == (c, 8)
    assert unpack_thresholds(packed, 13824) == table
    v = int.from_bytes(packed[0].tobytes(), "little")
    t0 = v & 0x7FFF
    t0 = t0 - (1 << 15) if t0 >> 14 else t0
    assert t0 == table.thresholds[0, 0]
    assert (v >> 45) & 3 == table.direction[0]


def test_record_layout_errors():
    layout = RecordLayout("r", [Field("a", 4), Field("b", 3, True)])
    assert layout.bits == 32
    v = layout.pack(a=9, b=-4)
    assert v == 9 | (0b100 << 4)
    assert layout.unpack(v) == {"a": 9, "b": -4}
    with pytest.raises(FormatError, match="a=16 does not fit unsigned 4 bits"):
        layout.pack(a=16, b=0)
    with pytest.raises(FormatError, match="b=-5 does not fit signed 3 bits"):
        layout.pack(a=0, b=-5)
    with pytest.raises(FormatError, match="missing"):
        layout.pack(a=0)
    with pytest.raises(FormatError, match="unknown"):
        layout.pack(a=0, b=0, c=1)
    with pytest.raises(ValueError, match="repeat"):
        RecordLayout("r", [Field("a", 1), Field("a", 1)])
    with pytest.raises(ValueError, match="more than"):
        RecordLayout("r", [Field("a", 40)], bits=32)
    assert "| 3:0 | `a` |" in layout.doc_table()


def test_word_helpers_and_accumulators():
    words = ints_to_words([1, 2**63 + 5], 64)
    assert list(words_to_ints(words)) == [1, 2**63 + 5]
    with pytest.raises(ValueError, match="does not fit"):
        ints_to_words([256], 8)
    acc = np.array([[[-13824, 13824, 0]]], dtype=np.int32)
    packed = pack_accumulators(acc)
    assert packed.tobytes()[:4] == (-13824).to_bytes(4, "little", signed=True)
    assert np.array_equal(unpack_accumulators(packed), acc)


@pytest.mark.parametrize("bad", [0, 12, -8, 8.0, True])
def test_word_bits_validation(bad):
    with pytest.raises(ValueError, match="word width must be a positive multiple of 8"):
        pack_activations(np.zeros((1, 1, 1), np.uint8), bad)


def test_unpack_errors():
    with pytest.raises(FormatError):
        unpack_activations(np.zeros((1, 1, 1, 3, 4), np.uint8), 4)
    with pytest.raises(FormatError, match="do not fit"):
        unpack_activations(np.zeros((1, 1, 1, 2, 4), np.uint8), 33)
    with pytest.raises(FormatError, match=r"packed thresholds must be \(C, 4\)"):
        unpack_thresholds(np.full((1, 5), 0xFF, np.uint8), 50)


def test_direction_3_is_constant():
    """Every 2-bit direction is a record the threshold unit accepts; 3 is constant, like 2."""
    layout = threshold_record(50)
    records = [layout.pack(t0=-7, t1=0, t2=9, direction=d, constant=k) for d, k in ((3, 1), (3, 3), (2, 2), (0, 0))]
    packed = np.stack([np.frombuffer(layout.to_bytes(r), np.uint8) for r in records])
    table = unpack_thresholds(packed, 50)
    assert table.direction.tolist() == [3, 3, 2, 0] and table.constant.tolist() == [1, 3, 2, 0]
    assert np.array_equal(pack_thresholds(table, layout), packed)           # read back unchanged
    acc = np.arange(-51, 52)[:, None].repeat(4, axis=1)
    codes = apply_thresholds(acc, table)
    assert (codes[:, 0] == 1).all() and (codes[:, 1] == 3).all() and (codes[:, 2] == 2).all()
    assert codes[:, 3].tolist() == [0] * 44 + [1] * 7 + [2] * 9 + [3] * 43
    # all ones: t = -1 each, direction 3, constant 3 (padding bits are ignored, as in the hardware)
    table = unpack_thresholds(np.full((1, 4), 0xFF, np.uint8), 50)
    assert table.direction.tolist() == [3] and apply_thresholds([[0]], table).tolist() == [[3]]


def test_vectorized_records_equal_the_bit_level_ones():
    rng = np.random.default_rng(4)
    layout = threshold_record(13824)
    n = 50
    values = {"t0": rng.integers(-13825, 13826, n), "t1": rng.integers(-13825, 13826, n),
              "t2": rng.integers(-13825, 13826, n), "direction": rng.integers(0, 3, n), "constant": rng.integers(0, 4, n)}
    packed = layout.pack_array(**values)
    for i in range(n):
        one = layout.pack(**{k: int(v[i]) for k, v in values.items()})
        assert packed[i].tobytes() == layout.to_bytes(one)
        assert layout.unpack(one) == {k: int(v[0]) for k, v in layout.unpack_array(packed[i:i + 1]).items()}
    with pytest.raises(FormatError, match="t0 values must be"):
        layout.pack_array(**dict(values, t0=np.full(n, 20000)))


def test_frame_pair_format():
    from models.formats import FRAME_CODE_CHANNELS, frame_pair_codes, pack_frame_pair, unpack_frame_pair
    from models.quant import thermometer_codes
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    image = pack_frame_pair(frames)
    assert image.shape == (4, 6, 8) and not image[..., 6:].any()
    assert np.array_equal(image[..., :6], frames) and np.array_equal(unpack_frame_pair(image), frames)
    codes = frame_pair_codes(image)
    assert codes.shape == (4, 6, FRAME_CODE_CHANNELS) == (4, 6, 32)
    assert np.array_equal(codes, frame_pair_codes(frames))
    assert np.array_equal(codes[..., :30], thermometer_codes(frames)) and not codes[..., 30:].any()
    image[..., 6:] = 255                                             # the two last bytes are ignored
    assert np.array_equal(frame_pair_codes(image), codes)
    with pytest.raises(ValueError, match=r"frames must be uint8 \(H, W, 6\)"):
        pack_frame_pair(frames[..., :3])
