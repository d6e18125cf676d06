"""hw/arith.py: comparisons equal to the operators for every input, and the netlists they exist
for (carry chains where Yosys would otherwise build ripples of LUTs)."""

import itertools

from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
import pytest

from hw.arith import ge, gt, kept, le, lt
from hw.synth import run_yosys


def _values(shape):
    w = shape.width
    return range(-(1 << (w - 1)), 1 << (w - 1)) if shape.signed else range(1 << w)


@pytest.mark.parametrize("sa, sb", [(4, 3), (signed(4), signed(4)), (4, signed(3)), (signed(5), 3), (1, 4)],
                         ids=["u4-u3", "s4-s4", "u4-s3", "s5-u3", "u1-u4"])
def test_comparisons_equal_the_operators_for_every_input(sa, sb):
    a, b = Signal(sa, name="a"), Signal(sb, name="b")
    m = Module()
    helpers = (lt, le, gt, ge)
    outs = [Signal(name=f.__name__) for f in helpers]
    m.d.comb += [o.eq(f(a, b)) for o, f in zip(outs, helpers)]
    sim = Simulator(m)
    wrong = []

    async def bench(ctx):
        for x, y in itertools.product(_values(a.shape()), _values(b.shape())):
            ctx.set(a, x)
            ctx.set(b, y)
            got = [ctx.get(o) for o in outs]
            want = [int(x < y), int(x <= y), int(x > y), int(x >= y)]
            if got != want:
                wrong.append((x, y, got, want))

    sim.add_testbench(bench)
    sim.run()
    assert not wrong, f"{len(wrong)} wrong, first (a, b, lt/le/gt/ge, expected): {wrong[0]}"


def test_comparisons_with_constants():
    a = Signal(8, name="a")
    m = Module()
    o = [Signal(name=n) for n in ("gt64", "le200", "lt0", "ge255")]
    m.d.comb += [o[0].eq(gt(a, 64)), o[1].eq(le(a, 200)), o[2].eq(lt(a, 0)), o[3].eq(ge(a, 255))]
    sim = Simulator(m)

    async def bench(ctx):
        for x in range(256):
            ctx.set(a, x)
            assert [ctx.get(s) for s in o] == [x > 64, x <= 200, False, x == 255], x

    sim.add_testbench(bench)
    sim.run()


class _Tree(wiring.Component):
    """Four registered 6-bit values summed in a tree (kept or plain), or two 33-bit values compared."""

    def __init__(self, kind):
        self._kind = kind
        super().__init__({"a": In(33), "b": In(33), "c": In(6), "d": In(6), "y": Out(8)})

    def elaborate(self, platform):
        m = Module()
        regs = [Signal(len(p), name=f"r{i}") for i, p in enumerate((self.a, self.b, self.c, self.d))]
        m.d.sync += [r.eq(p) for r, p in zip(regs, (self.a, self.b, self.c, self.d))]
        ra, rb, rc, rd = regs
        if self._kind in ("kept", "plain"):
            wrap = (lambda v, n: kept(m, v, n)) if self._kind == "kept" else (lambda v, n: v)
            total = wrap(ra[:6] + rb[:6], "s0") + wrap(rc + rd, "s1")
        elif self._kind == "le":
            total = le(ra, rb)
        else:
            total = ra <= rb
        m.d.sync += self.y.eq(total)
        return m


def _levels(tmp_path, kind):
    work = tmp_path / kind
    work.mkdir()
    (work / "tree.v").write_text(verilog.convert(_Tree(kind), name="tree"))
    summary, _ = run_yosys(str(work), "tree", ["tree.v"])
    return summary


def test_kept_sums_stay_carry_chains(tmp_path):
    kept_sum, plain = _levels(tmp_path, "kept"), _levels(tmp_path, "plain")
    # two chains in a row (each entered through its LUT half: one level each)
    assert kept_sum["logic_levels"] == 2 and kept_sum["luts_by_inputs"]["arith"] > 0, kept_sum
    # Yosys's multi-operand sum of the same values: full adders in plain LUTs, deeper
    assert plain["logic_levels"] > kept_sum["logic_levels"], plain


def test_a_comparison_as_a_difference_is_one_chain(tmp_path):
    diff, plain = _levels(tmp_path, "le"), _levels(tmp_path, "cmp")
    assert diff["logic_levels"] <= 2 and diff["luts_by_inputs"]["arith"] >= 33, diff
    assert plain["logic_levels"] > diff["logic_levels"], plain
