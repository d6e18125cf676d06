"""Avalon-MM interface signatures (Intel Avalon Interface Specifications, memory-mapped).

The accelerator has a read master and a write master towards memory (the HPS FPGA-to-SDRAM
ports accept them as separate ports) and a 32-bit register slave for the lightweight
HPS-to-FPGA bridge. Master addresses are **byte** addresses aligned to the data width; bursts
are "linear, address of the first beat". The slave takes **word** addresses and answers reads
with a fixed latency of one cycle (``readdatavalid`` is not used).
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._params import check_int

__all__ = ["ReadMasterSignature", "WriteMasterSignature", "SlaveSignature"]


class ReadMasterSignature(wiring.Signature):
    """Avalon-MM read master with bursts and pipelined reads.

    Members
    -------
    address : Out(addr_width)
    read : Out(1)
    burstcount : Out(burst_width)
    waitrequest : In(1)
    readdata : In(data_width)
    readdatavalid : In(1)
    """

    def __init__(self, *, addr_width=32, data_width, burst_width):
        self.addr_width = check_int("addr_width", addr_width, minimum=1)
        self.data_width = check_int("data_width", data_width, minimum=8)
        self.burst_width = check_int("burst_width", burst_width, minimum=1)
        super().__init__({
            "address": Out(self.addr_width),
            "read": Out(1),
            "burstcount": Out(self.burst_width),
            "waitrequest": In(1),
            "readdata": In(self.data_width),
            "readdatavalid": In(1),
        })


class WriteMasterSignature(wiring.Signature):
    """Avalon-MM write master with bursts and byte enables.

    Members
    -------
    address : Out(addr_width)
    write : Out(1)
    burstcount : Out(burst_width)
    writedata : Out(data_width)
    byteenable : Out(data_width // 8)
    waitrequest : In(1)
    """

    def __init__(self, *, addr_width=32, data_width, burst_width):
        self.addr_width = check_int("addr_width", addr_width, minimum=1)
        self.data_width = check_int("data_width", data_width, minimum=8)
        self.burst_width = check_int("burst_width", burst_width, minimum=1)
        super().__init__({
            "address": Out(self.addr_width),
            "write": Out(1),
            "burstcount": Out(self.burst_width),
            "writedata": Out(self.data_width),
            "byteenable": Out(self.data_width // 8),
            "waitrequest": In(1),
        })


class SlaveSignature(wiring.Signature):
    """Avalon-MM 32-bit register slave, word addressed, read latency 1, no wait states.

    Members
    -------
    address : In(addr_width)
    read : In(1)
    write : In(1)
    writedata : In(32)
    readdata : Out(32)
    """

    def __init__(self, *, addr_width):
        self.addr_width = check_int("addr_width", addr_width, minimum=1)
        super().__init__({
            "address": In(self.addr_width),
            "read": In(1),
            "write": In(1),
            "writedata": In(32),
            "readdata": Out(32),
        })
