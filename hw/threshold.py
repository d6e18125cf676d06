"""Threshold unit: accumulators -> 2-bit activation codes (or the raw accumulators, bypassed)."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.formats import threshold_record
from models.quant import ACT_BITS, ACT_LEVELS
from models.thresholds import DIR_DECREASING, DIR_INCREASING, signed_bits

from ._params import check_int
from .arith import ge, le
from .records import record_layout as _record_layout

__all__ = ["ThresholdUnit", "record_layout"]


def record_layout(acc_bound):
    """Amaranth view of one threshold record, built from ``models.formats.threshold_record``.

    Every field sits at the offset and has the width and signedness the record format gives it,
    so the bit layout is defined once, in :mod:`models.formats`.
    """
    return _record_layout(threshold_record(acc_bound))


class ThresholdUnit(wiring.Component):
    """Per-channel multi-threshold: turns ``channels`` accumulators into 2-bit codes per beat.

    Each channel of a beat comes with its threshold record (the layout of
    :func:`models.formats.threshold_record` for ``acc_bound``: thresholds ``t0``, ``t1``, ``t2``,
    ``direction`` and ``constant``) and is turned into a code exactly as
    :func:`models.thresholds.apply_thresholds` does:

    * ``DIR_INCREASING``: the number of ``k`` with ``acc >= t_k``;
    * ``DIR_DECREASING``: the number of ``k`` with ``acc <= t_k``;
    * any other direction (``DIR_CONSTANT``): the record's ``constant``.

    Ties count, and thresholds may lie anywhere in their signed range, reachable or not. A beat
    with ``bypass`` set is passed through unchanged for layers whose output is the raw
    accumulator: its codes are 0 and ``acc`` carries the accumulators (``acc`` always does).

    The unit processes all ``channels`` channels of a beat in one cycle (matching one output
    beat of a :class:`~hw.pe_array.PEArray` of ``channels`` PEs); it has one register stage (the
    output register) and stalls while an output beat waits on ``o_stream``.

    Parameters
    ----------
    channels : int
        Channels per beat (>= 1).
    acc_bound : int
        Accumulator bound of the design (>= 1): sizes the accumulators (``signed_bits(-A, A)``)
        and the threshold records (``threshold_record(A)``).

    Members
    -------
    i_stream : ``In(stream.Signature(ThresholdUnit.input_layout(channels, acc_bound)))``
        Beats: ``acc`` (``ArrayLayout(signed(acc_width), channels)``), ``thresholds``
        (``ArrayLayout(record_layout(acc_bound), channels)``: channel ``c``'s record in bits
        ``[c * record_bits, (c + 1) * record_bits)``), ``bypass``.
    o_stream : ``Out(stream.Signature(ThresholdUnit.output_layout(channels, acc_bound)))``
        Beats: ``codes`` (``ArrayLayout(unsigned(2), channels)``), ``acc`` (the input
        accumulators), ``bypass``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is not positive.
    """

    def __init__(self, *, channels, acc_bound):
        self._channels = check_int("channels", channels, minimum=1)
        self._acc_bound = check_int("acc_bound", acc_bound, minimum=1)
        super().__init__({
            "i_stream": In(stream.Signature(self.input_layout(self._channels, self._acc_bound))),
            "o_stream": Out(stream.Signature(self.output_layout(self._channels, self._acc_bound))),
        })

    @staticmethod
    def input_layout(channels, acc_bound):
        """Payload layout of an input beat."""
        return data.StructLayout({
            "acc": data.ArrayLayout(signed(signed_bits(-acc_bound, acc_bound)), channels),
            "thresholds": data.ArrayLayout(record_layout(acc_bound), channels),
            "bypass": 1,
        })

    @staticmethod
    def output_layout(channels, acc_bound):
        """Payload layout of an output beat."""
        return data.StructLayout({
            "codes": data.ArrayLayout(unsigned(ACT_BITS), channels),
            "acc": data.ArrayLayout(signed(signed_bits(-acc_bound, acc_bound)), channels),
            "bypass": 1,
        })

    @property
    def channels(self):
        return self._channels

    @property
    def acc_bound(self):
        return self._acc_bound

    @property
    def acc_width(self):
        return signed_bits(-self._acc_bound, self._acc_bound)

    @property
    def record(self):
        """The threshold record format (:class:`models.formats.RecordLayout`)."""
        return threshold_record(self._acc_bound)

    @property
    def latency(self):
        """Cycles from accepting a beat to offering its result, without stalls."""
        return 1

    def elaborate(self, platform):
        m = Module()

        payload = self.i_stream.payload
        advance = Signal()
        o_valid = Signal()
        result = Signal(self.o_stream.payload.shape(), reset_less=True)

        m.d.comb += [
            advance.eq(~o_valid | self.o_stream.ready),
            self.i_stream.ready.eq(advance),
        ]

        for c in range(self._channels):
            acc = payload.acc[c]
            rec = payload.thresholds[c]
            ts = [rec[f"t{k}"] for k in range(ACT_LEVELS)]
            code = Signal(ACT_BITS, name=f"code{c}")
            with m.Switch(rec.direction):
                with m.Case(DIR_INCREASING):
                    m.d.comb += code.eq(sum(ge(acc, t) for t in ts))
                with m.Case(DIR_DECREASING):
                    m.d.comb += code.eq(sum(le(acc, t) for t in ts))
                with m.Default():
                    m.d.comb += code.eq(rec.constant)
            with m.If(advance & self.i_stream.valid):
                m.d.sync += [
                    result.codes[c].eq(code & ~payload.bypass.replicate(ACT_BITS)),
                    result.acc[c].eq(acc),
                ]

        with m.If(advance):
            m.d.sync += o_valid.eq(self.i_stream.valid)
            with m.If(self.i_stream.valid):
                m.d.sync += result.bypass.eq(payload.bypass)

        m.d.comb += [
            self.o_stream.payload.eq(result),
            self.o_stream.valid.eq(o_valid),
        ]
        return m
