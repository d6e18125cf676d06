"""Pipelined sum of W1A2 lane products ``sum_j w_j * q_j`` (``q_j`` 2-bit codes, ``w_j`` bits), with
the AND folded into the first adder level: one 6-input function per result bit adds two lanes."""

from amaranth.hdl import Cat, Module, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.quant import ACT_BITS, ACT_LEVELS

from ._params import check_int
from .arith import kept
from .popcount import stage_cuts, tree_levels

__all__ = ["LaneSum", "pair_sum"]


def pair_sum(a0, a1, w0, b0, b1, w1):
    """``w0 * (a0 + 2*a1) + w1 * (b0 + 2*b1)`` (0..6) as three bits, each a function of the six
    inputs alone (one 6-input LUT per bit), written with gates so that synthesis maps them to
    LUTs rather than to a carry chain."""
    x0, x1 = a0 & w0, a1 & w0          # lane j's code, masked by its weight
    y0, y1 = b0 & w1, b1 & w1
    carry = x0 & y0
    s0 = x0 ^ y0
    s1 = x1 ^ y1 ^ carry
    s2 = (x1 & y1) | (carry & (x1 ^ y1))
    return Cat(s0, s1, s2)


class LaneSum(wiring.Component):
    """Sum over ``width`` lanes of ``w_j * q_j``, ``q_j = a0_j + 2*a1_j``, pipelined.

    The first level adds lane pairs with the AND gates folded in (:func:`pair_sum`: three
    6-input functions per pair, 1.5 LUTs a lane), the next levels are a binary adder tree whose
    node widths follow the largest value they can hold. ``stages`` register stages are spread
    evenly over the ``ceil(log2(width))`` levels (the last on the output), as in
    :class:`~hw.popcount.Popcount`; an optional ``user`` field travels alongside. The pipeline
    stalls as a whole (``i_stream.ready`` is "the output is free or taken").

    Parameters
    ----------
    width : int
        Lanes (>= 1).
    stages : int
        Register stages, 0 .. ``ceil(log2(width))``: also the latency.
    user : shape-like, optional
        Side-band field.

    Members
    -------
    i_stream : ``In(stream.Signature(StructLayout({"planes": ArrayLayout(unsigned(width), 2),
    "weights": unsigned(width), "user": user})))``
    o_stream : ``Out(stream.Signature(StructLayout({"sum": unsigned(sum_width), "user": user})))``
        ``sum_width`` holds ``3 * width``.

    Raises
    ------
    TypeError
        If ``width`` or ``stages`` is not an integer, or ``user`` is not shape-like.
    ValueError
        If ``width`` is not positive or ``stages`` is out of range.
    """

    def __init__(self, *, width, stages, user=None):
        self._width = check_int("width", width, minimum=1)
        levels = tree_levels(self._width)
        self._stages = check_int("stages", stages, minimum=0, maximum=levels,
                                 what=f"an integer between 0 and {levels} (the tree's levels)")
        if user is None:
            user = unsigned(0)
        try:
            Shape.cast(user)
        except TypeError:
            raise TypeError(f"user must be a shape-like object, not {user!r}") from None
        self._user = user
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({
                "planes": data.ArrayLayout(unsigned(self._width), ACT_BITS),
                "weights": unsigned(self._width), "user": user}))),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "sum": unsigned(self.sum_width), "user": user}))),
        })

    @property
    def width(self):
        return self._width

    @property
    def stages(self):
        return self._stages

    @property
    def sum_width(self):
        return (ACT_LEVELS * self._width).bit_length()

    @property
    def latency(self):
        """Cycles from accepting a beat to offering its sum, without stalls."""
        return self._stages

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        cuts = stage_cuts(tree_levels(self._width), self._stages)
        payload = self.i_stream.payload
        a0, a1, w = payload.planes[0], payload.planes[1], payload.weights

        # Level 1: lane pairs (an odd last lane alone). Each node is (value, largest value).
        nodes = []
        for j in range(0, self._width - 1, 2):
            nodes.append((pair_sum(a0[j], a1[j], w[j], a0[j + 1], a1[j + 1], w[j + 1]), 2 * ACT_LEVELS))
        if self._width % 2:
            j = self._width - 1
            nodes.append((Cat(a0[j] & w[j], a1[j] & w[j]), ACT_LEVELS))
        level = 1 if self._width > 1 else 0
        if self._width == 1:
            nodes = [(Cat(a0[0] & w[0], a1[0] & w[0]), ACT_LEVELS)]
        user, valid = payload.user, self.i_stream.valid

        def register(level, nodes, user, valid):
            regs = []
            for index, (value, top) in enumerate(nodes):
                reg = Signal(top.bit_length(), name=f"sum_l{level}_{index}", reset_less=True)
                with m.If(advance):
                    m.d.sync += reg.eq(value)
                regs.append((reg, top))
            user_reg = Signal(self._user, name=f"user_l{level}", reset_less=True)
            valid_reg = Signal(name=f"valid_l{level}")
            with m.If(advance):
                m.d.sync += [user_reg.eq(user), valid_reg.eq(valid)]
            return regs, user_reg, valid_reg

        while True:
            while cuts and cuts[0] == level:
                cuts.pop(0)
                nodes, user, valid = register(level, nodes, user, valid)
            if len(nodes) == 1:
                break
            pairs = []
            for i in range(0, len(nodes) - 1, 2):
                (x, tx), (y, ty) = nodes[i], nodes[i + 1]
                # each addition its own carry chain (hw.arith.kept): not one multi-operand sum
                pairs.append((kept(m, (x + y)[:(tx + ty).bit_length()], f"node_l{level + 1}_{i // 2}"), tx + ty))
            if len(nodes) % 2:
                pairs.append(nodes[-1])
            nodes = pairs
            level += 1
        while cuts:            # a one-lane tree has no level to cut after
            cuts.pop(0)
            nodes, user, valid = register(level, nodes, user, valid)

        (total, _), = nodes
        m.d.comb += [
            self.o_stream.payload.sum.eq(total),
            self.o_stream.payload.user.eq(user),
            self.o_stream.valid.eq(valid),
        ]
        if self._stages:
            m.d.comb += advance.eq(~self.o_stream.valid | self.o_stream.ready)
        else:
            m.d.comb += advance.eq(self.o_stream.ready)
        m.d.comb += self.i_stream.ready.eq(advance)
        return m
