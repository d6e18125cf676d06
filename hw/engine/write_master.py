"""Write master: queued destination words -> Avalon-MM write bursts, one burst per output pixel."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.engine import EngineParams

from ..avalon import WriteMasterSignature
from .writer import write_entry_layout

__all__ = ["WriteMaster"]


class WriteMaster(wiring.Component):
    """Writes each pixel's words as one burst of ``beats`` words at the pixel's address.

    The first pixel of a tile goes to ``dst`` (loaded by ``start``), each next one ``stride``
    bytes further. A word is taken from ``i_stream`` when the memory accepts it (``write`` and
    not ``waitrequest``).

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    i_stream : ``In(stream.Signature(write_entry_layout(params)))``
    start : ``In(1)``
        Pulse: a new tile; its first pixel goes to ``dst``.
    dst : ``In(32)``, stride : ``In(32)``, beats : ``In(...)``
    wr : ``Out(WriteMasterSignature)``

    Raises
    ------
    TypeError
        If ``params`` is not an :class:`~models.engine.EngineParams`.
    """

    def __init__(self, *, params):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = p = params
        tile_beats = p.pe_count * p.acc_bits // p.bus_bits
        super().__init__({
            "i_stream": In(stream.Signature(write_entry_layout(p))),
            "start": In(1),
            "dst": In(32),
            "stride": In(32),
            "beats": In(range(tile_beats + 1)),
            "wr": Out(WriteMasterSignature(data_width=p.bus_bits, burst_width=p.max_burst.bit_length())),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        addr = Signal(32)
        head = self.i_stream.payload
        accepted = self.wr.write & ~self.wr.waitrequest
        m.d.comb += [
            self.wr.write.eq(self.i_stream.valid),
            self.wr.address.eq(addr),
            self.wr.burstcount.eq(self.beats),
            self.wr.writedata.eq(head.data),
            self.wr.byteenable.eq(head.be),
            self.i_stream.ready.eq(~self.wr.waitrequest),
        ]
        with m.If(self.start):
            m.d.sync += addr.eq(self.dst)
        with m.Elif(accepted & head.last):
            m.d.sync += addr.eq(addr + self.stride)
        return m
