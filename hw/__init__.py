"""Amaranth gateware of the W1A2 accelerator (see docs/hardware.md).

One component per module: :mod:`hw.popcount`, :mod:`hw.pe`, :mod:`hw.pe_array`,
:mod:`hw.threshold`; the hardware configuration in :mod:`models.hwconfig`; Verilog export and
synthesis estimates in :mod:`hw.export` and :mod:`hw.synth`.
"""
