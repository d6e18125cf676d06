"""Loader: the engine's read path. Issues read bursts for one region at a time and puts every
word where it belongs: the descriptor register, the activation buffer (rows at a power-of-two
stride; a frame-pair image thermometer-coded and space_to_depth'ed on the way), the weight
buffer, the threshold register bank."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.engine import DESCRIPTOR, FRAME_SIMD_LANES, EngineParams
from models.formats import FRAME_CODE_CHANNELS, FRAME_COLORS, FRAME_PIXEL_BYTES
from models.quant import ACT_LEVELS, INPUT_BITS, INPUT_CODES

from ..arith import gt
from ..avalon import ReadMasterSignature

__all__ = ["Loader", "TARGET_DESC", "TARGET_ACT", "TARGET_WEIGHTS", "TARGET_THRESHOLDS", "command_layout",
           "thermometer_word"]

TARGET_DESC, TARGET_ACT, TARGET_WEIGHTS, TARGET_THRESHOLDS = range(4)


def command_layout(params):
    """One read: where from, how many bus words, into what."""
    return data.StructLayout({
        "target": 2,
        "addr": 32,
        "words": 28,
        "bank": 1,          # weights: the bank (tile parity)
        "frames": 1,        # activations: the source is a frame-pair image
    })


def thermometer_word(m, word, simd_lanes):
    """The code word (two planes of ``simd_lanes`` lanes) of one bus word of a frame-pair image:
    pixel ``p`` of the word, value ``c`` and level ``i`` on lane ``p*32 + c*5 + i``
    (``models.formats.frame_pair_codes``), the other lanes 0."""
    table = [[min(max(q - ACT_LEVELS * i, 0), ACT_LEVELS) for q in range(1 << INPUT_BITS)]
             for i in range(INPUT_CODES)]
    luts = [Array(Const(v, 2) for v in row) for row in table]
    pixels = simd_lanes // FRAME_CODE_CHANNELS
    planes = [[Const(0, 1)] * simd_lanes for _ in range(2)]
    for px in range(pixels):
        for c in range(FRAME_COLORS):
            byte = word[(px * FRAME_PIXEL_BYTES + c) * 8:(px * FRAME_PIXEL_BYTES + c + 1) * 8]
            q = byte[8 - INPUT_BITS:]
            for i in range(INPUT_CODES):
                code = Signal(2, name=f"therm_p{px}_c{c}_l{i}")
                m.d.comb += code.eq(luts[i][q])
                lane = px * FRAME_CODE_CHANNELS + c * INPUT_CODES + i
                planes[0][lane], planes[1][lane] = code[0], code[1]
    return Cat(*planes[0], *planes[1])


class Loader(wiring.Component):
    """Read bursts for one region at a time and the routing of the data read.

    A command (``cmd`` with ``cmd_valid``; registered first) starts a read of ``words`` bus
    words at ``addr``, issued as bursts of at most ``max_burst`` beats back to back; ``done``
    falls in the cycle after the command and is high again when every word has arrived (and
    when idle). Read data is never back-pressured: it
    goes into its target register in the cycle it arrives, into the weight buffer one cycle
    later and into the activation buffer two cycles later (the write address is computed in two
    register stages).

    Targets: ``TARGET_DESC`` (words into ``desc``, first word in the low bits), ``TARGET_ACT`` (the
    activation buffer: word ``w`` of a row at ``row * 2**cb + w``, rows of the stored source
    one after the other; with ``frames`` the words are frame-pair pixels, thermometer-coded and
    written as conv-input groups at ``group * plane + (y >> 1) * 2**cb + x``),
    ``TARGET_WEIGHTS`` (the weight buffer: ``P*S/(2S)`` bus words per weight word, word ``i``
    of the bank ``bank`` at ``bank * weight_buffer_words + i``), ``TARGET_THRESHOLDS`` (words
    into ``thresholds``).

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    rd : ``Out(ReadMasterSignature)``
    cmd : ``In(command_layout(params))``
    cmd_valid : ``In(1)``
    done : ``Out(1)``
    act_cols : ``In(13)``
        Stored source columns (words of a row; a frame-pair image's words per image row).
    act_cb : ``In(4)``
        log2 of the activation buffer's row stride.
    act_plane : ``In(range(2 * act_buffer_words))``
        Words between two stored groups of a frame-pair image's conv input.
    act_waddr, act_wdata, act_we : ``Out``
        The activation buffer's write port.
    wt_waddr : ``Out``, wt_wdata : ``Out(2S)``, wt_we : ``Out(P*S/(2S))``
        The weight buffer's write ports (one memory per bus word of a weight word).
    desc : ``Out(256)``
    thresholds : ``Out(P * record_bits)``

    Raises
    ------
    TypeError
        If ``params`` is not an :class:`~models.engine.EngineParams`.
    """

    def __init__(self, *, params):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = p = params
        bus = p.bus_bits
        super().__init__({
            "rd": Out(ReadMasterSignature(data_width=bus, burst_width=p.max_burst.bit_length())),
            "cmd": In(command_layout(p)),
            "cmd_valid": In(1),
            "done": Out(1),
            "act_cols": In(13),
            "act_cb": In(4),
            "act_plane": In(range(2 * p.act_buffer_words)),
            "act_waddr": Out(range(p.act_buffer_words)),
            "act_wdata": Out(bus),
            "act_we": Out(1),
            "wt_waddr": Out(range(2 * p.weight_buffer_words)),
            "wt_wdata": Out(bus),
            "wt_we": Out(p.pe_count * p.simd_lanes // bus),
            "desc": Out(DESCRIPTOR.bits),
            "thresholds": Out(p.pe_count * p.threshold_layout.bits),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        bus = p.bus_bits
        log_bus_bytes = p.bus_bytes.bit_length() - 1
        maxb = p.max_burst
        ww_beats = p.pe_count * p.simd_lanes // bus
        thr_beats = p.pe_count * p.threshold_layout.bits // bus
        desc_beats = -(-DESCRIPTOR.bits // bus)
        frame_pixels = bus // (8 * FRAME_PIXEL_BYTES)        # frame-pair pixels a bus word

        # -- requests ----------------------------------------------------------------------------
        # The words left to request, with its comparisons against one, two and three bursts kept
        # as registers: a request takes min(rq_left, max_burst) words, and an accepted one moves
        # each flag to the next, so neither a compare nor a subtraction of the burst follows the
        # bus's waitrequest.
        rq_addr = Signal(32)
        rq_left = Signal(28)
        rq_any = Signal()                  # rq_left != 0
        rq_gt1 = Signal()                  # rq_left > max_burst
        rq_gt2 = Signal()                  # rq_left > 2 * max_burst
        rq_burst = Signal(maxb.bit_length())
        m.d.comb += [
            rq_burst.eq(Mux(rq_gt1, maxb, rq_left)),
            self.rd.address.eq(rq_addr),
            self.rd.burstcount.eq(rq_burst),
            self.rd.read.eq(rq_any),
        ]
        accepted = self.rd.read & ~self.rd.waitrequest
        with m.If(accepted):
            m.d.sync += [rq_addr.eq(rq_addr + (rq_burst << log_bus_bytes)),
                         rq_left.eq(Mux(rq_gt1, rq_left - maxb, 0)),
                         rq_any.eq(rq_gt1), rq_gt1.eq(rq_gt2), rq_gt2.eq(gt(rq_left, 3 * maxb))]

        # -- the routing of received words --------------------------------------------------------
        target = Signal(2)
        frames = Signal()
        rx_left = Signal(28)
        rx_index = Signal(range(max(thr_beats, desc_beats) + 1))
        # done is a register that looks one cycle ahead (the counters' next values), so it is as
        # early as a comparison of the counters and no comparison sits on the FSM's paths.
        done = Signal(init=1)
        m.d.comb += self.done.eq(done)

        col = Signal(13)
        cols_m1 = Signal(13)
        cols_m2 = Signal(13)
        last_col = Signal()            # the next word ends a row (a register: no compare on the path)
        row_base = Signal(range(2 * p.act_buffer_words))
        row_addr = Signal(range(2 * p.act_buffer_words))
        odd_row = Signal()
        plane2 = Signal(range(4 * p.act_buffer_words))
        plane3 = Signal(range(6 * p.act_buffer_words))
        wt_word = Signal(range(2 * p.weight_buffer_words))
        chunk = Signal(range(max(ww_beats, 2)))

        rx_one = Signal()                 # rx_left == 1 (a register)
        rx_zero = Signal(init=1)          # rx_left == 0 (a register)
        rq_done_next = ~rq_any | (accepted & ~rq_gt1)
        rx_done_next = Mux(self.rd.readdatavalid, rx_one, rx_zero)
        # A command is registered before it is carried out: the FSM's choice of a command and the
        # loader's counters are a register apart.
        cmd = Signal.like(self.cmd)
        cmd_valid = Signal()
        m.d.sync += [cmd.eq(self.cmd), cmd_valid.eq(self.cmd_valid)]
        m.d.sync += done.eq(~self.cmd_valid & ~cmd_valid & rq_done_next & rx_done_next)
        with m.If(cmd_valid):
            m.d.sync += [
                rq_addr.eq(cmd.addr), rq_left.eq(cmd.words), rx_left.eq(cmd.words),
                rq_any.eq(cmd.words != 0), rq_gt1.eq(gt(cmd.words, maxb)), rq_gt2.eq(gt(cmd.words, 2 * maxb)),
                rx_zero.eq(cmd.words == 0), rx_one.eq(cmd.words == 1),
                rx_index.eq(0), target.eq(cmd.target), frames.eq(cmd.frames),
                col.eq(0), cols_m1.eq(self.act_cols - 1), cols_m2.eq(self.act_cols - 2),
                last_col.eq(self.act_cols == 1), row_base.eq(0), row_addr.eq(0), odd_row.eq(0),
                plane2.eq(self.act_plane << 1), plane3.eq((self.act_plane << 1) + self.act_plane),
                wt_word.eq(Cat(Const(0, len(wt_word) - 1), cmd.bank)), chunk.eq(0),
            ]

        data_in = self.rd.readdata
        valid = self.rd.readdatavalid
        stride = Signal(range(1 << 14))
        m.d.comb += stride.eq(Const(1, 14) << self.act_cb)

        # Activations: codes words straight in; frame-pair words thermometer-coded.
        codes_word = thermometer_word(m, data_in, p.simd_lanes) if p.simd_lanes in FRAME_SIMD_LANES else data_in
        # The write address in two register stages (at most one adder each): a row's start with its
        # group, then plus the column.
        if frame_pixels == 1:
            # One pixel a word: the two pixels of a row of a 2x2 block are groups 2*dy and 2*dy + 1.
            group_off = Mux(odd_row, Mux(col[0], plane3, plane2), Mux(col[0], self.act_plane, 0))
            frame_col = col >> 1
        else:
            # Two pixels a word: a word is one row of a 2x2 block, group dy.
            group_off = Mux(odd_row, self.act_plane, 0)
            frame_col = col
        act_we = Signal()
        wt_we = Signal(len(self.wt_we))
        start_a = Signal.like(row_base)
        col_a = Signal(13)
        data_a = Signal(bus)
        we_a = Signal()
        m.d.sync += [
            start_a.eq(Mux(frames, row_base + group_off, row_addr)),
            col_a.eq(Mux(frames, frame_col, col)),
            data_a.eq(Mux(frames, codes_word, data_in)),
            we_a.eq(act_we),
            self.act_waddr.eq(start_a + col_a),
            self.act_wdata.eq(data_a),
            self.act_we.eq(we_a),
            self.wt_wdata.eq(data_in),
            self.wt_waddr.eq(wt_word),
            self.wt_we.eq(wt_we),
        ]
        with m.If(valid):
            m.d.sync += [rx_left.eq(rx_left - 1), rx_index.eq(rx_index + 1),
                         rx_zero.eq(rx_one), rx_one.eq(rx_left == 2)]
            with m.Switch(target):
                with m.Case(TARGET_DESC):
                    for i in range(desc_beats):
                        with m.If(rx_index == i):
                            hi = min((i + 1) * bus, DESCRIPTOR.bits)
                            m.d.sync += self.desc[i * bus:hi].eq(data_in[:hi - i * bus])
                with m.Case(TARGET_ACT):
                    m.d.comb += act_we.eq(1)
                    with m.If(last_col):
                        m.d.sync += [col.eq(0), last_col.eq(cols_m1 == 0)]
                        with m.If(frames):
                            m.d.sync += odd_row.eq(~odd_row)
                            with m.If(odd_row):
                                m.d.sync += row_base.eq(row_base + stride)
                        with m.Else():
                            m.d.sync += row_addr.eq(row_addr + stride)
                    with m.Else():
                        m.d.sync += [col.eq(col + 1), last_col.eq(col == cols_m2)]
                with m.Case(TARGET_WEIGHTS):
                    for i in range(ww_beats):
                        with m.If(chunk == i):
                            m.d.comb += wt_we[i].eq(1)
                    if ww_beats > 1:
                        m.d.sync += chunk.eq(chunk + 1)
                        with m.If(chunk == ww_beats - 1):
                            m.d.sync += wt_word.eq(wt_word + 1)
                    else:
                        m.d.sync += wt_word.eq(wt_word + 1)
                with m.Case(TARGET_THRESHOLDS):
                    for i in range(thr_beats):
                        with m.If(rx_index == i):
                            m.d.sync += self.thresholds[i * bus:(i + 1) * bus].eq(data_in)
        return m
