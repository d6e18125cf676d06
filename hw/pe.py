"""Processing element: one output channel's W1A2 partial dot product, without multipliers."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.quant import ACT_BITS, ACT_LEVELS
from models.thresholds import signed_bits

from ._params import check_int
from .arith import kept
from .lane_sum import LaneSum
from .popcount import tree_levels

__all__ = ["PE"]


class PE(wiring.Component):
    """Processing element: S lanes of 2-bit activations times binary weights, accumulated.

    Each beat carries the two bit-planes ``a0``, ``a1`` of ``simd_lanes`` activation codes (one
    kernel tap, ``simd_lanes`` input channels) and the ``simd_lanes`` weight bits of this PE's
    output channel (1 = +1, 0 = -1). The PE computes, with AND gates, adders, a shift and a
    subtraction and no multiplier::

        contribution = 2 * sum_j w_j * q_j - sum_j q_j
                     = sum_b 2**b * (2 * popcount(a_b & w) - popcount(a_b))

    which is ``sum_j q_j * s_j`` over the lanes (``q_j = a0_j + 2*a1_j``), and accumulates it.
    ``sum_j w_j * q_j`` comes from a :class:`~hw.lane_sum.LaneSum`, whose first adder level adds
    two lanes' ``w * q`` in one 6-input function per bit (the AND folded in). It a beat with ``first`` set
    starts a new sum, a beat with ``last`` set emits the sum on ``o_stream`` (a beat may carry
    both). A sum continues from the previous beat when ``first`` is clear, so every group of
    beats must begin with ``first``.

    With ``subtract_ones=False`` the PE leaves out the ``popcount(a_b)`` term, which does not
    depend on the weights, and accumulates only ``sum_b 2**b * popcount(a_b & w)`` (a
    non-negative number): :class:`~hw.pe_array.PEArray` computes the left-out term once for all
    its PEs and subtracts it at the output.

    Pipeline: ``popcount_stages`` register stages of the lane-sum trees, then the accumulator
    register, which is also the output register. The whole pipeline stalls while an emitted sum waits on ``o_stream``.

    Parameters
    ----------
    simd_lanes : int
        Lanes S: input channels per beat (>= 1).
    acc_bound : int
        Largest magnitude the accumulated sum can reach (``3 * taps * channels`` of the largest
        layer); sizes the accumulator. At least ``3 * simd_lanes`` (one beat can reach that).
    popcount_stages : int
        Register stages in the popcount trees, 0 .. ``ceil(log2(simd_lanes))``.
    subtract_ones : bool
        Subtract ``popcount(a_b)`` in the PE (default) or leave it to the caller (see above).

    Members
    -------
    i_stream : ``In(stream.Signature(PE.input_layout(simd_lanes)))``
        Beats: ``planes`` (``ArrayLayout(unsigned(S), 2)``: plane 0 = code bit 0, lane ``j`` at
        bit ``j``), ``weights`` (``unsigned(S)``, lane ``j`` at bit ``j``), ``first``, ``last``.
    o_stream : ``Out(stream.Signature(acc_shape))``
        One accumulated sum per group of beats: ``signed(acc_width)``, or
        ``unsigned(acc_bound.bit_length())`` when ``subtract_ones`` is false.

    Raises
    ------
    TypeError
        If a parameter is not an integer (``subtract_ones``: not a bool).
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, simd_lanes, acc_bound, popcount_stages, subtract_ones=True):
        self._simd_lanes, self._acc_bound, self._popcount_stages = self.check_params(
            simd_lanes=simd_lanes, acc_bound=acc_bound, popcount_stages=popcount_stages)
        if not isinstance(subtract_ones, bool):
            raise TypeError(f"subtract_ones must be a bool, not {subtract_ones!r}")
        self._subtract_ones = subtract_ones
        super().__init__({
            "i_stream": In(stream.Signature(self.input_layout(self._simd_lanes))),
            "o_stream": Out(stream.Signature(self.acc_shape)),
        })

    @staticmethod
    def check_params(*, simd_lanes, acc_bound, popcount_stages):
        """Validate the array parameters a PE shares with :class:`~hw.pe_array.PEArray`.

        Returns
        -------
        tuple of int
            ``(simd_lanes, acc_bound, popcount_stages)``.

        Raises
        ------
        TypeError, ValueError
            As the constructor.
        """
        simd_lanes = check_int("simd_lanes", simd_lanes, minimum=1)
        acc_bound = check_int(
            "acc_bound", acc_bound, minimum=ACT_LEVELS * simd_lanes,
            what=f"an integer >= {ACT_LEVELS} * simd_lanes = {ACT_LEVELS * simd_lanes}")
        levels = tree_levels(simd_lanes)
        popcount_stages = check_int(
            "popcount_stages", popcount_stages, minimum=0, maximum=levels,
            what=f"an integer between 0 and {levels} (the popcount tree's levels)")
        return simd_lanes, acc_bound, popcount_stages

    @staticmethod
    def input_layout(simd_lanes):
        """Payload layout of a beat for ``simd_lanes`` lanes."""
        return data.StructLayout({
            "planes": data.ArrayLayout(unsigned(simd_lanes), ACT_BITS),
            "weights": unsigned(simd_lanes),
            "first": 1,
            "last": 1,
        })

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
    def subtract_ones(self):
        return self._subtract_ones

    @property
    def acc_width(self):
        """Width of a signed accumulator that holds ``[-acc_bound, acc_bound]``."""
        return signed_bits(-self._acc_bound, self._acc_bound)

    @property
    def acc_shape(self):
        """Shape of the emitted sum."""
        if self._subtract_ones:
            return signed(self.acc_width)
        return unsigned(self._acc_bound.bit_length())

    @property
    def latency(self):
        """Cycles from accepting a ``last`` beat to offering its sum, without stalls."""
        return self._popcount_stages + 1

    def elaborate(self, platform):
        m = Module()

        payload = self.i_stream.payload
        flags = data.StructLayout({"first": 1, "last": 1})

        # sum_j w_j * q_j (every PE) and sum_j q_j (unless the caller shares it), in lockstep: same
        # valid, same ready, same latency; the flags ride along with the first.
        trees = []
        pos = LaneSum(width=self._simd_lanes, stages=self._popcount_stages, user=flags)
        m.submodules.lane_sum = pos
        m.d.comb += [pos.i_stream.payload.planes.eq(payload.planes), pos.i_stream.payload.weights.eq(payload.weights)]
        trees.append(pos)
        if self._subtract_ones:
            ones = LaneSum(width=self._simd_lanes, stages=self._popcount_stages)
            m.submodules.code_sum = ones
            m.d.comb += [ones.i_stream.payload.planes.eq(payload.planes),
                         ones.i_stream.payload.weights.eq((1 << self._simd_lanes) - 1)]
            trees.append(ones)
        lead = trees[0]
        m.d.comb += [
            lead.i_stream.payload.user.first.eq(payload.first),
            lead.i_stream.payload.user.last.eq(payload.last),
        ]

        advance = Signal()
        acc = Signal(self.acc_shape, reset_less=True)
        o_valid = Signal()

        for tree in trees:
            m.d.comb += [
                tree.i_stream.valid.eq(self.i_stream.valid),
                tree.o_stream.ready.eq(advance),
            ]
        m.d.comb += [
            self.i_stream.ready.eq(lead.i_stream.ready),
            advance.eq(~o_valid | self.o_stream.ready),
        ]

        if self._subtract_ones:
            contribution = kept(m, (pos.o_stream.payload.sum << 1) - ones.o_stream.payload.sum, "contribution")
        else:
            contribution = pos.o_stream.payload.sum

        arrived = lead.o_stream.payload.user
        with m.If(advance):
            m.d.sync += o_valid.eq(lead.o_stream.valid & arrived.last)
            with m.If(lead.o_stream.valid):
                m.d.sync += acc.eq(Mux(arrived.first, 0, acc) + contribution)

        m.d.comb += [
            self.o_stream.payload.eq(acc),
            self.o_stream.valid.eq(o_valid),
        ]
        return m
