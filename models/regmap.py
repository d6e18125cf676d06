"""The accelerator's register map (the Avalon-MM slave on the lightweight HPS-to-FPGA bridge).

Defined once here; the gateware (``hw/``), the host drivers (``sw/``) and ``docs/`` are generated
from or import this table. All registers are 32 bits, at byte offsets from the bridge window
(0xFF200000 plus the component's base on the DE10-Nano).
"""

from dataclasses import dataclass

__all__ = ["Register", "BitField", "REGISTERS", "REG", "ID_MAGIC", "VERSION", "MAX_LAYER_COUNTERS",
           "CTRL_START", "CTRL_CLEAR", "STATUS_BUSY", "STATUS_DONE", "STATUS_ERROR",
           "STATUS_START_IGNORED", "REGMAP_BYTES", "doc_table"]

#: The ID register's value: ASCII "LMFN".
ID_MAGIC = 0x4C4D464E
#: Register-map / descriptor-format version (major << 16 | minor). 1.2: ERROR.index is 16 bits
#: (as DESC_COUNT), ERROR.layer_id moved to bits 31:24.
VERSION = (1 << 16) | 2
#: Number of per-layer cycle counters.
MAX_LAYER_COUNTERS = 16


@dataclass(frozen=True)
class BitField:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value):
        return (value >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Register:
    """One 32-bit register: name, byte offset, access (``r``, ``rw``, ``w1`` write-one-to-act), doc."""

    name: str
    offset: int
    access: str
    doc: str
    fields: tuple = ()

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")


CTRL_START = BitField("start", 0, 1, "write 1: start the descriptor list (ignored and flagged while busy)")
CTRL_CLEAR = BitField("clear", 1, 1, "write 1: clear done, error and start_ignored")
STATUS_BUSY = BitField("busy", 0, 1, "a descriptor list is running")
STATUS_DONE = BitField("done", 1, 1, "the last list finished (all layers, or stopped by an error)")
STATUS_ERROR = BitField("error", 2, 1, "the last list stopped at an invalid descriptor (see ERROR)")
STATUS_START_IGNORED = BitField("start_ignored", 3, 1, "a start arrived while busy and was ignored")

REGISTERS = (
    Register("ID", 0x00, "r", f"constant 0x{ID_MAGIC:08X} (\"LMFN\")"),
    Register("VERSION", 0x04, "r", "register map and descriptor format version: major * 65536 + minor"),
    Register("CONFIG", 0x08, "r", "hardware configuration", (
        BitField("pe_count", 0, 12, "P, output channels per cycle"),
        BitField("simd_lanes", 12, 12, "S, input channels per cycle (activation word width)"),
        BitField("acc_bits", 24, 8, "stored raw-accumulator width (16 or 32)"),
    )),
    Register("CTRL", 0x0C, "w1", "control", (CTRL_START, CTRL_CLEAR)),
    Register("STATUS", 0x10, "r", "status", (STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_START_IGNORED)),
    Register("ERROR", 0x14, "r", "why the last list stopped", (
        BitField("code", 0, 8, "models.engine.ERR_* code (0: none)"),
        BitField("index", 8, 16, "index of the descriptor in the list (as wide as DESC_COUNT)"),
        BitField("layer_id", 24, 8, "layer_id field of that descriptor"),
    )),
    Register("DESC_ADDR", 0x18, "rw", "byte address of the first descriptor (bus-word aligned)"),
    Register("DESC_COUNT", 0x1C, "rw", "number of descriptors in the list", (
        BitField("count", 0, 16, "descriptors (0 .. 65535)"),
    )),
    Register("WINDOW_BASE", 0x20, "rw", "lowest byte address the engine may access"),
    Register("WINDOW_SIZE", 0x24, "rw", "size in bytes of the window the engine may access (a window "
                                        "reaching past 2**32 ends there: addresses never wrap)"),
    Register("LAYERS_DONE", 0x28, "r", "descriptors completed in the current / last list"),
    Register("TOTAL_CYCLES", 0x2C, "r", "clock cycles from start to done of the last list"),
) + tuple(
    Register(f"LAYER_CYCLES{i}", 0x40 + 4 * i, "r", f"clock cycles of descriptor {i} of the last list")
    for i in range(MAX_LAYER_COUNTERS)
)

#: Register by name.
REG = {r.name: r for r in REGISTERS}
#: Size of the register window in bytes.
REGMAP_BYTES = 0x40 + 4 * MAX_LAYER_COUNTERS


def doc_table():
    """Markdown table of the register map (for docs/architecture.md)."""
    rows = ["| offset | name | access | description |", "|---|---|---|---|"]
    for r in REGISTERS:
        doc = r.doc
        if r.fields:
            doc += ": " + "; ".join(
                f"[{f.lsb + f.width - 1}:{f.lsb}] `{f.name}` {f.doc}" if f.width > 1 else f"[{f.lsb}] `{f.name}` {f.doc}"
                for f in r.fields)
        rows.append(f"| 0x{r.offset:02X} | `{r.name}` | {r.access} | {doc} |")
    return "\n".join(rows)
