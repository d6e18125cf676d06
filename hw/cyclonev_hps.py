"""The Cyclone V HPS seen from the FPGA: lightweight HPS-to-FPGA bridge and an FPGA-to-SDRAM port.

The HPS interfaces are instantiated directly as the ``cyclonev_hps_interface_*`` atoms that
Quartus's Platform Designer would generate for them (as the MiSTer framework does on this
board), inside one Verilog wrapper module, :data:`MODULE`. The wrapper's text is generated here
(:func:`wrapper_verilog`) and added to the Quartus project; the Amaranth side only sees an
``Instance`` of it, so a simulation can put a model with the same ports in its place
(``sim/hdl/lmflow_hps_model.v``).

FPGA-to-SDRAM configuration
    The SDRAM controller's port configuration (widths, FIFO assignment, read/write) is static:
    the preloader programs it at boot, and the FPGA side must be built for the same layout.
    The wrapper declares the layout of the DE10-Nano's standard preloader (mainline U-Boot
    ``board/terasic/de10-nano`` and MiSTer's: ``cportwidth`` 0x44555, ``cportrdwr`` 0x5A56A,
    ...), which is the one MiSTer's ``sysmem`` uses: command port 0 is a 128-bit Avalon-MM
    read/write port on read and write FIFOs 0 and 1, ports 1 and 2 are 64-bit ports on FIFOs 2
    and 3. The accelerator uses port 0 (:data:`SDRAM_DATA_WIDTH` bits, word addresses of
    :data:`SDRAM_ADDR_WIDTH` bits covering the 4 GiB space, 8-bit burst counts); ports 1 and 2
    stay idle. The atom signals of port 0 are wired exactly as Platform Designer wires a
    128-bit Avalon-MM port: the command is ``{burstcount, address, write, read}`` on
    ``cmd_data_0`` with ``cmd_valid_0 = read | write`` and ``waitrequest = ~cmd_ready_0``;
    write data and byte enables go to write FIFOs 0 (low half) and 1 (high half), read data
    come from read FIFOs 0 and 1 with ``readdatavalid = rd_valid_1``.

Lightweight HPS-to-FPGA bridge
    An AXI3 master, 32-bit data, 21-bit byte addresses (the 2 MiB window at 0xFF200000 on the
    ARM side), 12-bit IDs, clocked by the FPGA (``clk``); the atom crosses clock domains.

The HPS-to-FPGA and FPGA-to-HPS AXI bridges are declared unused, as Platform Designer does.
"""

from amaranth.hdl import ClockSignal, Instance, Module, Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models import board

from .avalon_merge import ReadWriteMasterSignature
from .axi3 import AXI3Signature

__all__ = ["CycloneVHPS", "MODULE", "LW_ADDR_WIDTH", "LW_ID_WIDTH", "SDRAM_DATA_WIDTH",
           "SDRAM_ADDR_WIDTH", "SDRAM_BURST_WIDTH", "wrapper_ports", "wrapper_verilog", "atom_stubs_verilog"]

#: Name of the wrapper module (and of its file, ``MODULE + ".v"``).
MODULE = "lmflow_hps"
# The port widths are board facts the host shares: defined once in models.board.
LW_ADDR_WIDTH = board.LW_ADDR_WIDTH
LW_ID_WIDTH = board.LW_ID_WIDTH
SDRAM_DATA_WIDTH = board.F2SDRAM_DATA_WIDTH
SDRAM_ADDR_WIDTH = board.F2SDRAM_ADDR_WIDTH
SDRAM_BURST_WIDTH = board.F2SDRAM_BURST_WIDTH

#: FPGA-to-SDRAM static configuration of the standard DE10-Nano preloader (see the module doc).
F2SDRAM_CONFIG = {
    "cfg_axi_mm_select": (6, 0b000000),                 # every port Avalon-MM
    "cfg_port_width": (12, 0b000000_01_01_10),          # 2 bits per port: port 0 128, ports 1, 2 64
    "cfg_cport_type": (12, 0b000000_11_11_11),          # 2 bits per port: read and write
    "cfg_cport_rfifo_map": (18, 0b000_000_000_011_010_000),   # 3 bits per port: first read FIFO
    "cfg_cport_wfifo_map": (18, 0b000_000_000_011_010_000),   # 3 bits per port: first write FIFO
    "cfg_rfifo_cport_map": (16, 0b0010_0001_0000_0000),  # 4 bits per FIFO: its command port
    "cfg_wfifo_cport_map": (16, 0b0010_0001_0000_0000),
}


def _lw_signature():
    return AXI3Signature(addr_width=LW_ADDR_WIDTH, data_width=32, id_width=LW_ID_WIDTH)


def _sdram_signature():
    return ReadWriteMasterSignature(addr_width=SDRAM_ADDR_WIDTH, data_width=SDRAM_DATA_WIDTH,
                                    burst_width=SDRAM_BURST_WIDTH)


def wrapper_ports():
    """The wrapper's ports as ``(name, direction, width)``, direction ``"input"``/``"output"``.

    ``clk`` and ``h2f_rst_n``, then ``lw_<axi member>`` (outputs where the HPS drives) and
    ``sdram_<avalon member>`` (inputs where the FPGA drives).
    """
    ports = [("clk", "input", 1), ("h2f_rst_n", "output", 1)]
    for name, member in _lw_signature().members.items():
        ports.append((f"lw_{name}", "output" if member.flow == Out else "input", Shape.cast(member.shape).width))
    for name, member in _sdram_signature().members.items():
        ports.append((f"sdram_{name}", "input" if member.flow == Out else "output", Shape.cast(member.shape).width))
    return ports


def _decl(direction, width, name):
    return f"    {direction} {'' if width == 1 else f'[{width - 1}:0] '}{name}"


def _bits(width, value):
    return f"{width}'b{value:0{width}b}"


def _instance(module, name, connections):
    body = ",\n".join(f"        .{port}({expr})" for port, expr in connections)
    return f"    {module} {name} (\n{body}\n    );\n"


def _atom_connections():
    """``{atom module: (instance name, [(port, expression)])}`` of the wrapper."""
    lw = [("clk", "clk")] + [(name, f"lw_{name}") for name in _lw_signature().members]
    f2s = [(port, _bits(width, value)) for port, (width, value) in F2SDRAM_CONFIG.items()]
    f2s += [(f"cmd_port_clk_{i}", "clk") for i in range(3)]
    f2s += [("cmd_valid_0", "sdram_read | sdram_write"), ("cmd_valid_1", "1'b0"), ("cmd_valid_2", "1'b0"),
            ("cmd_ready_0", "cmd_ready_0"),
            ("cmd_data_0", "{18'b0, sdram_burstcount, 4'b0, sdram_address, sdram_write, sdram_read}"),
            ("cmd_data_1", "60'b0"), ("cmd_data_2", "60'b0")]
    f2s += [(f"rd_clk_{i}", "clk") for i in range(4)] + [(f"rd_ready_{i}", "1'b1") for i in range(4)]
    f2s += [("rd_data_0", "sdram_readdata[63:0]"), ("rd_data_1", "sdram_readdata[127:64]"),
            ("rd_valid_1", "sdram_readdatavalid")]
    f2s += [(f"wr_clk_{i}", "clk") for i in range(4)]
    f2s += [("wr_data_0", "{2'b0, sdram_byteenable[7:0], 16'b0, sdram_writedata[63:0]}"),
            ("wr_data_1", "{2'b0, sdram_byteenable[15:8], 16'b0, sdram_writedata[127:64]}"),
            ("wr_data_2", "90'b0"), ("wr_data_3", "90'b0")]
    f2s += [(f"wrack_ready_{i}", "1'b1") for i in range(3)]
    return {
        "cyclonev_hps_interface_clocks_resets": ("clocks_resets", [
            ("f2h_pending_rst_ack", "1'b1"), ("f2h_warm_rst_req_n", "1'b1"), ("f2h_dbg_rst_req_n", "1'b1"),
            ("f2h_cold_rst_req_n", "1'b1"), ("h2f_rst_n", "h2f_rst_n")]),
        "cyclonev_hps_interface_dbg_apb": ("debug_apb", [("DBG_APB_DISABLE", "1'b0"), ("P_CLK_EN", "1'b0")]),
        "cyclonev_hps_interface_tpiu_trace": ("tpiu", [("traceclk_ctl", "1'b1")]),
        "cyclonev_hps_interface_boot_from_fpga": ("boot_from_fpga", [
            ("boot_from_fpga_ready", "1'b0"), ("boot_from_fpga_on_failure", "1'b0"), ("bsel_en", "1'b0"),
            ("csel_en", "1'b0"), ("csel", "2'b01"), ("bsel", "3'b001")]),
        "cyclonev_hps_interface_fpga2hps": ("fpga2hps", [("port_size_config", "2'b11")]),
        "cyclonev_hps_interface_hps2fpga": ("hps2fpga", [("port_size_config", "2'b11")]),
        "cyclonev_hps_interface_hps2fpga_light_weight": ("hps2fpga_light_weight", lw),
        "cyclonev_hps_interface_fpga2sdram": ("f2sdram", f2s),
    }


def wrapper_verilog():
    """Verilog text of the :data:`MODULE` wrapper around the HPS atoms."""
    ports = ",\n".join(_decl(d, w, n) for n, d, w in wrapper_ports())
    lines = [
        "// Cyclone V HPS interfaces for LMFlowNet on the DE10-Nano (generated by hw/cyclonev_hps.py).",
        "// Lightweight HPS-to-FPGA bridge (AXI3 master, 32-bit) and FPGA-to-SDRAM command port 0",
        "// (Avalon-MM, 128-bit, word addresses) in the standard DE10-Nano preloader's port layout.",
        f"module {MODULE} (\n{ports}\n);",
        "    wire cmd_ready_0;",
        "    assign sdram_waitrequest = ~cmd_ready_0;",
        "",
    ]
    for module, (name, conns) in _atom_connections().items():
        lines.append(_instance(module, name, conns))
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _atom_ports():
    """Port names, directions and widths of the atoms, as far as the wrapper uses them."""
    lw = [("clk", "input", 1)] + [(name, "output" if member.flow == Out else "input", Shape.cast(member.shape).width)
                                   for name, member in _lw_signature().members.items()]
    f2s = [(port, "input", width) for port, (width, _) in F2SDRAM_CONFIG.items()]
    for i in range(3):
        f2s += [(f"cmd_port_clk_{i}", "input", 1), (f"cmd_valid_{i}", "input", 1),
                (f"cmd_ready_{i}", "output", 1), (f"cmd_data_{i}", "input", 60), (f"wrack_ready_{i}", "input", 1)]
    for i in range(4):
        f2s += [(f"rd_clk_{i}", "input", 1), (f"rd_ready_{i}", "input", 1), (f"rd_data_{i}", "output", 64),
                (f"rd_valid_{i}", "output", 1), (f"wr_clk_{i}", "input", 1), (f"wr_data_{i}", "input", 90)]
    return {
        "cyclonev_hps_interface_clocks_resets": [
            ("f2h_pending_rst_ack", "input", 1), ("f2h_warm_rst_req_n", "input", 1),
            ("f2h_dbg_rst_req_n", "input", 1), ("f2h_cold_rst_req_n", "input", 1), ("h2f_rst_n", "output", 1)],
        "cyclonev_hps_interface_dbg_apb": [("DBG_APB_DISABLE", "input", 1), ("P_CLK_EN", "input", 1)],
        "cyclonev_hps_interface_tpiu_trace": [("traceclk_ctl", "input", 1)],
        "cyclonev_hps_interface_boot_from_fpga": [
            ("boot_from_fpga_ready", "input", 1), ("boot_from_fpga_on_failure", "input", 1),
            ("bsel_en", "input", 1), ("csel_en", "input", 1), ("csel", "input", 2), ("bsel", "input", 3)],
        "cyclonev_hps_interface_fpga2hps": [("port_size_config", "input", 2)],
        "cyclonev_hps_interface_hps2fpga": [("port_size_config", "input", 2)],
        "cyclonev_hps_interface_hps2fpga_light_weight": lw,
        "cyclonev_hps_interface_fpga2sdram": f2s,
    }


def atom_stubs_verilog():
    """Empty stand-ins for the HPS atoms (outputs tied to 0), for Verilator lint and Yosys.

    Quartus has the real atoms; these only declare the ports the wrapper connects, with their
    directions and widths, so that other tools can elaborate the wrapper.
    """
    out = ["// Port-only stand-ins for the Cyclone V HPS atoms (generated by hw/cyclonev_hps.py).",
           "/* verilator lint_off UNUSEDSIGNAL */"]
    connections = _atom_connections()
    for module, ports in _atom_ports().items():
        used = {port for port, _ in connections[module][1]}
        ports = [p for p in ports if p[0] in used]
        decls = ",\n".join(_decl(d, w, n) for n, d, w in ports)
        out.append(f"(* blackbox *)\nmodule {module} (\n{decls}\n);")
        for n, d, w in ports:
            if d == "output":
                out.append(f"    assign {n} = {w}'b0;")
        out.append("endmodule\n")
    out.append("/* verilator lint_on UNUSEDSIGNAL */")
    return "\n".join(out) + "\n"


class CycloneVHPS(wiring.Component):
    """The HPS interfaces the accelerator uses, as one instance of the :data:`MODULE` wrapper.

    The wrapper runs on the component's ``sync`` clock (the atoms cross into the HPS clock
    domains themselves). When elaborated for a platform, the wrapper's Verilog
    (:func:`wrapper_verilog`) is added to the platform's files as ``lmflow_hps.v``.

    Members
    -------
    lw : ``Out(AXI3Signature(addr_width=21, data_width=32, id_width=12))``
        The lightweight HPS-to-FPGA bridge: an AXI3 master driven by the HPS.
    sdram : ``In(ReadWriteMasterSignature(addr_width=28, data_width=128, burst_width=8))``
        FPGA-to-SDRAM port 0: an Avalon-MM slave the FPGA drives.
    h2f_rst_n : ``Out(1)``
        The HPS's reset to the FPGA, active low, asynchronous.
    """

    lw: Out(_lw_signature())
    sdram: In(_sdram_signature())
    h2f_rst_n: Out(1)

    def elaborate(self, platform):
        m = Module()
        if platform is not None and hasattr(platform, "add_file"):
            platform.add_file(f"{MODULE}.v", wrapper_verilog())
        ports = {"i_clk": ClockSignal(), "o_h2f_rst_n": self.h2f_rst_n}
        # Directions from the unflipped signatures: the HPS drives the AXI master's outputs,
        # the FPGA drives the Avalon master's outputs.
        for name, member in _lw_signature().members.items():
            ports[f"{'o' if member.flow == Out else 'i'}_lw_{name}"] = getattr(self.lw, name)
        for name, member in _sdram_signature().members.items():
            ports[f"{'i' if member.flow == Out else 'o'}_sdram_{name}"] = getattr(self.sdram, name)
        m.submodules.hps = Instance(MODULE, **ports)
        return m
