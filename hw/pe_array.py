"""PE array: P processing elements sharing one activation vector, P*S W1A2 MACs per cycle."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.quant import ACT_BITS
from models.thresholds import signed_bits

from ._params import check_int
from .pe import PE

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``pe_count`` PEs of ``simd_lanes`` lanes each, fed by one activation vector.

    Every beat carries one activation vector (two bit-planes of ``simd_lanes`` codes: one kernel
    tap of ``simd_lanes`` input channels) and one ``simd_lanes``-bit weight word per PE (one
    output channel each): ``pe_count * simd_lanes`` W1A2 multiply-accumulates per beat. ``first``
    starts new sums, ``last`` emits the ``pe_count`` sums as one output beat.

    The term ``popcount(a_b)`` of the PE formula does not depend on the weights, so it is computed
    once: the P weight PEs run with ``subtract_ones=False`` and accumulate
    ``pos_p = sum_b 2**b * popcount(a_b & w_p)``; one more PE with its weights tied to all ones
    accumulates ``ones = sum_b 2**b * popcount(a_b)`` (the sum of the codes); the output stage
    computes ``acc_p = 2 * pos_p - ones``, which equals the per-beat formula summed over the beats.

    Pipeline: the PEs (``popcount_stages`` + 1 cycles) then one output register. All PEs advance
    together; the array stalls as a whole while an output beat waits on ``o_stream``.

    Parameters
    ----------
    pe_count : int
        PEs P: output channels per beat (>= 1).
    simd_lanes : int
        Lanes S: input channels per beat (>= 1).
    acc_bound : int
        Largest magnitude an accumulated sum can reach; sizes the accumulators
        (>= ``3 * simd_lanes``).
    popcount_stages : int
        Register stages in the popcount trees, 0 .. ``ceil(log2(simd_lanes))``.

    Members
    -------
    i_stream : ``In(stream.Signature(PEArray.input_layout(pe_count, simd_lanes)))``
        Beats: ``planes`` (``ArrayLayout(unsigned(S), 2)``), ``weights``
        (``ArrayLayout(unsigned(S), P)``: PE ``p``'s weight word, lane ``j`` at bit ``j``,
        1 = +1), ``first``, ``last``.
    o_stream : ``Out(stream.Signature(ArrayLayout(signed(acc_width), P)))``
        The P accumulated sums of each group of beats, PE ``p`` in element ``p``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, pe_count, simd_lanes, acc_bound, popcount_stages):
        self._pe_count = check_int("pe_count", pe_count, minimum=1)
        self._simd_lanes, self._acc_bound, self._popcount_stages = PE.check_params(
            simd_lanes=simd_lanes, acc_bound=acc_bound, popcount_stages=popcount_stages)
        self._pe_args = dict(simd_lanes=self._simd_lanes, acc_bound=self._acc_bound,
                             popcount_stages=self._popcount_stages)
        self._acc_width = signed_bits(-self._acc_bound, self._acc_bound)
        super().__init__({
            "i_stream": In(stream.Signature(self.input_layout(self._pe_count, self._simd_lanes))),
            "o_stream": Out(stream.Signature(
                data.ArrayLayout(signed(self._acc_width), self._pe_count))),
        })

    @staticmethod
    def input_layout(pe_count, simd_lanes):
        """Payload layout of a beat for ``pe_count`` PEs of ``simd_lanes`` lanes."""
        return data.StructLayout({
            "planes": data.ArrayLayout(unsigned(simd_lanes), ACT_BITS),
            "weights": data.ArrayLayout(unsigned(simd_lanes), pe_count),
            "first": 1,
            "last": 1,
        })

    @property
    def pe_count(self):
        return self._pe_count

    @property
    def simd_lanes(self):
        return self._simd_lanes

    @property
    def acc_bound(self):
        return self._acc_bound

    @property
    def popcount_stages(self):
        return self._popcount_stages

    @property
    def acc_width(self):
        return self._acc_width

    @property
    def macs_per_beat(self):
        return self._pe_count * self._simd_lanes

    @property
    def latency(self):
        """Cycles from accepting a ``last`` beat to offering its sums, without stalls."""
        return self._popcount_stages + 2

    def elaborate(self, platform):
        m = Module()

        payload = self.i_stream.payload
        pes = []
        for p in range(self._pe_count + 1):
            pe = PE(**self._pe_args, subtract_ones=False)
            m.submodules[f"pe{p}" if p < self._pe_count else "pe_ones"] = pe
            weights = payload.weights[p] if p < self._pe_count else (1 << self._simd_lanes) - 1
            m.d.comb += [
                pe.i_stream.payload.planes.eq(payload.planes),
                pe.i_stream.payload.weights.eq(weights),
                pe.i_stream.payload.first.eq(payload.first),
                pe.i_stream.payload.last.eq(payload.last),
                pe.i_stream.valid.eq(self.i_stream.valid),
            ]
            pes.append(pe)
        *weight_pes, ones_pe = pes

        advance = Signal()
        o_valid = Signal()
        result = Signal(self.o_stream.payload.shape(), reset_less=True)
        m.d.comb += [
            advance.eq(~o_valid | self.o_stream.ready),
            self.i_stream.ready.eq(ones_pe.i_stream.ready),
        ]
        for pe in pes:
            m.d.comb += pe.o_stream.ready.eq(advance)

        with m.If(advance):
            m.d.sync += o_valid.eq(ones_pe.o_stream.valid)
            with m.If(ones_pe.o_stream.valid):
                for p, pe in enumerate(weight_pes):
                    m.d.sync += result[p].eq((pe.o_stream.payload << 1) - ones_pe.o_stream.payload)

        m.d.comb += [
            self.o_stream.payload.eq(result),
            self.o_stream.valid.eq(o_valid),
        ]
        return m
