"""Stimulus and expected results for the gateware, from the golden model (``models/``).

Every expected value is computed by ``models/`` (``conv_w1a2_direct``, ``apply_thresholds``)
and every packed word by ``models.formats`` (``pack_activations``, ``pack_weights_tiled``,
``threshold_record``): the testbenches never re-derive a formula or a bit position. Pure numpy,
shared by the cocotb testbenches (``sim/tb_*.py``) and the Amaranth-simulator tests.

A :class:`Transaction` is one output of a component together with the input beats that produce
it and a description of those inputs for mismatch reports.
"""

from dataclasses import dataclass, field

import numpy as np

from models.conv import acc_bound as conv_acc_bound, conv_w1a2_direct
from models.formats import channel_groups, pack_activations, pack_weights_tiled, threshold_record, \
    words_to_ints
from models.quant import ACT_LEVELS
from models.thresholds import DIR_CONSTANT, DIR_DECREASING, DIR_INCREASING, ThresholdTable, \
    apply_thresholds, signed_bits, threshold_bits

__all__ = [
    "Transaction", "ConvGroup", "conv_groups", "conv_corner_groups", "pe_transaction",
    "pe_array_transaction", "popcount_transactions", "threshold_transactions",
    "threshold_corner_transactions", "leaves",
]


@dataclass
class Transaction:
    """One output of a component and the input beats that produce it.

    Members
    -------
    beats : list
        Input payloads (values for :func:`sim.payload.pack` with the component's input layout).
    expected : object
        Expected output payload (a value :func:`sim.payload.unpack` returns).
    describe : callable
        ``describe(channel)`` -> str: the inputs behind one output channel (``None``: all).
    """

    beats: list
    expected: object
    describe: object = field(default=None, repr=False)

    def inputs(self, channel=None):
        return self.describe(channel) if self.describe else repr(self.beats)


def leaves(value, path=()):
    """Flatten an output payload into ``(path, int)`` pairs; a list index is a channel."""
    if isinstance(value, dict):
        for key, v in value.items():
            yield from leaves(v, path + (key,))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))
    else:
        yield path, int(value)


# --- W1A2 dot products: PE and PE array --------------------------------------------------------

@dataclass
class ConvGroup:
    """One output pixel of a ``k x k`` W1A2 conv over ``C`` channels, for ``P`` output channels.

    The input is a ``k x k x C`` patch (the conv's input, SAME padding, seen from the centre
    pixel), so the output is ``conv_w1a2_direct(codes, signs)`` at the centre. It reaches a PE
    array as ``k * k * ceil(C / S)`` beats: for each channel group ``g`` and tap ``(dy, dx)`` one
    activation word pair (``pack_activations``) and one weight word per PE (``pack_weights_tiled``,
    the accelerator's weight order).

    Members
    -------
    codes : numpy.ndarray of uint8, shape ``(k, k, C)``
    signs : numpy.ndarray of int8, shape ``(k, k, C, P)``
    simd_lanes : int
    label : str
    """

    codes: np.ndarray
    signs: np.ndarray
    simd_lanes: int
    label: str = "random"

    @property
    def kernel(self):
        return self.codes.shape[0]

    @property
    def channels(self):
        return self.codes.shape[2]

    @property
    def pe_count(self):
        return self.signs.shape[3]

    def expected(self):
        """The ``P`` accumulators (Python ints), by ``models.conv.conv_w1a2_direct``."""
        k = self.kernel
        acc = conv_w1a2_direct(self.codes, self.signs)
        return [int(v) for v in acc[k // 2, k // 2]]

    def words(self):
        """Per beat: ``(a0, a1, [w_0 .. w_{P-1}])`` as Python ints, in stream order."""
        s, k = self.simd_lanes, self.kernel
        acts = words_to_ints(pack_activations(self.codes, s))             # G, k, k, 2
        wts = words_to_ints(pack_weights_tiled(self.signs, self.pe_count, s))[0]   # G, k, k, P
        out = []
        for g in range(channel_groups(self.channels, s)):
            for dy in range(k):
                for dx in range(k):
                    out.append((int(acts[g, dy, dx, 0]), int(acts[g, dy, dx, 1]),
                                [int(w) for w in wts[g, dy, dx]]))
        return out

    def describe(self, channel=None, words=None):
        words = self.words() if words is None else words
        sel = range(self.pe_count) if channel is None else [channel]
        hexw = (self.simd_lanes + 3) // 4
        beats = ", ".join(
            f"(a0={a0:#0{hexw + 2}x} a1={a1:#0{hexw + 2}x} "
            + " ".join(f"w{p}={w[p]:#0{hexw + 2}x}" for p in sel) + ")"
            for a0, a1, w in words)
        return (f"{self.label}: {self.kernel}x{self.kernel}x{self.channels} patch, "
                f"{len(words)} beats [{beats}]")


def _flags(i, n):
    return {"first": int(i == 0), "last": int(i == n - 1)}


def pe_array_transaction(group):
    """Input beats and expected output of a :class:`~hw.pe_array.PEArray` for one group."""
    words = group.words()
    beats = [{"planes": [a0, a1], "weights": w, **_flags(i, len(words))}
             for i, (a0, a1, w) in enumerate(words)]
    return Transaction(beats, group.expected(), lambda c, g=group, w=words: g.describe(c, w))


def pe_transaction(group):
    """Input beats and expected output of a standalone :class:`~hw.pe.PE` (``P = 1``)."""
    if group.pe_count != 1:
        raise ValueError(f"a PE computes one output channel, not {group.pe_count}")
    words = group.words()
    beats = [{"planes": [a0, a1], "weights": w[0], **_flags(i, len(words))}
             for i, (a0, a1, w) in enumerate(words)]
    return Transaction(beats, group.expected()[0], lambda c, g=group, w=words: g.describe(0, w))


def _random_codes(rng, shape):
    style = rng.integers(4)
    if style == 0:                       # sparse, as after a ReLU-like quantizer
        return np.where(rng.random(shape) < 0.7, 0, rng.integers(1, ACT_LEVELS + 1, shape)).astype(np.uint8)
    if style == 1:                       # dense high codes
        return rng.integers(2, ACT_LEVELS + 1, shape).astype(np.uint8)
    return rng.integers(0, ACT_LEVELS + 1, shape).astype(np.uint8)


def _random_signs(rng, shape):
    p = rng.choice([0.5, 0.5, 0.1, 0.9])
    return np.where(rng.random(shape) < p, 1, -1).astype(np.int8)


def _kernels(max_kernel):
    return [k for k in (1, 3) if k <= max_kernel] or [max_kernel]


def conv_groups(rng, *, pe_count, simd_lanes, max_kernel, max_in_channels, count, max_beats=None):
    """``count`` random :class:`ConvGroup` that fit the design (``|acc| <= acc_bound``).

    Kernels are 1 or 3 (at most ``max_kernel``), channel counts 1 .. ``max_in_channels`` (often
    not a multiple of ``simd_lanes``, so the last group is padded), at most ``max_beats`` beats.
    """
    groups = []
    kernels = _kernels(max_kernel)
    for _ in range(count):
        k = int(rng.choice(kernels))
        limit = max_in_channels
        if max_beats is not None:
            limit = min(limit, max(1, max_beats // (k * k)) * simd_lanes)
        c = int(rng.integers(1, limit + 1))
        groups.append(ConvGroup(_random_codes(rng, (k, k, c)), _random_signs(rng, (k, k, c, pe_count)),
                                simd_lanes))
    return groups


def conv_corner_groups(rng, *, pe_count, simd_lanes, max_kernel, max_in_channels):
    """Directed :class:`ConvGroup` corners.

    The largest-magnitude accumulations (every code 3 over the largest layer with every weight
    +1, every weight -1, and alternating by output channel: ``+-acc_bound`` exactly), all-zero
    and all-three activations, a single-beat group and a group with one padded channel.
    """
    k, c, p, s = max_kernel, max_in_channels, pe_count, simd_lanes
    full = np.full((k, k, c), ACT_LEVELS, dtype=np.uint8)
    alternating = np.where(np.arange(p) % 2 == 0, 1, -1).astype(np.int8)
    corners = [
        ConvGroup(full, np.ones((k, k, c, p), np.int8), s, "max +acc"),
        ConvGroup(full, -np.ones((k, k, c, p), np.int8), s, "max -acc"),
        ConvGroup(full, np.broadcast_to(alternating, (k, k, c, p)).copy(), s, "max +-acc by channel"),
        ConvGroup(np.zeros((k, k, c), np.uint8), _random_signs(rng, (k, k, c, p)), s, "all-zero codes"),
        ConvGroup(full.copy(), _random_signs(rng, (k, k, c, p)), s, "all-three codes"),
        ConvGroup(_random_codes(rng, (1, 1, s)), _random_signs(rng, (1, 1, s, p)), s, "single beat"),
        ConvGroup(rng.integers(0, ACT_LEVELS + 1, (1, 1, s + 1)).astype(np.uint8),
                  _random_signs(rng, (1, 1, s + 1, p)), s, "padded group"),
    ]
    bound = conv_acc_bound(k, c)
    for g in corners:
        if g.channels > c:          # the padded group needs S + 1 channels
            continue
        assert max(abs(v) for v in g.expected()) <= bound
    return [g for g in corners if g.channels <= c]


# --- Popcount --------------------------------------------------------------------------------

def popcount_transactions(rng, *, width, count, user_width=0):
    """Random and directed words for :class:`~hw.popcount.Popcount` (expected: their popcount)."""
    full = (1 << width) - 1
    words = [0, full, 1, 1 << (width - 1), full ^ 1, 0x5555555555555555555555555555555555 & full]
    while len(words) < count:
        density = rng.choice([0.05, 0.5, 0.95])
        bits = rng.random(width) < density
        words.append(sum(1 << int(i) for i in np.flatnonzero(bits)))
    out = []
    for i, w in enumerate(words[:count]):
        user = int(rng.integers(0, 1 << user_width)) if user_width else 0
        out.append(Transaction([{"data": w, "user": user}],
                               {"count": w.bit_count(), "user": user},
                               lambda c, w=w, u=user: f"word {w:#x} user {u}"))
    return out


# --- Threshold unit --------------------------------------------------------------------------

def _records(table):
    layout = threshold_record(table.acc_bound)
    return [layout.pack(t0=t[0], t1=t[1], t2=t[2], direction=d, constant=k)
            for t, d, k in zip(table.thresholds.tolist(), table.direction.tolist(),
                               table.constant.tolist())]


def _threshold_transaction(acc, table, bypass, label):
    codes = apply_thresholds(np.asarray(acc, dtype=np.int64), table)
    if bypass:
        codes = np.zeros_like(codes)
    records = _records(table)
    beat = {"acc": [int(a) for a in acc], "thresholds": records, "bypass": int(bypass)}
    expected = {"codes": [int(c) for c in codes], "acc": [int(a) for a in acc], "bypass": int(bypass)}
    names = {DIR_INCREASING: "increasing", DIR_DECREASING: "decreasing", DIR_CONSTANT: "constant"}

    def describe(channel):
        chans = range(table.channels) if channel is None else [channel]
        return f"{label} beat (bypass={int(bypass)}): " + "; ".join(
            f"channel {c}: acc={int(acc[c])} T={table.thresholds[c].tolist()} "
            f"direction={int(table.direction[c])} ({names.get(int(table.direction[c]), 'constant (code 3)')}) "
            f"constant={int(table.constant[c])} record={records[c]:#x}" for c in chans)
    return Transaction([beat], expected, describe)


def _ranges(acc_bound):
    aw = signed_bits(-acc_bound, acc_bound)
    tw = threshold_bits(acc_bound)
    return (-(1 << (aw - 1)), (1 << (aw - 1)) - 1), (-(1 << (tw - 1)), (1 << (tw - 1)) - 1)


def _random_table(rng, channels, acc_bound):
    (alo, ahi), (tlo, thi) = _ranges(acc_bound)
    a = acc_bound
    direction = rng.choice([DIR_INCREASING, DIR_DECREASING, DIR_CONSTANT, 3], channels,
                           p=[0.4, 0.4, 0.15, 0.05]).astype(np.uint8)
    thresholds = np.zeros((channels, ACT_LEVELS), dtype=np.int64)
    for c in range(channels):
        style = rng.integers(6)
        if style == 0:                   # anywhere in the threshold field, reachable or not
            t = rng.integers(tlo, thi + 1, ACT_LEVELS)
        elif style == 1:                 # clustered: narrow bands and equal thresholds
            centre = int(rng.integers(-a, a + 1))
            t = centre + rng.integers(-2, 3, ACT_LEVELS)
        else:                            # the folded range [-A-1, A+1]
            t = rng.integers(-a - 1, a + 2, ACT_LEVELS)
        t = np.clip(t, tlo, thi)
        if style != 0 and rng.random() < 0.9:
            t = np.sort(t)
            if direction[c] == DIR_DECREASING:
                t = t[::-1]
        thresholds[c] = t
    constant = rng.integers(0, ACT_LEVELS + 1, channels).astype(np.uint8)
    return ThresholdTable(thresholds, direction, constant, acc_bound)


def _acc_near(rng, table, acc_bound):
    (alo, ahi), _ = _ranges(acc_bound)
    acc = []
    for c in range(table.channels):
        style = rng.integers(5)
        if style <= 1:                   # a threshold, or one off on either side
            v = int(table.thresholds[c, rng.integers(ACT_LEVELS)]) + int(rng.integers(-1, 2))
        elif style == 2:
            v = int(rng.choice([alo, ahi, -acc_bound, acc_bound, 0]))
        else:
            v = int(rng.integers(-acc_bound, acc_bound + 1))
        acc.append(min(max(v, alo), ahi))
    return acc


def threshold_transactions(rng, *, channels, acc_bound, count, bypass_rate=0.15):
    """``count`` random beats for :class:`~hw.threshold.ThresholdUnit`, one table each."""
    out = []
    for _ in range(count):
        table = _random_table(rng, channels, acc_bound)
        acc = _acc_near(rng, table, acc_bound)
        out.append(_threshold_transaction(acc, table, rng.random() < bypass_rate, "random"))
    return out


def threshold_corner_transactions(rng, *, channels, acc_bound):
    """Directed threshold-unit beats.

    For increasing, decreasing, constant and direction-3 tables: the accumulator equal to each
    threshold and one off on either side (every channel at once), thresholds beyond the reachable
    range (``+-(A+1)`` and the ends of the threshold field), the accumulator at ``+-A`` and at the
    ends of its field, every constant code, and bypassed beats.
    """
    a = acc_bound
    (alo, ahi), (tlo, thi) = _ranges(acc_bound)
    mid = [-(a // 3), 0, a // 3]
    tables = []
    for direction, ts in [
        (DIR_INCREASING, mid), (DIR_DECREASING, mid[::-1]),
        (DIR_INCREASING, [-a, 0, a + 1]), (DIR_DECREASING, [a, 0, -a - 1]),
        (DIR_INCREASING, [-a - 1, a + 1, thi]), (DIR_DECREASING, [a + 1, -a - 1, tlo]),
        (DIR_INCREASING, [tlo, 0, thi]), (DIR_DECREASING, [thi, 0, tlo]),
        (DIR_INCREASING, [5, 5, 5]), (DIR_DECREASING, [-5, -5, -5]),
    ]:
        th = np.tile(np.clip(ts, tlo, thi), (channels, 1)).astype(np.int64)
        tables.append((f"{'increasing' if direction == DIR_INCREASING else 'decreasing'} T={ts}",
                       ThresholdTable(th, np.full(channels, direction, np.uint8),
                                      np.zeros(channels, np.uint8), a)))
    for direction in (DIR_CONSTANT, 3):
        th = rng.integers(-a - 1, a + 2, (channels, ACT_LEVELS)).astype(np.int64)
        tables.append((f"constant (direction {direction})",
                       ThresholdTable(th, np.full(channels, direction, np.uint8),
                                      (np.arange(channels) % (ACT_LEVELS + 1)).astype(np.uint8), a)))
    mixed = _random_table(rng, channels, a)
    tables.append(("mixed directions", mixed))

    out = []
    for label, table in tables:
        accs = [[alo] * channels, [ahi] * channels, [-a] * channels, [a] * channels, [0] * channels]
        for k in range(ACT_LEVELS):
            for delta in (-1, 0, 1):
                accs.append([min(max(int(table.thresholds[c, k]) + delta, alo), ahi)
                             for c in range(channels)])
        for acc in accs:
            out.append(_threshold_transaction(acc, table, False, label))
        out.append(_threshold_transaction(accs[-2], table, True, label + ", bypassed"))
    return out
