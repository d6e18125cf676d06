"""Sums and comparisons written so that synthesis puts them on the Cyclone V's carry chains.

Yosys (``synth_intel_alm``, the flow of :mod:`hw.synth`) maps a two-operand addition or
subtraction to ``MISTRAL_ALUT_ARITH`` cells: one LUT level, the carry propagating in the chain.
Two of its habits undo that on the paths of this design:

* ``alumacc`` merges a sum of sums whose intermediate results have no other reader into one
  multi-operand ``$macc``, which becomes a tree of full adders in plain LUTs (a 4-input sum of
  6-bit values: 8 levels). :func:`kept` names an intermediate sum with the ``keep`` attribute,
  so each addition stays a chain of its own;
* a magnitude comparison of two variables (``$lt``, ``$le``, ...) can come out as a ripple of
  LUTs (a 33-bit ``a <= b``: 6 levels), where the sign of their difference is one chain.
  :func:`lt`, :func:`le`, :func:`gt` and :func:`ge` are that sign bit.

The results are the same values as the plain operators for every input (Amaranth sizes a
difference of ``w``-bit values at ``w + 1`` bits, signed, so its sign bit is exact); only the
netlist differs.
"""

from amaranth.hdl import Signal, Value

__all__ = ["kept", "lt", "le", "gt", "ge"]


def kept(m, value, name):
    """``value`` through a combinational signal Yosys keeps (never merged into a wider sum)."""
    value = Value.cast(value)
    sig = Signal(value.shape(), name=name, attrs={"keep": 1})
    m.d.comb += sig.eq(value)
    return sig


def lt(a, b):
    """``a < b``: the sign of ``a - b``."""
    return (Value.cast(a) - b)[-1]


def le(a, b):
    """``a <= b``: not the sign of ``b - a``."""
    return ~(Value.cast(b) - a)[-1]


def gt(a, b):
    """``a > b``: the sign of ``b - a``."""
    return (Value.cast(b) - a)[-1]


def ge(a, b):
    """``a >= b``: not the sign of ``a - b``."""
    return ~(Value.cast(a) - b)[-1]
