"""Writer: the threshold unit's results -> the destination's bus words, queued for the write master."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from models.cycles import WRITE_FIFO_DEPTH
from models.engine import EngineParams

from ..arith import kept
from ..threshold import ThresholdUnit

__all__ = ["Writer", "write_entry_layout"]


def write_entry_layout(params):
    """One bus word for the write master: data, byte enables, last word of a pixel."""
    return data.StructLayout({"data": params.bus_bits, "be": params.bus_bits // 8, "last": 1})


class Writer(wiring.Component):
    """Turns each output pixel of a tile into bus words and queues them in a FIFO.

    Codes: one word per pixel, the tile's ``P`` codes on lanes ``lane_sel * P ..`` of both
    planes, byte enables on those lanes only (other layers' channels in the same word stay).
    Raw accumulators: ``beats`` words per pixel, the tile's accumulators as ``acc_bits``-bit
    two's complement, channels outside ``lane_mask`` (past the layer's last channel) as 0.

    The writer never applies back-pressure: it counts the FIFO words that issued pixels will need
    (``issued`` adds ``beats``, a word taken by the write master removes one) and offers
    ``credit_ok`` only while one more pixel fits; the sequencer holds a pixel's last beat until
    then. Pixels arrive at least ``beats`` cycles apart (the sequencer's ``gap``).

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    i_stream : ``In(stream.Signature(ThresholdUnit.output_layout(P, acc_bound)))``
        Always ready.
    raw : ``In(1)``, lane_sel : ``In(range(S // P))``, lane_mask : ``In(P)``, beats : ``In(...)``
        The tile (static while it runs).
    issued : ``In(1)``
        A pixel entered the pipeline (its result will come).
    credit_ok : ``Out(1)``
    idle : ``Out(1)``
        No word of an issued pixel is left to write.
    o_stream : ``Out(stream.Signature(write_entry_layout(params)))``

    Raises
    ------
    TypeError
        If ``params`` is not an :class:`~models.engine.EngineParams`.
    """

    def __init__(self, *, params):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = p = params
        self._tile_beats = p.pe_count * p.acc_bits // p.bus_bits
        super().__init__({
            "i_stream": In(stream.Signature(ThresholdUnit.output_layout(p.pe_count, p.acc_bound))),
            "raw": In(1),
            "lane_sel": In(range(max(p.simd_lanes // p.pe_count, 2))),
            "lane_mask": In(p.pe_count),
            "beats": In(range(self._tile_beats + 1)),
            "issued": In(1),
            "credit_ok": Out(1),
            "idle": Out(1),
            "o_stream": Out(stream.Signature(write_entry_layout(p))),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        P, S, bus, acc_bits = p.pe_count, p.simd_lanes, p.bus_bits, p.acc_bits
        tile_beats = self._tile_beats
        per_beat = bus // acc_bits                      # channels per raw word
        entry = write_entry_layout(p)

        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=entry.size, depth=WRITE_FIFO_DEPTH)

        # -- capture a pixel, then emit its words on consecutive cycles ----------------------------
        hold_raw = Signal(P * acc_bits)
        hold_codes = Signal(2 * P)
        beat = Signal(range(tile_beats + 1))
        active = Signal()
        inp = self.i_stream.payload
        m.d.comb += self.i_stream.ready.eq(1)
        with m.If(self.i_stream.valid):
            lanes = []
            for c in range(P):
                lane = Signal(signed(acc_bits), name=f"acc{c}")
                m.d.comb += lane.eq(inp.acc[c])
                lanes.append(lane)
            m.d.sync += [
                hold_raw.eq(Cat(*lanes)),
                hold_codes.eq(Cat(Cat(inp.codes[c][0] for c in range(P)), Cat(inp.codes[c][1] for c in range(P)))),
                active.eq(1), beat.eq(0),
            ]
        with m.Elif(active):
            with m.If(~self.raw | (beat == self.beats - 1)):
                m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        word = Signal(entry)
        raw_slice = Signal(bus)
        mask_slice = Signal(per_beat)
        with m.Switch(beat):
            for j in range(tile_beats):
                with m.Case(j):
                    m.d.comb += [raw_slice.eq(hold_raw[j * bus:(j + 1) * bus]),
                                 mask_slice.eq(self.lane_mask[j * per_beat:(j + 1) * per_beat])]
        code_data = Signal(bus)
        with m.Switch(self.lane_sel):
            for j in range(max(S // P, 1)):
                with m.Case(j):
                    m.d.comb += code_data.eq((hold_codes[:P] << (j * P)) | (hold_codes[P:] << (S + j * P)))
        # An expression, not a case of constants: a block that reads nothing but lane_sel is never
        # evaluated by some simulators (Icarus) while lane_sel keeps its initial value.
        code_be = Cat(self.lane_sel == (b % (S // 8)) // (P // 8) for b in range(bus // 8))
        masked = Cat(Mux(mask_slice[c], raw_slice[c * acc_bits:(c + 1) * acc_bits], 0) for c in range(per_beat))
        m.d.comb += [
            word.data.eq(Mux(self.raw, masked, code_data)),
            word.be.eq(Mux(self.raw, (1 << (bus // 8)) - 1, code_be)),
            word.last.eq(~self.raw | (beat == self.beats - 1)),
            q.w_data.eq(word),
            q.w_en.eq(active),
        ]

        # -- the write master's end of the FIFO ------------------------------------------------------
        m.d.comb += [
            self.o_stream.payload.eq(q.r_data),
            self.o_stream.valid.eq(q.r_rdy),
            q.r_en.eq(self.o_stream.ready),
        ]

        # -- credits: FIFO words promised to issued pixels ---------------------------------------------
        # The next count is pending + (issued ? beats : 0) - taken; its four values, and what each
        # gives credit_ok and idle, come from registers alone, so that issued and taken (the
        # sequencer's issue and the bus) only choose among them: no adder or compare after them.
        pending = Signal(range(WRITE_FIFO_DEPTH + tile_beats + 1))
        taken = self.o_stream.valid & self.o_stream.ready
        plus = kept(m, pending + self.beats, "plus")
        plus2 = kept(m, plus + self.beats, "plus2")
        cases = {  # (issued, taken): (next count, next count + beats <= depth, next count == 0)
            (0, 0): (pending, plus <= WRITE_FIFO_DEPTH, pending == 0),
            (0, 1): (pending - 1, plus <= WRITE_FIFO_DEPTH + 1, pending == 1),
            (1, 0): (plus, plus2 <= WRITE_FIFO_DEPTH, plus == 0),
            (1, 1): (plus - 1, plus2 <= WRITE_FIFO_DEPTH + 1, plus == 1),
        }
        with m.Switch(Cat(taken, self.issued)):
            for (iss, tak), (nxt, credit, idle) in cases.items():
                with m.Case(tak | (iss << 1)):
                    m.d.sync += [pending.eq(nxt), self.credit_ok.eq(credit), self.idle.eq(idle)]
        return m
