# amaranth: UnusedElaboratable=no
"""DE10-Nano build (hw/de10nano.py, hw/cyclonev_hps.py, hw/cyclonev_pll.py): parameter checks, the
Quartus project written without Quartus, Verilator lint of the board top, the resource report."""

import json
import re
import subprocess

import pytest
import yaml
from amaranth.hdl import Signal

from hw import de10nano
from hw.cyclonev_hps import F2SDRAM_CONFIG, MODULE, atom_stubs_verilog, wrapper_ports, wrapper_verilog
from hw.cyclonev_pll import CycloneVPLL
from hw.de10nano import (ALM_METHOD, DEVICE, PROJECT_NAME, DE10NanoTop, alm_estimate, build_project,
                         format_utilization, main, synthesize_top, utilization)
from models.errors import ConfigError
from models.hwconfig import HardwareConfig
from sim.runner import ROOT, simulator_missing

#: A small accelerator with the board's 128-bit bus.
SMALL_YAML = """\
name: board_p8_s64
pe_count: 8
simd_lanes: 64
max_kernel: 3
max_in_channels: 64
pipeline:
  popcount_stages: 1
clock_mhz: 100
engine:
  act_buffer_words: 256
  weight_buffer_words: 32
  max_burst: 16
"""
SMALL = HardwareConfig.from_dict(yaml.safe_load(SMALL_YAML), "board_p8_s64.yaml")
HDL = ROOT / "sim" / "hdl"
# Patterns Amaranth's Verilog always has (zero-width wires, width casts, unused bits, FSM cases
# without a default; comparisons Amaranth narrows to constants, e.g. a burst count that a small
# array never drives past 1): the same allowances as the co-simulation builds.
LINT_ALLOW = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-ASCRANGE", "-Wno-CASEINCOMPLETE",
              "-Wno-CMPCONST"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("de10nano")
    build_project(str(out), DE10NanoTop(config=SMALL))
    return out


def test_top_init_wrong_bus():
    with pytest.raises(ConfigError, match=r"cannot be built for the de10nano target: simd_lanes: the board top "
                                          r"needs a 128-bit bus \(the FPGA-to-SDRAM port's width: simd_lanes = 64\), "
                                          r"not 64 bits \(simd_lanes = 32\)"):
        DE10NanoTop(config=SMALL.replace(simd_lanes=32))


def test_top_init_wrong_burst():
    with pytest.raises(ConfigError, match=r"engine.max_burst: must be below 256 beats"):
        DE10NanoTop(config=SMALL.replace(engine={"max_burst": 256}))


def test_pll_parameters():
    pll = CycloneVPLL(refclk=Signal(), ref_hz=50e6, out_hz=100e6)
    p = pll.parameters()
    assert p["reference_clock_frequency"] == "50.0 MHz"
    assert p["output_clock_frequency0"] == "100.000000 MHz"
    assert p["output_clock_frequency17"] == "0 MHz" and p["number_of_clocks"] == 1
    assert p["operation_mode"] == "direct"


@pytest.mark.parametrize("out_hz,error", [(0.5e6, ValueError), (600e6, ValueError), ("100", TypeError)])
def test_pll_wrong_out_hz(out_hz, error):
    with pytest.raises(error, match=r"^out_hz must be "):
        CycloneVPLL(refclk=Signal(), out_hz=out_hz)


def test_pll_wrong_refclk():
    with pytest.raises(ValueError, match=r"^refclk must be one bit wide, not 2"):
        CycloneVPLL(refclk=Signal(2), out_hz=100e6)


def _verilog_ports(text, module):
    body = re.search(rf"module {module}\b.*?\((.*?)\);", text, re.S).group(1)
    ports = []
    for m in re.finditer(r"\b(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+)", body):
        ports.append((m.group(3), m.group(1), int(m.group(2)) + 1 if m.group(2) else 1))
    return ports


def test_hps_wrapper_and_model_agree():
    """The simulation model has exactly the wrapper's ports, so it can take its place."""
    model = (HDL / "lmflow_hps_model.v").read_text()
    assert _verilog_ports(wrapper_verilog(), MODULE) == wrapper_ports()
    assert _verilog_ports(model, MODULE) == wrapper_ports()


def test_hps_wrapper_port0_wiring():
    """Port 0 is wired as Platform Designer wires a 128-bit Avalon-MM FPGA-to-SDRAM port."""
    text = wrapper_verilog()
    for atom in ("clocks_resets", "hps2fpga_light_weight", "fpga2sdram", "hps2fpga", "fpga2hps"):
        assert f"cyclonev_hps_interface_{atom} " in text
    assert "assign sdram_waitrequest = ~cmd_ready_0;" in text
    assert ".cmd_valid_0(sdram_read | sdram_write)" in text
    assert ".cmd_data_0({18'b0, sdram_burstcount, 4'b0, sdram_address, sdram_write, sdram_read})" in text
    assert ".rd_valid_1(sdram_readdatavalid)" in text
    assert ".wr_data_1({2'b0, sdram_byteenable[15:8], 16'b0, sdram_writedata[127:64]})" in text
    assert ".cfg_port_width(12'b000000010110)" in text
    assert ".cfg_cport_type(12'b000000111111)" in text
    assert ".cfg_rfifo_cport_map(16'b0010000100000000)" in text
    assert F2SDRAM_CONFIG["cfg_cport_rfifo_map"] == (18, 0b11010000)
    assert ".port_size_config(2'b11)" in text      # the full HPS-to-FPGA and FPGA-to-HPS bridges unused


def test_project_files(project):
    for name in (f"{PROJECT_NAME}.v", f"{MODULE}.v", f"{PROJECT_NAME}.qsf", f"{PROJECT_NAME}.sdc",
                 f"build_{PROJECT_NAME}.sh"):
        assert (project / name).is_file(), name
    qsf = (project / f"{PROJECT_NAME}.qsf").read_text()
    assert "set_global_assignment -name DEVICE 5CSEBA6U23I7" in qsf
    assert 'set_global_assignment -name VERILOG_FILE "lmflow_hps.v"' in qsf
    assert f"set_global_assignment -name TOP_LEVEL_ENTITY {PROJECT_NAME}" in qsf
    assert f"set_global_assignment -name SDC_FILE {PROJECT_NAME}.sdc" in qsf
    assert 'set_location_assignment -to "clk50_0__io" PIN_V11' in qsf
    assert len(re.findall(r'set_location_assignment -to "led_\d__io"', qsf)) == 8
    assert "GENERATE_RBF_FILE ON" in qsf
    script = (project / f"build_{PROJECT_NAME}.sh").read_text()
    assert "quartus_map" in script.lower() and "quartus_asm" in script.lower()


def test_project_sdc_constrains_the_clocks(project):
    sdc = (project / f"{PROJECT_NAME}.sdc").read_text()
    assert re.search(r'create_clock -name "clk50_0__io" -period 20\.0 \[get_ports "clk50_0__io"\]', sdc)
    assert "derive_pll_clocks" in sdc and "derive_clock_uncertainty" in sdc
    assert "at 100 MHz (period 10.000 ns)" in sdc
    top = (project / f"{PROJECT_NAME}.v").read_text()
    assert '.output_clock_frequency0("100.000000 MHz")' in top
    assert '.reference_clock_frequency("50.0 MHz")' in top
    assert re.search(rf"\b{MODULE} hps \(", top)
    # The clock pin drives the PLL directly (dedicated clock path), not through an I/O buffer.
    assert re.search(r"altera_pll #\(.*?\) pll \(.*?\.refclk\(clk50_0__io\)", top, re.S)


def test_verilator_lint(project, tmp_path):
    """The board top, the HPS wrapper (atoms as port stubs) and the Intel primitive models lint
    clean: every Verilator warning other than Amaranth's usual ones is an error."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    stubs = tmp_path / "atoms.v"
    stubs.write_text(atom_stubs_verilog())
    cmd = ["verilator", "--lint-only", "--top-module", PROJECT_NAME, *LINT_ALLOW,
           str(project / f"{PROJECT_NAME}.v"), str(project / f"{MODULE}.v"), str(stubs), str(HDL / "altera_models.v")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # The wrapper and the models themselves pass with every warning on.
    for top, files in ((MODULE, [project / f"{MODULE}.v", stubs]), (MODULE, [HDL / "lmflow_hps_model.v"])):
        result = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-DECLFILENAME", "-Wno-PROCASSINIT",
                                 "--top-module", top, *map(str, files)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]


def test_main_without_quartus(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "board.yaml"
    cfg.write_text(SMALL_YAML)
    out = tmp_path / "project"
    monkeypatch.setattr(de10nano, "quartus_available", lambda: False)
    assert main(["--config", str(cfg), "--out", str(out), "--no-synth"]) == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("Quartus not found")]
    assert lines == [f"Quartus not found on PATH: no bitstream built; where Quartus is, run "
                     f"`cd {out} && sh build_{PROJECT_NAME}.sh` (makes {PROJECT_NAME}.sof and {PROJECT_NAME}.rbf)"]
    assert (out / f"{PROJECT_NAME}.qsf").is_file()
    assert not (out / "utilization.json").exists()


def test_main_bad_config(tmp_path, capsys):
    cfg = tmp_path / "narrow.yaml"
    cfg.write_text(SMALL_YAML.replace("simd_lanes: 64", "simd_lanes: 32"))
    assert main(["--config", str(cfg), "--out", str(tmp_path / "p"), "--no-synth"]) == 2
    assert "needs a 128-bit bus" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["--config", str(tmp_path / "missing.yaml"), "--no-synth"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def _summary(**luts):
    lut = {"6": 0, "5": 0, "4": 0, "3": 0, "2": 0, "1": 0, "arith": 0}
    lut.update(luts)
    return {"luts_by_inputs": lut, "luts": sum(lut.values()), "ffs": 0, "m10k": 0, "mlab": 0, "dsp": 0,
            "logic_levels": 3, "longest_carry_chain": 4, "other_cells": {}}


def test_alm_estimate():
    s = _summary(**{"6": 100, "5": 50, "4": 31, "3": 10, "arith": 20})
    s["ffs"] = 101
    a = alm_estimate(s)
    assert a["alm_logic"] == 100 + 50 + 31 and a["alm_registers"] == 51
    assert a["alm_estimate"] == 181
    assert a["alm_lower"] == max(-(-211 // 2), -(-101 // 4)) and a["alm_upper"] == 211
    s["ffs"] = 1000                       # register-bound
    assert alm_estimate(s)["alm_estimate"] == 500


def test_utilization_fit_and_margin():
    s = _summary(**{"6": 20955})
    u = utilization(s, seconds=1.0, config="x", accel_params={}, clock_hz=100e6)
    assert u["fits"] and u["alm_margin_pct"] == 50.0 and u["alm_method"] == ALM_METHOD
    assert u["device"] == DEVICE and u["dsp"] == 0
    s["m10k"] = DEVICE["m10k"] + 1
    assert not utilization(s, seconds=1.0, config="x", accel_params={}, clock_hz=100e6)["fits"]
    s = _summary(**{"6": DEVICE["alms"] + 1000})
    u = utilization(s, seconds=1.0, config="x", accel_params={}, clock_hz=100e6)
    assert not u["fits"] and u["alm_margin_pct"] < 0
    table = format_utilization(u)
    assert "ALM estimate" in table
    assert [line.split()[2] for line in table.splitlines() if line.startswith("fits 5CSEBA6")] == ["NO"]


#: A stand-in top: the PLL, an output buffer with an output enable, the HPS wrapper, and a
#: memory written in two 128-bit lanes (Yosys's own M10K rule would build it from flip-flops).
_MINI_TOP = """\
module lmflownet(input clk50_0__io, output led_0__io);
    wire clk, locked, fb;
    altera_pll #(.number_of_clocks(1)) pll (.refclk(clk50_0__io), .rst(1'b0), .fbclk(1'b0), .outclk(clk),
        .locked(locked), .fboutclk(fb));
    reg [255:0] mem [0:63];
    reg [5:0] wa = 0, ra = 0;
    reg [1:0] we = 0;
    reg [255:0] wd = 1, q = 0;
    always @(posedge clk) begin
        wa <= wa + 6'd1; ra <= ra + 6'd3; we <= we + 2'd1; wd <= {wd[254:0], ^wd ^ locked};
        if (we[0]) mem[wa][127:0] <= wd[127:0];
        if (we[1]) mem[wa][255:128] <= wd[255:128];
        q <= mem[ra];
    end
    wire wait_n, h2f_rst_n;
    lmflow_hps hps (.clk(clk), .h2f_rst_n(h2f_rst_n), .sdram_read(q[0]), .sdram_write(q[1]),
        .sdram_address(q[27:0]), .sdram_burstcount(q[35:28]), .sdram_writedata(q[255:128]),
        .sdram_byteenable(q[15:0]), .sdram_waitrequest(wait_n));
    altiobuf_out #(.use_oe("TRUE"), .number_of_channels(1)) led (.datain(^q ^ wait_n ^ h2f_rst_n), .oe(1'b1),
        .dataout(led_0__io));
endmodule
"""


def test_synthesize_top_flow(tmp_path):
    """Black boxes stay black boxes (with the output buffer's oe), a memory written in lanes
    lands in M10K blocks rather than flip-flops, nothing becomes a DSP block."""
    (tmp_path / f"{PROJECT_NAME}.v").write_text(_MINI_TOP)
    (tmp_path / f"{MODULE}.v").write_text(wrapper_verilog())
    summary, seconds = synthesize_top(str(tmp_path))
    assert summary["m10k"] == 2 * 4          # two lanes of 128 bits, 64 x 40-bit blocks
    assert summary["ffs"] < 600              # the memory is not in flip-flops (64 x 256 bits)
    assert summary["dsp"] == 0 and summary["luts"] > 0
    assert summary["other_cells"]["altera_pll"] == 1 and summary["other_cells"]["lmflow_altiobuf_out"] == 1
    assert summary["other_cells"]["cyclonev_hps_interface_fpga2sdram"] == 1
    assert summary["logic_levels"] >= 1
    u = utilization(summary, seconds=seconds, config="mini", accel_params={}, clock_hz=100e6)
    json.dumps(u)


def test_docs_led_table_matches_the_top():
    text = (ROOT / "docs" / "de10nano.md").read_text()
    block = re.search(r"<!-- leds -->\n(.*?)\n<!-- end -->", text, re.S).group(1).splitlines()[2:]
    assert block == [f"| LED{k} | {what} |" for k, what in enumerate(de10nano.LEDS)]
