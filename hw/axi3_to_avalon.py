"""AXI3 slave in front of a word-addressed Avalon-MM register slave (the lightweight bridge path)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._params import check_int
from .avalon import SlaveSignature
from .axi3 import AXI3Signature, BURST_FIXED, BURST_WRAP, RESP_OKAY, RESP_SLVERR

__all__ = ["AXI3ToAvalon"]


class AXI3ToAvalon(wiring.Component):
    """Serve an AXI3 master (the HPS lightweight bridge) from a 32-bit register slave.

    The register slave is :class:`~hw.avalon.SlaveSignature`: word addresses, no wait states,
    ``readdata`` one cycle after ``read``. The adapter handles one AXI transaction at a time
    (both address channels wait while one runs; AXI allows a slave to do so) and alternates
    between reads and writes when both are pending; ``awready`` / ``arready`` come the cycle
    after the channel is chosen (every register is loaded from one state). Every beat of a
    burst is one register access: FIXED bursts repeat the address, INCR bursts add ``2**size``
    bytes per beat, WRAP bursts wrap at ``(len + 1) * 2**size`` bytes.

    * Byte addresses below ``4 * 2**csr_addr_width`` reach the slave at word address
      ``address >> 2``; above that window reads return 0 and writes are dropped, with an OKAY
      response, as for an unused register.
    * A write beat must set all four strobes: the registers have no byte enables. A beat with
      any strobe clear is dropped and the burst ends with a SLVERR response (``error`` pulses).
    * Reads of any size return the whole word; the master picks its byte lanes.
    * The slave's ``write``, ``address`` and ``writedata`` come from registers: a write beat
      reaches the slave in the cycle after the AXI handshake (still before the write
      response), which keeps the bridge's address logic out of the register file's decode.

    IDs are returned as received; ``awlock``/``arlock``, ``awcache``/``arcache`` and
    ``awprot``/``arprot`` are ignored.

    Parameters
    ----------
    addr_width : int
        AXI byte-address width (21 on the lightweight bridge).
    id_width : int
        AXI ID width (12 on the lightweight bridge).
    csr_addr_width : int
        Word-address width of the register slave.

    Members
    -------
    axi : ``In(AXI3Signature(addr_width=addr_width, data_width=32, id_width=id_width))``
        The AXI3 slave port.
    csr : ``In(SlaveSignature(addr_width=csr_addr_width))``
        The Avalon-MM master port towards the register slave.
    access : ``Out(1)``
        Pulses for every register beat (read or write), for an activity LED.
    error : ``Out(1)``
        Pulses when a SLVERR response is sent.

    Raises
    ------
    TypeError, ValueError
        If a width is not an integer in range, or the register window does not fit the AXI
        address space.
    """

    def __init__(self, *, addr_width=21, id_width=12, csr_addr_width):
        self._addr_width = check_int("addr_width", addr_width, minimum=3, maximum=64)
        self._id_width = check_int("id_width", id_width, minimum=1, maximum=32)
        self._csr_addr_width = check_int("csr_addr_width", csr_addr_width, minimum=1,
                                         maximum=self._addr_width - 2,
                                         what=f"an integer between 1 and {self._addr_width - 2} "
                                              f"(addr_width - 2)")
        super().__init__({
            "axi": In(AXI3Signature(addr_width=self._addr_width, data_width=32, id_width=self._id_width)),
            "csr": In(SlaveSignature(addr_width=self._csr_addr_width)),
            "access": Out(1),
            "error": Out(1),
        })

    addr_width = property(lambda self: self._addr_width)
    id_width = property(lambda self: self._id_width)
    csr_addr_width = property(lambda self: self._csr_addr_width)

    def elaborate(self, platform):
        m = Module()
        axi, csr = self.axi, self.csr

        addr = Signal(self._addr_width)
        tid = Signal(self._id_width)
        beats_left = Signal(4)
        burst = Signal(2)
        wrap_mask = Signal(self._addr_width)
        failed = Signal()
        prefer_read = Signal()
        in_window = Signal()
        in_window_q = Signal()
        rdata = Signal(32)

        step = Signal(self._addr_width)     # 2**size, a register like the mask
        next_addr = Signal(self._addr_width)
        next_in_window = Signal()
        # The register slave sees registers only: a write beat reaches it one cycle after the
        # beat (before the response, so a later read sees it), and the address it is given is
        # a register kept equal to the current beat's (no address decode in front of the
        # register file's own).
        csr_write = Signal()
        csr_addr = Signal(self._csr_addr_width)
        csr_wdata = Signal(32)
        m.d.comb += [
            csr.address.eq(csr_addr),
            csr.write.eq(csr_write),
            csr.writedata.eq(csr_wdata),
        ]
        m.d.sync += csr_write.eq(0)
        # Whether the address is in the register window is a register too, set with the address.
        m.d.comb += next_in_window.eq(next_addr[2 + self._csr_addr_width:] == 0)
        with m.Switch(burst):
            with m.Case(BURST_FIXED):
                m.d.comb += next_addr.eq(addr)
            with m.Case(BURST_WRAP):
                m.d.comb += next_addr.eq((addr & ~wrap_mask) | ((addr + step) & wrap_mask))
            with m.Default():
                m.d.comb += next_addr.eq(addr + step)

        def start(ch):
            lenf, sizef = getattr(axi, f"{ch}len"), getattr(axi, f"{ch}size")
            a = getattr(axi, f"{ch}addr")
            m.d.sync += [
                addr.eq(a),
                in_window.eq(a[2 + self._csr_addr_width:] == 0),
                csr_addr.eq(a[2:2 + self._csr_addr_width]),
                tid.eq(getattr(axi, f"{ch}id")),
                beats_left.eq(lenf),
                step.eq(1 << sizef),
                burst.eq(getattr(axi, f"{ch}burst")),
                # ((len + 1) << size) - 1, without a carry: the low size bits of len << size are 0
                wrap_mask.eq(((lenf << sizef) | Cat(sizef > i for i in range(8)))[:self._addr_width]),
                failed.eq(0),
            ]

        with m.FSM():
            # IDLE chooses the channel, AW / AR take its address: the burst's registers are then
            # loaded under one state's decode, not under the arbitration between the channels.
            with m.State("IDLE"):
                with m.If(axi.awvalid & (~axi.arvalid | ~prefer_read)):
                    m.next = "AW"
                with m.Elif(axi.arvalid):
                    m.next = "AR"

            with m.State("AW"):
                m.d.comb += axi.awready.eq(1)
                start("aw")
                m.d.sync += prefer_read.eq(1)
                m.next = "WRITE"

            with m.State("AR"):
                m.d.comb += axi.arready.eq(1)
                start("ar")
                m.d.sync += prefer_read.eq(0)
                m.next = "READ"

            with m.State("WRITE"):
                m.d.comb += axi.wready.eq(1)
                with m.If(axi.wvalid):
                    whole = axi.wstrb.all()
                    m.d.comb += self.access.eq(1)
                    m.d.sync += [
                        csr_write.eq(in_window & whole),
                        csr_addr.eq(addr[2:2 + self._csr_addr_width]),
                        csr_wdata.eq(axi.wdata),
                        addr.eq(next_addr),
                        in_window.eq(next_in_window),
                    ]
                    with m.If(~whole):
                        m.d.sync += failed.eq(1)
                    with m.If(axi.wlast):
                        m.next = "RESPOND"

            with m.State("RESPOND"):
                m.d.comb += [
                    axi.bvalid.eq(1),
                    axi.bid.eq(tid),
                    axi.bresp.eq(Mux(failed, RESP_SLVERR, RESP_OKAY)),
                ]
                with m.If(axi.bready):
                    m.d.comb += self.error.eq(failed)
                    m.next = "IDLE"

            with m.State("READ"):
                m.d.comb += [
                    csr.read.eq(in_window),
                    self.access.eq(1),
                ]
                m.d.sync += in_window_q.eq(in_window)
                m.next = "LATCH"

            with m.State("LATCH"):
                m.d.sync += rdata.eq(Mux(in_window_q, csr.readdata, 0))
                m.next = "DATA"

            with m.State("DATA"):
                m.d.comb += [
                    axi.rvalid.eq(1),
                    axi.rid.eq(tid),
                    axi.rdata.eq(rdata),
                    axi.rresp.eq(RESP_OKAY),
                    axi.rlast.eq(beats_left == 0),
                ]
                with m.If(axi.rready):
                    with m.If(beats_left == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [beats_left.eq(beats_left - 1), addr.eq(next_addr),
                                     in_window.eq(next_in_window),
                                     csr_addr.eq(next_addr[2:2 + self._csr_addr_width])]
                        m.next = "READ"
        return m
