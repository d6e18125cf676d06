"""Pipelined population count: a binary adder tree with a configurable number of register stages."""

from amaranth.hdl import Module, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._params import check_int

__all__ = ["Popcount", "tree_levels", "stage_cuts"]


def tree_levels(width):
    """Number of adder levels of a binary tree that sums ``width`` one-bit values."""
    return (int(width) - 1).bit_length()


def stage_cuts(levels, stages):
    """Tree levels after which a register stage sits (``stages`` of them, the last after the root).

    Registers split the ``levels`` adder levels as evenly as the integers allow; the last one
    always registers the tree's output, so a component downstream starts from a register.
    """
    return [(i * levels) // stages for i in range(1, stages + 1)] if stages else []


class Popcount(wiring.Component):
    """Pipelined population count of a ``width``-bit word.

    The ``width`` input bits are summed by a binary adder tree of ``ceil(log2(width))`` levels;
    ``stages`` register stages are spread evenly over the tree, the last one on its output.
    With ``stages = 0`` the component is combinational (``o_stream`` mirrors ``i_stream``).

    The pipeline stalls as a whole: it advances when its output is free or taken
    (``o_stream.ready`` or not ``o_stream.valid``), and ``i_stream.ready`` is that condition.
    An optional side-band ``user`` field travels with each word and comes out beside its count,
    which lets a parent run several trees in lockstep and carry its own control bits along.

    Parameters
    ----------
    width : int
        Number of input bits (>= 1).
    stages : int
        Number of register stages, 0 .. ``ceil(log2(width))``. This is also the latency: a word
        accepted in cycle ``t`` is offered in cycle ``t + stages``.
    user : shape-like, optional
        Shape of the side-band field (default: none, a zero-width field).

    Members
    -------
    i_stream : ``In(stream.Signature(StructLayout({"data": unsigned(width), "user": user})))``
        Words to count.
    o_stream : ``Out(stream.Signature(StructLayout({"count": unsigned(count_width), "user": user})))``
        Their population counts, in order; ``count_width`` is the bit length of ``width``.

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
                "data": unsigned(self._width), "user": user}))),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "count": unsigned(self.count_width), "user": user}))),
        })

    @property
    def width(self):
        return self._width

    @property
    def stages(self):
        return self._stages

    @property
    def user(self):
        return self._user

    @property
    def count_width(self):
        """Width of the count: enough for ``width`` itself."""
        return self._width.bit_length()

    @property
    def latency(self):
        """Cycles from accepting a word to offering its count, without stalls."""
        return self._stages

    def elaborate(self, platform):
        m = Module()

        advance = Signal()
        cuts = stage_cuts(tree_levels(self._width), self._stages)

        # Each node is (value, number of input bits it sums): its width follows that number.
        nodes = [(self.i_stream.payload.data[i], 1) for i in range(self._width)]
        user = self.i_stream.payload.user
        valid = self.i_stream.valid

        def register(level, nodes, user, valid):
            regs = []
            for index, (value, count) in enumerate(nodes):
                reg = Signal(count.bit_length(), name=f"sum_l{level}_{index}", reset_less=True)
                with m.If(advance):
                    m.d.sync += reg.eq(value)
                regs.append((reg, count))
            user_reg = Signal(self._user, name=f"user_l{level}", reset_less=True)
            valid_reg = Signal(name=f"valid_l{level}")
            with m.If(advance):
                m.d.sync += [user_reg.eq(user), valid_reg.eq(valid)]
            return regs, user_reg, valid_reg

        level = 0
        while True:
            while cuts and cuts[0] == level:
                cuts.pop(0)
                nodes, user, valid = register(level, nodes, user, valid)
            if len(nodes) == 1:
                break
            pairs = []
            for i in range(0, len(nodes) - 1, 2):
                (a, na), (b, nb) = nodes[i], nodes[i + 1]
                pairs.append(((a + b)[:(na + nb).bit_length()], na + nb))
            if len(nodes) % 2:
                pairs.append(nodes[-1])
            nodes = pairs
            level += 1

        (count, _), = nodes
        m.d.comb += [
            self.o_stream.payload.count.eq(count),
            self.o_stream.payload.user.eq(user),
            self.o_stream.valid.eq(valid),
        ]
        if self._stages:
            m.d.comb += advance.eq(~self.o_stream.valid | self.o_stream.ready)
        else:
            m.d.comb += advance.eq(self.o_stream.ready)
        m.d.comb += self.i_stream.ready.eq(advance)
        return m
