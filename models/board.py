"""Facts of the DE10-Nano that both the gateware and the host depend on, written once.

The FPGA (Cyclone V SE 5CSEBA6U23I7) and its HPS interfaces as the board top uses them, and the
memory the host hands to the accelerator. Nothing here imports a gateware or simulator package:
the host reads these on the board, the gateware builds from them.
"""

__all__ = [
    "DEVICE", "LW_BRIDGE_BASE", "LW_BRIDGE_SPAN", "LW_ADDR_WIDTH", "LW_ID_WIDTH",
    "F2SDRAM_DATA_WIDTH", "F2SDRAM_ADDR_WIDTH", "F2SDRAM_BURST_WIDTH",
    "PLL_REF_RANGE_HZ", "PLL_OUT_RANGE_HZ", "ARENA_BASE", "ARENA_SIZE", "BUFFER_ALIGN",
]

#: The DE10-Nano's FPGA and its resources.
DEVICE = {"part": "5CSEBA6U23I7", "alms": 41910, "m10k": 553, "dsp": 112}

#: Physical address of the lightweight HPS-to-FPGA bridge as the ARM sees it; the accelerator's
#: registers sit at offset 0 of it.
LW_BRIDGE_BASE = 0xFF20_0000
#: Bytes of the lightweight bridge window.
LW_BRIDGE_SPAN = 0x20_0000
#: Byte-address width of the lightweight bridge (2 MiB window) and its AXI ID width.
LW_ADDR_WIDTH = 21
LW_ID_WIDTH = 12

#: FPGA-to-SDRAM port 0 as the board top configures it: a 128-bit Avalon-MM port, word addresses
#: of ``32 - 4`` bits, bursts of up to ``2**F2SDRAM_BURST_WIDTH - 1`` beats.
F2SDRAM_DATA_WIDTH = 128
F2SDRAM_ADDR_WIDTH = 32 - 4
F2SDRAM_BURST_WIDTH = 8

#: Reference and output frequency ranges of the Cyclone V fractional PLL accepted by the top.
PLL_REF_RANGE_HZ = (5e6, 800e6)
PLL_OUT_RANGE_HZ = (1e6, 550e6)

#: Default device-memory arena: physical DDR above the 512 MiB that Linux is booted with
#: (``mem=512M``, as Blueoil's runtime did); every backend uses the same addresses.
ARENA_BASE = 0x2000_0000
#: Default arena size (64 MiB).
ARENA_SIZE = 64 << 20
#: Alignment of every buffer the host places in the arena (a cache line of the Cortex-A9 is 32
#: bytes; 64 covers every bus width up to 512 bits).
BUFFER_ALIGN = 64
