"""One Avalon-MM read/write port from a read master and a write master (an FPGA-to-SDRAM port)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._params import check_int
from .avalon import ReadMasterSignature, WriteMasterSignature

__all__ = ["ReadWriteMasterSignature", "AvalonReadWriteMerge"]


class ReadWriteMasterSignature(wiring.Signature):
    """Avalon-MM master with reads and writes, bursts and byte enables, **word** addresses.

    This is the form of a Cyclone V FPGA-to-SDRAM port in Avalon-MM mode: ``address`` counts
    words of ``data_width`` bits, bursts are "linear, address of the first beat".

    Members
    -------
    address : Out(addr_width)
    burstcount : Out(burst_width)
    read : Out(1)
    write : Out(1)
    writedata : Out(data_width)
    byteenable : Out(data_width // 8)
    waitrequest : In(1)
    readdata : In(data_width)
    readdatavalid : In(1)
    """

    def __init__(self, *, addr_width, data_width, burst_width):
        self.addr_width = check_int("addr_width", addr_width, minimum=1, maximum=64)
        self.data_width = check_int("data_width", data_width, minimum=8)
        if self.data_width % 8:
            raise ValueError(f"data_width must be a multiple of 8, not {data_width!r}")
        self.burst_width = check_int("burst_width", burst_width, minimum=1)
        super().__init__({
            "address": Out(self.addr_width),
            "burstcount": Out(self.burst_width),
            "read": Out(1),
            "write": Out(1),
            "writedata": Out(self.data_width),
            "byteenable": Out(self.data_width // 8),
            "waitrequest": In(1),
            "readdata": In(self.data_width),
            "readdatavalid": In(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and self.addr_width == other.addr_width
                and self.data_width == other.data_width and self.burst_width == other.burst_width)

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width, self.burst_width))

    def __repr__(self):
        return (f"ReadWriteMasterSignature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"burst_width={self.burst_width})")


class AvalonReadWriteMerge(wiring.Component):
    """Share one read/write Avalon-MM port between a read master and a write master.

    The masters use byte addresses (:mod:`hw.avalon`); the port gets word addresses
    (``address >> log2(data_width / 8)``; the low bits, zero for aligned masters, are dropped)
    and a burst count zero-extended to ``port_burst_width``.

    One master owns the port at a time (a register, so neither master's ``waitrequest``
    depends combinationally on the other's request); the other sees ``waitrequest``. Ownership
    passes to the other master, if it is requesting, after each command the owner completes or
    while the owner is idle: round robin per command, with no idle cycle while the owner keeps
    the port busy and the other does not ask. A read command is one cycle (its data come back
    on ``readdatavalid`` whenever the port returns them, and go to the read master only); a
    write burst holds the port from its first beat to its last, so beats of a burst are never
    interleaved with reads. While a command waits (``waitrequest``) ownership does not change,
    so what the port sees stays stable until it takes it. A write burst in progress never waits
    for a read to complete, so the masters cannot deadlock as long as the write master
    finishes every burst it starts without waiting for its own read data (the engine's writer
    drains a FIFO of finished results).

    Parameters
    ----------
    data_width : int
        Data width of both masters and of the port (a power-of-two number of bytes).
    burst_width : int
        Burst count width of the masters.
    port_burst_width : int
        Burst count width of the port (at least ``burst_width``).
    addr_width : int
        Byte-address width of the masters.

    Members
    -------
    rd : ``In(ReadMasterSignature(addr_width, data_width, burst_width))``
    wr : ``In(WriteMasterSignature(addr_width, data_width, burst_width))``
        The two masters.
    port : ``Out(ReadWriteMasterSignature(addr_width - log2(data_width / 8), data_width,
    port_burst_width))``
        The merged master.

    Raises
    ------
    TypeError, ValueError
        If a parameter is not an integer in range, ``data_width / 8`` is not a power of two, or
        ``port_burst_width < burst_width``.
    """

    def __init__(self, *, data_width, burst_width, port_burst_width=8, addr_width=32):
        self._data_width = check_int("data_width", data_width, minimum=8)
        nbytes = self._data_width // 8
        if self._data_width % 8 or nbytes & (nbytes - 1):
            raise ValueError(f"data_width must be 8 times a power of two, not {data_width!r}")
        self._burst_width = check_int("burst_width", burst_width, minimum=1)
        self._port_burst_width = check_int("port_burst_width", port_burst_width, minimum=self._burst_width,
                                           what=f"an integer >= burst_width ({self._burst_width})")
        self._shift = nbytes.bit_length() - 1
        self._addr_width = check_int("addr_width", addr_width, minimum=self._shift + 1, maximum=64)
        super().__init__({
            "rd": In(ReadMasterSignature(addr_width=self._addr_width, data_width=self._data_width,
                                         burst_width=self._burst_width)),
            "wr": In(WriteMasterSignature(addr_width=self._addr_width, data_width=self._data_width,
                                          burst_width=self._burst_width)),
            "port": Out(ReadWriteMasterSignature(addr_width=self._addr_width - self._shift,
                                                 data_width=self._data_width,
                                                 burst_width=self._port_burst_width)),
        })

    data_width = property(lambda self: self._data_width)
    burst_width = property(lambda self: self._burst_width)
    port_burst_width = property(lambda self: self._port_burst_width)
    addr_width = property(lambda self: self._addr_width)

    def elaborate(self, platform):
        m = Module()
        rd, wr, port = self.rd, self.wr, self.port

        # The owner is a register, so neither master's waitrequest depends on the other's
        # request within a cycle: no combinational path from one master to the other.
        write_owns = Signal()
        in_burst = Signal()                       # a write burst has started and not ended
        beats_left = Signal(self._port_burst_width)

        m.d.comb += [
            port.address.eq(Mux(write_owns, wr.address, rd.address)[self._shift:]),
            port.burstcount.eq(Mux(write_owns, wr.burstcount, rd.burstcount)),
            port.read.eq(~write_owns & rd.read),
            port.write.eq(write_owns & wr.write),
            port.writedata.eq(wr.writedata),
            port.byteenable.eq(wr.byteenable),
            rd.waitrequest.eq(write_owns | port.waitrequest),
            wr.waitrequest.eq(~write_owns | port.waitrequest),
            rd.readdata.eq(port.readdata),
            rd.readdatavalid.eq(port.readdatavalid),
        ]

        write_taken = port.write & ~port.waitrequest
        burst_goes_on = Signal()
        with m.If(write_taken):
            with m.If(in_burst):
                m.d.sync += beats_left.eq(beats_left - 1)
                with m.If(beats_left == 1):
                    m.d.sync += in_burst.eq(0)
                with m.Else():
                    m.d.comb += burst_goes_on.eq(1)
            with m.Elif(wr.burstcount > 1):
                m.d.sync += [in_burst.eq(1), beats_left.eq(wr.burstcount - 1)]
                m.d.comb += burst_goes_on.eq(1)
        with m.Elif(in_burst):
            m.d.comb += burst_goes_on.eq(1)

        # Hand the port over after a command (or while the owner is idle), never in the middle
        # of a write burst or while the owner's command waits.
        waiting = (port.read | port.write) & port.waitrequest
        with m.If(~waiting & ~burst_goes_on):
            with m.If(write_owns & rd.read):
                m.d.sync += write_owns.eq(0)
            with m.Elif(~write_owns & wr.write):
                m.d.sync += write_owns.eq(1)
        return m
