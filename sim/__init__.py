"""Testbenches of the gateware: cocotb modules (``tb_*.py``) for the generated Verilog, their
launcher (:mod:`sim.runner`), the Amaranth-simulator tier (:mod:`sim.amaranth_tb`), and the
stimulus and expected values from the golden model (:mod:`sim.reference`)."""
