"""AMBA AXI3 interface signature (the Cyclone V HPS-to-FPGA bridges speak AXI3).

Members are the flat AXI signal names in lower case (``awid``, ``awaddr``, ..., ``rready``), so
the generated Verilog ports read ``lw__awvalid`` and an instance of a Cyclone V HPS atom can be
connected member by member. AXI3, unlike AXI4, has ``wid``, 4-bit ``awlen``/``arlen`` (bursts of
1 to 16 beats) and 2-bit ``awlock``/``arlock``; it has no ``awqos``/``awregion``/``awuser``.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._params import check_int

__all__ = ["AXI3Signature", "BURST_FIXED", "BURST_INCR", "BURST_WRAP", "RESP_OKAY", "RESP_SLVERR"]

#: ``awburst``/``arburst`` encodings.
BURST_FIXED, BURST_INCR, BURST_WRAP = 0, 1, 2
#: ``bresp``/``rresp`` encodings used here (EXOKAY = 1 and DECERR = 3 are never sent).
RESP_OKAY, RESP_SLVERR = 0, 2


class AXI3Signature(wiring.Signature):
    """AXI3 master (the direction of every member is the master's).

    Parameters
    ----------
    addr_width : int
        Byte-address width (21 for the lightweight HPS-to-FPGA bridge).
    data_width : int
        Data width in bits, a power of two from 8 to 1024 (32 for the lightweight bridge).
    id_width : int
        Transaction ID width (12 for the HPS-to-FPGA bridges).

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awvalid : Out
    awready : In(1)
        Write address channel.
    wid, wdata, wstrb, wlast, wvalid : Out
    wready : In(1)
        Write data channel.
    bid, bresp, bvalid : In
    bready : Out(1)
        Write response channel.
    arid, araddr, arlen, arsize, arburst, arlock, arcache, arprot, arvalid : Out
    arready : In(1)
        Read address channel.
    rid, rdata, rresp, rlast, rvalid : In
    rready : Out(1)
        Read data channel.

    Raises
    ------
    TypeError, ValueError
        If a width is not an integer in range, or ``data_width`` is not a power of two.
    """

    def __init__(self, *, addr_width, data_width, id_width):
        self.addr_width = check_int("addr_width", addr_width, minimum=1, maximum=64)
        self.data_width = check_int("data_width", data_width, minimum=8, maximum=1024)
        if self.data_width & (self.data_width - 1):
            raise ValueError(f"data_width must be a power of two, not {data_width!r}")
        self.id_width = check_int("id_width", id_width, minimum=1, maximum=32)
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(self.id_width),
                f"{ch}addr": Out(self.addr_width),
                f"{ch}len": Out(4),
                f"{ch}size": Out(3),
                f"{ch}burst": Out(2),
                f"{ch}lock": Out(2),
                f"{ch}cache": Out(4),
                f"{ch}prot": Out(3),
                f"{ch}valid": Out(1),
                f"{ch}ready": In(1),
            })
            if ch == "aw":
                members.update({
                    "wid": Out(self.id_width),
                    "wdata": Out(self.data_width),
                    "wstrb": Out(self.data_width // 8),
                    "wlast": Out(1),
                    "wvalid": Out(1),
                    "wready": In(1),
                    "bid": In(self.id_width),
                    "bresp": In(2),
                    "bvalid": In(1),
                    "bready": Out(1),
                })
        members.update({
            "rid": In(self.id_width),
            "rdata": In(self.data_width),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        })
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and self.addr_width == other.addr_width
                and self.data_width == other.data_width and self.id_width == other.id_width)

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width, self.id_width))

    def __repr__(self):
        return (f"AXI3Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width})")
