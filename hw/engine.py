"""The convolution engine: executes a list of layer descriptors from memory.

Per descriptor (see :mod:`models.engine` for the format and the functional model it matches):

1. fetch the descriptor (one read burst) and decode it;
2. validate it (sizes from a shift-add multiplier: the engine contains no multiplier that could
   become a DSP block) against the buffers, the accumulator bound, the bus alignment and the
   memory window; an invalid descriptor stops the list with an error code;
3. load the whole source tensor into the activation buffer, rows at a power-of-two stride so
   that space_to_depth, upsampling and padding are pure address arithmetic;
4. for every tile of ``P`` output channels: load its threshold records into a register bank
   (its weights are already in one bank of the double-buffered weight buffer: the first tile's
   are loaded before it, every next tile's while the previous one runs), then stream every output pixel through the PE
   array (``k*k*G`` beats: groups outer, taps inner) and the threshold unit, and write codes
   (one bus word per pixel, byte enables on the tile's lanes, so concat members share words) or
   raw accumulators (a burst per pixel, channels past ``O`` zero);
5. drain, count, and go on with the next descriptor.

Every stage is a valid/ready stream: memory waitrequest back-pressures the writer, the threshold
unit, the PE array and the sequencer in turn.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.engine import (DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_INPUT_OP, ERR_KERNEL,
                           ERR_NONE, ERR_OVERFLOW, ERR_SHAPE, OP_CODES, OUTPUT_RAW, EngineParams)
from models.cycles import MUL_COUNT, MUL_CYCLES
from models.quant import ACT_BITS

from ._params import check_int
from .avalon import ReadMasterSignature, WriteMasterSignature
from .pe_array import PEArray
from .threshold import ThresholdUnit

__all__ = ["ConvEngine"]

_OP_ID = OP_CODES["identity"]
_OP_S2D = OP_CODES["space_to_depth"]
_OP_UP = OP_CODES["upsample"]


def _log2(x, name):
    if x & (x - 1):
        raise ValueError(f"{name} must be a power of two, not {x}")
    return x.bit_length() - 1


class ConvEngine(wiring.Component):
    """Descriptor-driven W1A2 convolution engine around a :class:`~hw.pe_array.PEArray`.

    Parameters
    ----------
    pe_count : int
        ``P``, output channels per cycle; a power of two, multiple of 8, dividing ``simd_lanes``.
    simd_lanes : int
        ``S``, input channels per cycle; a power of two, multiple of 8. The memory bus is
        ``2*S`` bits (one activation pixel-group per beat).
    acc_bound : int
        Largest ``|acc|`` supported (``3 * k_max**2 * c_in_max``).
    act_buffer_words : int
        Activation buffer depth in bus words (a power of two).
    weight_buffer_words : int
        Weight buffer depth per bank, in ``P*S``-bit words (a power of two; two banks).
    popcount_stages : int
        Register stages in the PE popcount trees.
    max_burst : int
        Longest memory burst (a power of two).

    Members
    -------
    rd : ``Out(ReadMasterSignature)``
        Avalon-MM read master (descriptors, activations, weights, thresholds).
    wr : ``Out(WriteMasterSignature)``
        Avalon-MM write master (results).
    start : ``In(1)``
        Pulse: run ``desc_count`` descriptors from ``desc_addr`` (ignored while busy).
    desc_addr, desc_count, window_base, window_size : ``In``
        The list and the memory window the engine may touch.
    busy : ``Out(1)``
    finished : ``Out(1)``
        Pulse when a list ends (completed or stopped by an error).
    error_code, error_index, error_layer : ``Out(8)``
        Why and where the last list stopped (``ERR_NONE`` if it completed).
    layer_done : ``Out(1)``
        Pulse when a descriptor completes; ``layer_index`` and ``layer_cycles`` describe it.
    layer_index : ``Out(8)``
    layer_cycles : ``Out(32)``

    Raises
    ------
    TypeError, ValueError
        On a parameter that is not an integer or out of range.
    """

    def __init__(self, *, pe_count, simd_lanes, acc_bound, act_buffer_words, weight_buffer_words,
                 popcount_stages=2, max_burst=64):
        try:
            self._check(pe_count, simd_lanes, acc_bound, act_buffer_words, weight_buffer_words,
                        popcount_stages, max_burst)
        except (TypeError, ValueError):
            self._MustUse__silence = True      # an engine that could not be built is not "unused"
            raise
        bus = 2 * self._s
        super().__init__({
            "rd": Out(ReadMasterSignature(data_width=bus, burst_width=self._max_burst.bit_length())),
            "wr": Out(WriteMasterSignature(data_width=bus, burst_width=self._max_burst.bit_length())),
            "start": In(1),
            "desc_addr": In(32),
            "desc_count": In(16),
            "window_base": In(32),
            "window_size": In(32),
            "busy": Out(1),
            "finished": Out(1),
            "error_code": Out(8),
            "error_index": Out(16),
            "error_layer": Out(8),
            "layer_done": Out(1),
            "layer_index": Out(8),
            "layer_cycles": Out(32),
        })

    def _check(self, pe_count, simd_lanes, acc_bound, act_buffer_words, weight_buffer_words,
               popcount_stages, max_burst):
        # The engine's rules are the contract's (models.engine.EngineParams): checked there, once.
        for name, value in (("pe_count", pe_count), ("simd_lanes", simd_lanes), ("acc_bound", acc_bound),
                            ("act_buffer_words", act_buffer_words), ("weight_buffer_words", weight_buffer_words),
                            ("popcount_stages", popcount_stages), ("max_burst", max_burst)):
            check_int(name, value, minimum=0 if name == "popcount_stages" else 1)
        self.params = EngineParams(pe_count=pe_count, simd_lanes=simd_lanes, acc_bound=acc_bound,
                                   act_buffer_words=act_buffer_words, weight_buffer_words=weight_buffer_words,
                                   max_burst=max_burst, popcount_stages=popcount_stages)
        p = self.params
        self._p, self._s, self._acc_bound = p.pe_count, p.simd_lanes, p.acc_bound
        self._act_words, self._wt_words = p.act_buffer_words, p.weight_buffer_words
        self._popcount_stages, self._max_burst = p.popcount_stages, p.max_burst
        self._record = p.threshold_layout
        self._acc_bits = p.acc_bits

    pe_count = property(lambda self: self._p)
    simd_lanes = property(lambda self: self._s)
    acc_bound = property(lambda self: self._acc_bound)
    act_buffer_words = property(lambda self: self._act_words)
    weight_buffer_words = property(lambda self: self._wt_words)
    popcount_stages = property(lambda self: self._popcount_stages)
    max_burst = property(lambda self: self._max_burst)
    acc_bits = property(lambda self: self._acc_bits)

    @property
    def bus_bits(self):
        return 2 * self._s

    @property
    def mac_per_cycle(self):
        return self._p * self._s

    def elaborate(self, platform):
        m = Module()
        P, S = self._p, self._s
        BUS = 2 * S
        BUS_BYTES = BUS // 8
        LOG_BUS_BYTES = _log2(BUS_BYTES, "bus bytes")
        LOG_S = _log2(S, "simd_lanes")
        LOG_P = _log2(P, "pe_count")
        REC = self._record.bits
        ACC_BITS = self._acc_bits
        WW_BEATS = P * S // BUS                   # bus beats per PE-array weight word
        THR_BEATS = P * REC // BUS
        RAW_BEATS = P * ACC_BITS // BUS
        LOG_WW_BEATS = _log2(WW_BEATS, "weight word beats")
        LOG_WORD_BYTES = _log2(P * S // 8, "weight word bytes")
        LOG_THR_TILE_BYTES = _log2(P * REC // 8, "threshold tile bytes")
        LOG_RAW_TILE_BYTES = _log2(P * ACC_BITS // 8, "raw tile bytes")
        TILES_PER_GROUP = S // P
        DESC_BEATS = -(-DESCRIPTOR.bits // BUS)
        MAXB = self._max_burst

        # ------------------------------------------------------------------ submodules
        m.submodules.pe_array = pe_array = PEArray(pe_count=P, simd_lanes=S, acc_bound=self._acc_bound,
                                                   popcount_stages=self._popcount_stages)
        m.submodules.thresh = thresh = ThresholdUnit(channels=P, acc_bound=self._acc_bound)
        m.submodules.act_mem = act_mem = Memory(shape=unsigned(BUS), depth=self._act_words, init=[])
        # The weight buffer is P*S bits wide and written one bus word at a time: one memory per bus
        # word of a weight word (a single write enable each, which every block-RAM mapper takes;
        # one wide memory with a write granularity is not mapped to M10K by every tool).
        wt_banks = []
        for i in range(P * S // BUS):
            mem = Memory(shape=unsigned(BUS), depth=2 * self._wt_words, init=[])
            m.submodules[f"wt_mem{i}"] = mem
            wt_banks.append((mem.write_port(), mem.read_port()))
        act_wp = act_mem.write_port()
        act_rp = act_mem.read_port()
        wbeat = data.StructLayout({"addr": 32, "burst": self._max_burst.bit_length(), "data": BUS,
                                   "be": BUS // 8})
        m.submodules.wfifo = wfifo = fifo.SyncFIFOBuffered(width=wbeat.size, depth=max(8, 2 * RAW_BEATS))

        # ------------------------------------------------------------------ descriptor fields
        desc_bits = Signal(DESCRIPTOR.bits)
        f = {fl.name: desc_bits[DESCRIPTOR.offsets[fl.name]:DESCRIPTOR.offsets[fl.name] + fl.width]
             for fl in DESCRIPTOR.fields}

        kernel = Signal(4)
        op = Signal(2)
        raw_mode = Signal()
        layer_id = Signal(8)
        hs = Signal(13)
        ws = Signal(13)
        cs = Signal(14)
        oc = Signal(13)
        src_addr = Signal(32)
        w_addr = Signal(32)
        t_addr = Signal(32)
        d_addr = Signal(32)
        ho = Signal(14)
        wo = Signal(14)
        cin = Signal(16)
        gs = Signal(12)           # source groups
        gin = Signal(12)          # conv-input groups
        n_tiles = Signal(12)
        gout = Signal(12)
        cb = Signal(4)            # log2 of the activation buffer row stride
        taps = Signal(4)
        wwt = Signal(16)          # weight words per tile = gin * taps
        s2d = Signal()
        pad = Signal()

        # ------------------------------------------------------------------ list state
        index = Signal(16)
        count = Signal(16)
        list_base = Signal(32)
        win_base = Signal(32)
        win_size = Signal(32)
        layer_cyc = Signal(32)
        tile = Signal(12)

        # ------------------------------------------------------------------ read requests
        rq_addr = Signal(32)
        rq_left = Signal(24)
        rq_burst = Signal(self._max_burst.bit_length())
        m.d.comb += rq_burst.eq(Mux(rq_left > MAXB, MAXB, rq_left))
        m.d.comb += [
            self.rd.address.eq(rq_addr),
            self.rd.burstcount.eq(rq_burst),
            self.rd.read.eq(rq_left != 0),
        ]
        with m.If(self.rd.read & ~self.rd.waitrequest):
            m.d.sync += [
                rq_addr.eq(rq_addr + (rq_burst << LOG_BUS_BYTES)),
                rq_left.eq(rq_left - rq_burst),
            ]
        rx_count = Signal(24)
        rx_total = Signal(24)
        rx_done = Signal()
        m.d.comb += rx_done.eq(rx_count == rx_total)

        # receive demux targets
        LD_DESC, LD_ACT, LD_WGT, LD_THR = range(4)
        ld = Signal(2)
        ld_col = Signal(13)
        ld_row = Signal(13)
        ld_rowbase = Signal(range(self._act_words + 1))
        ld_waddr = Signal(range(2 * self._wt_words))
        ld_chunk = Signal(max(LOG_WW_BEATS, 1))
        thr_bank = Signal(P * REC)
        rdata = self.rd.readdata
        m.d.comb += [
            act_wp.data.eq(rdata),
            act_wp.addr.eq(ld_rowbase | ld_col),
        ]
        for wp, _ in wt_banks:
            m.d.comb += [wp.data.eq(rdata), wp.addr.eq(ld_waddr)]
        with m.If(self.rd.readdatavalid):
            m.d.sync += rx_count.eq(rx_count + 1)
            with m.Switch(ld):
                with m.Case(LD_DESC):
                    for i in range(DESC_BEATS):
                        with m.If(rx_count == i):
                            hi = min((i + 1) * BUS, DESCRIPTOR.bits)
                            m.d.sync += desc_bits[i * BUS:hi].eq(rdata[:hi - i * BUS])
                with m.Case(LD_ACT):
                    m.d.comb += act_wp.en.eq(1)
                    with m.If(ld_col == ws - 1):
                        m.d.sync += [ld_col.eq(0), ld_rowbase.eq(ld_rowbase + (1 << cb))]
                    with m.Else():
                        m.d.sync += ld_col.eq(ld_col + 1)
                with m.Case(LD_WGT):
                    for i, (wp, _) in enumerate(wt_banks):
                        with m.If(ld_chunk == i):
                            m.d.comb += wp.en.eq(1)
                    if WW_BEATS > 1:
                        m.d.sync += ld_chunk.eq(ld_chunk + 1)
                        with m.If(ld_chunk == WW_BEATS - 1):
                            m.d.sync += ld_waddr.eq(ld_waddr + 1)
                    else:
                        m.d.sync += ld_waddr.eq(ld_waddr + 1)
                with m.Case(LD_THR):
                    for i in range(THR_BEATS):
                        with m.If(rx_count == i):
                            m.d.sync += thr_bank[i * BUS:(i + 1) * BUS].eq(rdata)

        def start_read(addr, words, target):
            m.d.sync += [rq_addr.eq(addr), rq_left.eq(words), rx_count.eq(0), rx_total.eq(words),
                         ld.eq(target)]

        # ------------------------------------------------------------------ shift-add multiplier
        mul_a = Signal(40)
        mul_b = Signal(MUL_CYCLES)
        mul_p = Signal(40)
        mul_n = Signal(range(MUL_CYCLES + 1))
        vstep = Signal(range(MUL_COUNT + 1))
        prod = [Signal(40, name=f"prod{i}") for i in range(MUL_COUNT)]

        # ------------------------------------------------------------------ sequencer (stage A)
        ox = Signal(14)
        oy = Signal(14)
        dx = Signal(2)
        dy = Signal(2)
        sg = Signal(12)
        sb = Signal(2)
        gbase = Signal(range(self._act_words + 1))
        plane = Signal(range(2 * self._act_words + 1))       # gs-th of the source: hs << cb
        widx = Signal(16)
        seq_run = Signal()
        seq_last_pixel = Signal()
        advance = Signal()
        b_valid = Signal()
        b_first = Signal()
        b_last = Signal()
        b_pad = Signal()

        yi = Signal(signed(16))
        xi = Signal(signed(16))
        inside = Signal()
        srow = Signal(16)
        scol = Signal(16)
        m.d.comb += [
            yi.eq(oy + dy - pad),
            xi.eq(ox + dx - pad),
            inside.eq((yi >= 0) & (yi < ho) & (xi >= 0) & (xi < wo)),
        ]
        with m.Switch(op):
            with m.Case(_OP_UP):
                m.d.comb += [srow.eq(yi[1:]), scol.eq(xi[1:])]
            with m.Case(_OP_S2D):
                m.d.comb += [srow.eq(Cat(sb[1], yi[:15])), scol.eq(Cat(sb[0], xi[:15]))]
            with m.Default():
                m.d.comb += [srow.eq(yi), scol.eq(xi)]
        m.d.comb += [
            advance.eq(~b_valid | pe_array.i_stream.ready),
            act_rp.addr.eq(gbase + (srow << cb) | scol),
            act_rp.en.eq(advance),
        ]
        for _, rp in wt_banks:
            m.d.comb += [rp.addr.eq(Cat(widx[:len(rp.addr) - 1], tile[0])), rp.en.eq(advance)]
        last_tap = Signal()
        last_group = Signal()
        m.d.comb += [
            last_tap.eq((dx == kernel - 1) & (dy == kernel - 1)),
            last_group.eq((sg == gs - 1) & (~s2d | (sb == 3))),
        ]
        with m.If(advance):
            m.d.sync += [
                b_valid.eq(seq_run),
                b_first.eq(widx == 0),
                b_last.eq(widx == wwt - 1),
                b_pad.eq(~inside),
            ]
            with m.If(seq_run):
                m.d.sync += widx.eq(Mux(widx == wwt - 1, 0, widx + 1))
                with m.If(dx == kernel - 1):
                    m.d.sync += dx.eq(0)
                    with m.If(dy == kernel - 1):
                        m.d.sync += dy.eq(0)
                    with m.Else():
                        m.d.sync += dy.eq(dy + 1)
                with m.Else():
                    m.d.sync += dx.eq(dx + 1)
                with m.If(last_tap):
                    with m.If(sg == gs - 1):
                        m.d.sync += [sg.eq(0), gbase.eq(0)]
                        with m.If(s2d):
                            m.d.sync += sb.eq(sb + 1)
                    with m.Else():
                        m.d.sync += [sg.eq(sg + 1), gbase.eq(gbase + plane)]
                    with m.If(last_group):
                        with m.If(ox == wo - 1):
                            m.d.sync += ox.eq(0)
                            with m.If(oy == ho - 1):
                                m.d.sync += [oy.eq(0), seq_run.eq(0)]
                            with m.Else():
                                m.d.sync += oy.eq(oy + 1)
                        with m.Else():
                            m.d.sync += ox.eq(ox + 1)

        # stage B -> PE array
        act_word = act_rp.data
        m.d.comb += [
            pe_array.i_stream.valid.eq(b_valid),
            pe_array.i_stream.payload.planes[0].eq(Mux(b_pad, 0, act_word[:S])),
            pe_array.i_stream.payload.planes[1].eq(Mux(b_pad, 0, act_word[S:])),
            pe_array.i_stream.payload.weights.eq(Cat(rp.data for _, rp in wt_banks)),
            pe_array.i_stream.payload.first.eq(b_first),
            pe_array.i_stream.payload.last.eq(b_last),
        ]

        # PE array -> threshold unit
        m.d.comb += [
            thresh.i_stream.valid.eq(pe_array.o_stream.valid),
            pe_array.o_stream.ready.eq(thresh.i_stream.ready),
            thresh.i_stream.payload.acc.eq(pe_array.o_stream.payload),
            thresh.i_stream.payload.thresholds.eq(thr_bank),
            thresh.i_stream.payload.bypass.eq(raw_mode),
        ]

        # ------------------------------------------------------------------ writer
        out_count = Signal(28)
        pix_addr = Signal(32)
        tile_dst = Signal(32)
        pix_stride = Signal(32)
        lane_mask = Signal(P)
        raw_beat = Signal(range(max(RAW_BEATS, 2)))
        tout = thresh.o_stream.payload
        wb = Signal(wbeat)
        m.d.comb += wfifo.w_data.eq(wb)

        plane0 = Cat(tout.codes[p][0] for p in range(P))
        plane1 = Cat(tout.codes[p][1] for p in range(P))
        lane_sel = Signal(range(max(TILES_PER_GROUP, 2)))
        m.d.comb += lane_sel.eq(tile[:max(TILES_PER_GROUP.bit_length() - 1, 1)] if TILES_PER_GROUP > 1 else 0)
        code_data = Signal(BUS)
        code_be = Signal(BUS // 8)
        with m.Switch(lane_sel):
            for j in range(TILES_PER_GROUP):
                with m.Case(j):
                    lo = j * P
                    m.d.comb += code_data.eq((plane0 << lo) | (plane1 << (S + lo)))
        # An expression, not a case of constants: a block that reads nothing but lane_sel is never
        # evaluated by some simulators (Icarus) while lane_sel keeps its initial value.
        m.d.comb += code_be.eq(Cat(lane_sel == (b % (S // 8)) // (P // 8) for b in range(BUS // 8)))
        lanes = []
        for p in range(P):
            lane = Signal(signed(ACC_BITS), name=f"raw_lane{p}")
            m.d.comb += lane.eq(Mux(lane_mask[p], tout.acc[p], 0))
            lanes.append(lane)
        raw_words = Cat(*lanes)
        raw_slice = Signal(BUS)
        with m.Switch(raw_beat):
            for j in range(RAW_BEATS):
                with m.Case(j):
                    m.d.comb += raw_slice.eq(raw_words[j * BUS:(j + 1) * BUS])

        with m.If(raw_mode):
            m.d.comb += [
                wb.addr.eq(pix_addr),
                wb.burst.eq(RAW_BEATS),
                wb.data.eq(raw_slice),
                wb.be.eq((1 << (BUS // 8)) - 1),
                wfifo.w_en.eq(thresh.o_stream.valid),
                thresh.o_stream.ready.eq(wfifo.w_rdy & (raw_beat == RAW_BEATS - 1)),
            ]
            with m.If(wfifo.w_en & wfifo.w_rdy):
                with m.If(raw_beat == RAW_BEATS - 1):
                    m.d.sync += [raw_beat.eq(0), pix_addr.eq(pix_addr + pix_stride), out_count.eq(out_count + 1)]
                with m.Else():
                    m.d.sync += raw_beat.eq(raw_beat + 1)
        with m.Else():
            m.d.comb += [
                wb.addr.eq(pix_addr),
                wb.burst.eq(1),
                wb.data.eq(code_data),
                wb.be.eq(code_be),
                wfifo.w_en.eq(thresh.o_stream.valid),
                thresh.o_stream.ready.eq(wfifo.w_rdy),
            ]
            with m.If(wfifo.w_en & wfifo.w_rdy):
                m.d.sync += [pix_addr.eq(pix_addr + BUS_BYTES), out_count.eq(out_count + 1)]

        # write master
        head = Signal(wbeat)
        m.d.comb += [
            head.eq(wfifo.r_data),
            self.wr.write.eq(wfifo.r_rdy),
            self.wr.address.eq(head.addr),
            self.wr.burstcount.eq(head.burst),
            self.wr.writedata.eq(head.data),
            self.wr.byteenable.eq(head.be),
            wfifo.r_en.eq(~self.wr.waitrequest),
        ]

        # ------------------------------------------------------------------ control FSM
        hwo = prod[2]
        done_index = Signal(8)
        m.d.comb += [
            self.layer_index.eq(done_index),
            self.layer_cycles.eq(layer_cyc),
        ]
        m.d.sync += [self.finished.eq(0), self.layer_done.eq(0)]

        def fail(code):
            m.d.sync += [self.error_code.eq(code), self.error_index.eq(index), self.error_layer.eq(layer_id),
                         self.finished.eq(1), self.busy.eq(0)]
            m.next = "IDLE"

        def within(addr, nbytes):
            end = Signal(40)
            lim = Signal(40)
            m.d.comb += [end.eq(addr + nbytes), lim.eq(win_base + win_size)]
            return (addr >= win_base) & (end <= lim)

        with m.If(self.busy):
            m.d.sync += layer_cyc.eq(layer_cyc + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.busy.eq(1), index.eq(0), count.eq(self.desc_count), list_base.eq(self.desc_addr),
                        win_base.eq(self.window_base), win_size.eq(self.window_size),
                        self.error_code.eq(ERR_NONE), self.error_index.eq(0), self.error_layer.eq(0),
                        layer_cyc.eq(0),
                    ]
                    m.next = "NEXT"
            with m.State("NEXT"):
                desc_in_window = within(list_base, DESCRIPTOR.nbytes)
                with m.If(index == count):
                    m.d.sync += [self.busy.eq(0), self.finished.eq(1)]
                    m.next = "IDLE"
                with m.Elif(list_base[:LOG_BUS_BYTES] != 0):
                    m.d.sync += layer_id.eq(0)
                    fail(ERR_ALIGN)
                with m.Elif(~desc_in_window):
                    m.d.sync += layer_id.eq(0)
                    fail(ERR_ADDRESS)
                with m.Else():
                    start_read(list_base, DESC_BEATS, LD_DESC)
                    m.next = "DESC"
            with m.State("DESC"):
                with m.If(rx_done & (rq_left == 0)):
                    m.next = "DECODE"
            with m.State("DECODE"):
                is_s2d = f["input_op"] == _OP_S2D
                is_up = f["input_op"] == _OP_UP
                m.d.sync += [
                    kernel.eq(f["kernel"]), op.eq(f["input_op"]), raw_mode.eq(f["output_mode"] == OUTPUT_RAW),
                    layer_id.eq(f["layer_id"]), hs.eq(f["src_height"]), ws.eq(f["src_width"]),
                    cs.eq(f["src_channels"]), oc.eq(f["out_channels"]), src_addr.eq(f["src_addr"]),
                    w_addr.eq(f["weights_addr"]), t_addr.eq(f["thresholds_addr"]), d_addr.eq(f["dst_addr"]),
                    s2d.eq(is_s2d), pad.eq(f["kernel"] == 3),
                    ho.eq(Mux(is_s2d, f["src_height"] >> 1, Mux(is_up, f["src_height"] << 1, f["src_height"]))),
                    wo.eq(Mux(is_s2d, f["src_width"] >> 1, Mux(is_up, f["src_width"] << 1, f["src_width"]))),
                    cin.eq(Mux(is_s2d, f["src_channels"] << 2, f["src_channels"])),
                    gs.eq((f["src_channels"] + S - 1) >> LOG_S),
                    gin.eq(((Mux(is_s2d, f["src_channels"] << 2, f["src_channels"])) + S - 1) >> LOG_S),
                    n_tiles.eq((f["out_channels"] + P - 1) >> LOG_P),
                    gout.eq((f["out_channels"] + S - 1) >> LOG_S),
                    taps.eq(Mux(f["kernel"] == 3, 9, 1)),
                ]
                wm1 = f["src_width"] - 1
                cbv = Signal(4)
                for b in range(13):
                    with m.If(wm1[b]):
                        m.d.comb += cbv.eq(b + 1)
                m.d.sync += [cb.eq(cbv), vstep.eq(0), mul_n.eq(0)]
                m.next = "SETUP"
            with m.State("SETUP"):
                m.d.sync += wwt.eq(Mux(taps == 9, (gin << 3) + gin, gin))
                m.next = "MUL"
            with m.State("MUL"):
                # operands per step: (a, b) -> prod[step]
                operands = [(gs, hs), (prod[0], ws), (ho, wo), (n_tiles, wwt), (hwo, gout), (hwo, n_tiles)]
                with m.If(mul_n == 0):
                    with m.Switch(vstep):
                        for i, (a, b) in enumerate(operands):
                            with m.Case(i):
                                m.d.sync += [mul_a.eq(a), mul_b.eq(b), mul_p.eq(0)]
                    m.d.sync += mul_n.eq(1)
                with m.Elif(mul_n <= MUL_CYCLES - 1):
                    m.d.sync += [
                        mul_p.eq(mul_p + Mux(mul_b[0], mul_a, 0)),
                        mul_a.eq(mul_a << 1),
                        mul_b.eq(mul_b >> 1),
                        mul_n.eq(mul_n + 1),
                    ]
                with m.Else():
                    with m.Switch(vstep):
                        for i in range(MUL_COUNT):
                            with m.Case(i):
                                m.d.sync += prod[i].eq(mul_p + Mux(mul_b[0], mul_a, 0))
                    m.d.sync += [mul_n.eq(0), vstep.eq(vstep + 1)]
                    with m.If(vstep == MUL_COUNT - 1):
                        m.next = "CHECK"
            with m.State("CHECK"):
                act_need = Signal(40)
                src_bytes = Signal(40)
                w_bytes = Signal(40)
                thr_bytes = Signal(40)
                dst_bytes = Signal(40)
                m.d.comb += [
                    act_need.eq(prod[0] << cb),
                    src_bytes.eq(prod[1] << LOG_BUS_BYTES),
                    w_bytes.eq(prod[3] << LOG_WORD_BYTES),
                    thr_bytes.eq(n_tiles << LOG_THR_TILE_BYTES),
                    dst_bytes.eq(Mux(raw_mode, prod[5] << LOG_RAW_TILE_BYTES, prod[4] << LOG_BUS_BYTES)),
                ]
                lim1 = self._acc_bound // 3
                lim9 = self._acc_bound // 27
                aligned = ((src_addr[:LOG_BUS_BYTES] == 0) & (w_addr[:LOG_BUS_BYTES] == 0)
                           & (d_addr[:LOG_BUS_BYTES] == 0) & (raw_mode | (t_addr[:LOG_BUS_BYTES] == 0)))
                inwin = (within(src_addr, src_bytes) & within(w_addr, w_bytes) & within(d_addr, dst_bytes)
                         & (raw_mode | within(t_addr, thr_bytes)))
                with m.If((kernel != 1) & (kernel != 3)):
                    fail(ERR_KERNEL)
                with m.Elif(op == 3):
                    fail(ERR_INPUT_OP)
                with m.Elif((hs == 0) | (ws == 0) | (cs == 0) | (oc == 0)):
                    fail(ERR_SHAPE)
                with m.Elif(s2d & (hs[0] | ws[0] | (cs[:LOG_S] != 0))):
                    fail(ERR_SHAPE)
                with m.Elif((act_need > self._act_words) | (wwt > self._wt_words)):
                    fail(ERR_CAPACITY)
                with m.Elif(Mux(kernel == 3, cin > lim9, cin > lim1)):
                    fail(ERR_OVERFLOW)
                with m.Elif(~aligned):
                    fail(ERR_ALIGN)
                with m.Elif(~inwin):
                    fail(ERR_ADDRESS)
                with m.Else():
                    m.d.sync += [
                        plane.eq(hs << cb), ld_col.eq(0), ld_rowbase.eq(0), tile.eq(0),
                        tile_dst.eq(d_addr),
                        pix_stride.eq(Mux(raw_mode, n_tiles << LOG_RAW_TILE_BYTES, BUS_BYTES)),
                    ]
                    start_read(src_addr, prod[1], LD_ACT)
                    m.next = "ACT"
            with m.State("ACT"):
                with m.If(rx_done & (rq_left == 0)):
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.sync += [lane_mask.eq(Cat((oc > (tile << LOG_P) + p) for p in range(P))),
                             pix_addr.eq(tile_dst), out_count.eq(0)]
                with m.If(tile == 0):
                    # the first tile's weights; the others are prefetched while the previous tile runs
                    m.d.sync += [ld_waddr.eq(0), ld_chunk.eq(0)]
                    start_read(w_addr, wwt << LOG_WW_BEATS, LD_WGT)
                    m.next = "WGT"
                with m.Elif(raw_mode):
                    m.next = "RUN"
                with m.Else():
                    start_read(t_addr, THR_BEATS, LD_THR)
                    m.next = "THR"
            with m.State("WGT"):
                with m.If(rx_done & (rq_left == 0)):
                    with m.If(raw_mode):
                        m.next = "RUN"
                    with m.Else():
                        start_read(t_addr, THR_BEATS, LD_THR)
                        m.next = "THR"
            with m.State("THR"):
                with m.If(rx_done & (rq_left == 0)):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += [seq_run.eq(1), ox.eq(0), oy.eq(0), dx.eq(0), dy.eq(0), sg.eq(0), sb.eq(0),
                             gbase.eq(0), widx.eq(0)]
                with m.If(tile != n_tiles - 1):
                    # prefetch the next tile's weights into the other bank (double buffering)
                    m.d.sync += [ld_waddr.eq(Cat(Const(0, len(ld_waddr) - 1), ~tile[0])), ld_chunk.eq(0)]
                    start_read(w_addr + (wwt << LOG_WORD_BYTES), wwt << LOG_WW_BEATS, LD_WGT)
                m.next = "COMPUTE"
            with m.State("COMPUTE"):
                with m.If(~seq_run & (out_count == hwo) & ~wfifo.r_rdy & rx_done & (rq_left == 0)):
                    m.d.sync += [
                        tile.eq(tile + 1),
                        w_addr.eq(w_addr + (wwt << LOG_WORD_BYTES)),
                        t_addr.eq(t_addr + (P * REC // 8)),
                    ]
                    if TILES_PER_GROUP > 1:
                        with m.If(raw_mode):
                            m.d.sync += tile_dst.eq(tile_dst + (P * ACC_BITS // 8))
                        with m.Elif(tile[:_log2(TILES_PER_GROUP, "tiles per group")] == TILES_PER_GROUP - 1):
                            m.d.sync += tile_dst.eq(tile_dst + (hwo << LOG_BUS_BYTES))
                    else:
                        m.d.sync += tile_dst.eq(tile_dst + Mux(raw_mode, P * ACC_BITS // 8, hwo << LOG_BUS_BYTES))
                    with m.If(tile == n_tiles - 1):
                        m.next = "LAYER_END"
                    with m.Else():
                        m.next = "TILE"
            with m.State("LAYER_END"):
                m.d.sync += [self.layer_done.eq(1), index.eq(index + 1), done_index.eq(index),
                             list_base.eq(list_base + DESCRIPTOR.nbytes)]
                m.next = "LAYER_GAP"
            with m.State("LAYER_GAP"):
                m.d.sync += layer_cyc.eq(0)
                m.next = "NEXT"
        return m
