"""A Cyclone V fractional PLL (``altera_pll``) making one clock from a reference clock."""

from amaranth.hdl import Const, Instance, IOValue, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models import board

__all__ = ["CycloneVPLL", "REF_RANGE_HZ", "OUT_RANGE_HZ", "check_hz"]

#: ``altera_pll`` has 18 output counters; unused ones are declared at 0 MHz.
_COUNTERS = 18


#: Reference and output frequency ranges accepted here (Cyclone V fractional PLL; models.board).
REF_RANGE_HZ = board.PLL_REF_RANGE_HZ
OUT_RANGE_HZ = board.PLL_OUT_RANGE_HZ


def check_hz(name, value, minimum, maximum):
    """``value`` as a float if it is a frequency in Hz within ``[minimum, maximum]``.

    Raises
    ------
    TypeError, ValueError
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a frequency in Hz, not {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum / 1e6:g} and {maximum / 1e6:g} MHz, "
                         f"not {value / 1e6:g} MHz")
    return float(value)


class CycloneVPLL(wiring.Component):
    """One output clock of an ``altera_pll`` in direct mode (Quartus picks M, N and C).

    The instance has the parameters Quartus's PLL IP generator writes for a one-output
    integer-mode PLL; Quartus constrains its output with ``derive_pll_clocks``.

    Parameters
    ----------
    refclk : IOValue or Value
        The reference clock: a clock input pin (an ``IOValue``, e.g. ``port.io`` of a requested
        resource; the PLL then takes it on the pin's dedicated clock path, with no buffer in
        between) or a one-bit fabric signal.
    ref_hz : float
        Reference clock frequency (the DE10-Nano's 50 MHz oscillators).
    out_hz : float
        Output frequency.

    Members
    -------
    rst : ``In(1)``
        Resets the PLL (active high); tie to 0 to run from configuration.
    outclk : ``Out(1)``
    locked : ``Out(1)``
        High once the output is stable; asynchronous to every clock.

    Raises
    ------
    TypeError, ValueError
        If a frequency is not a number in the range the Cyclone V PLL supports (5 to 800 MHz
        reference, 1 to 550 MHz output), or ``refclk`` is not one bit wide.
    """

    rst: In(1)
    outclk: Out(1)
    locked: Out(1)

    def __init__(self, *, refclk, ref_hz=50e6, out_hz):
        if not isinstance(refclk, IOValue):
            refclk = Value.cast(refclk)
        if len(refclk) != 1:
            raise ValueError(f"refclk must be one bit wide, not {len(refclk)}")
        self._refclk = refclk
        self._ref_hz = check_hz("ref_hz", ref_hz, *REF_RANGE_HZ)
        self._out_hz = check_hz("out_hz", out_hz, *OUT_RANGE_HZ)
        super().__init__()

    ref_hz = property(lambda self: self._ref_hz)
    out_hz = property(lambda self: self._out_hz)

    def parameters(self):
        """The ``altera_pll`` parameters, as ``{name: value}``."""
        params = {
            "fractional_vco_multiplier": "false",
            "reference_clock_frequency": f"{self._ref_hz / 1e6:.1f} MHz",
            "operation_mode": "direct",
            "number_of_clocks": 1,
        }
        for i in range(_COUNTERS):
            params[f"output_clock_frequency{i}"] = f"{self._out_hz / 1e6:.6f} MHz" if i == 0 else "0 MHz"
            params[f"phase_shift{i}"] = "0 ps"
            params[f"duty_cycle{i}"] = 50
        params.update({"pll_type": "General", "pll_subtype": "General"})
        return params

    def elaborate(self, platform):
        m = Module()
        m.submodules.pll = Instance(
            "altera_pll",
            **{f"p_{name}": value for name, value in self.parameters().items()},
            i_refclk=self._refclk,
            i_rst=self.rst,
            i_fbclk=Const(0),
            o_outclk=self.outclk,
            o_locked=self.locked,
            o_fboutclk=Signal(),      # feedback output, unused in direct mode
        )
        return m
