"""The convolution engine: a row of stream components under one control FSM.

Per descriptor of a list (see :mod:`models.engine` for the format and the functional model it
matches, :mod:`models.cycles` for the exact cycle count):

1. the loader fetches the descriptor; the decoder decodes it; the validator checks it (an
   invalid descriptor stops the list with an error code, before any memory access of its layer);
2. the loader reads the whole source tensor into the activation buffer (rows at a power-of-two
   stride; a frame-pair image thermometer-coded and space_to_depth'ed on the way);
3. for every tile of ``P`` output channels: the threshold records into their register bank (the
   weights are already in one bank of the weight buffer: the first tile's are loaded before it,
   every next tile's while the previous one runs), then the sequencer streams every output
   pixel's beats through the PE array and the threshold unit to the writer, which queues the
   destination words for the write master;
4. drain, count, and on to the next descriptor.

Nothing after the sequencer's first stage ever stalls: the sequencer holds a pixel's last beat
until the writer has room for its result and the writer's pace allows it, so there is no
combinational ready path through the pipeline.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.cycles import DECODE_CYCLES
from models.engine import DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_NONE, EngineParams

from .._params import check_int
from ..arith import gt, kept, lt
from ..avalon import ReadMasterSignature, WriteMasterSignature
from ..pe_array import PEArray
from ..threshold import ThresholdUnit
from .decoder import DescriptorDecoder
from .loader import TARGET_ACT, TARGET_DESC, TARGET_THRESHOLDS, TARGET_WEIGHTS, Loader
from .sequencer import Sequencer
from .validator import Validator
from .write_master import WriteMaster
from .writer import Writer

__all__ = ["ConvEngine"]


class ConvEngine(wiring.Component):
    """Descriptor-driven W1A2 convolution engine around a :class:`~hw.pe_array.PEArray`.

    Parameters
    ----------
    pe_count, simd_lanes, acc_bound, act_buffer_words, weight_buffer_words, max_burst, popcount_stages
        The fields of :class:`models.engine.EngineParams`, whose rules they must satisfy (one
        rule set for the gateware and the host). The memory bus is ``2 * simd_lanes`` bits.

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
    error_code : ``Out(8)``, error_index : ``Out(16)``, error_layer : ``Out(8)``
        Why and where the last list stopped (``ERR_NONE`` if it completed).
    layer_done : ``Out(1)``
        Pulse when a descriptor completes; ``layer_index`` and ``layer_cycles`` describe it.
    layer_index : ``Out(16)``
    layer_cycles : ``Out(32)``

    Raises
    ------
    TypeError, ValueError
        On a parameter that is not an integer or that the engine's rules refuse.
    """

    def __init__(self, *, pe_count, simd_lanes, acc_bound, act_buffer_words, weight_buffer_words,
                 popcount_stages=2, max_burst=64):
        try:
            for name, value in (("pe_count", pe_count), ("simd_lanes", simd_lanes), ("acc_bound", acc_bound),
                                ("act_buffer_words", act_buffer_words), ("weight_buffer_words", weight_buffer_words),
                                ("popcount_stages", popcount_stages), ("max_burst", max_burst)):
                check_int(name, value, minimum=0 if name == "popcount_stages" else 1)
            self.params = EngineParams(pe_count=pe_count, simd_lanes=simd_lanes, acc_bound=acc_bound,
                                       act_buffer_words=act_buffer_words, weight_buffer_words=weight_buffer_words,
                                       max_burst=max_burst, popcount_stages=popcount_stages)
        except (TypeError, ValueError):
            self._MustUse__silence = True      # an engine that could not be built is not "unused"
            raise
        p = self.params
        bus = p.bus_bits
        super().__init__({
            "rd": Out(ReadMasterSignature(data_width=bus, burst_width=p.max_burst.bit_length())),
            "wr": Out(WriteMasterSignature(data_width=bus, burst_width=p.max_burst.bit_length())),
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
            "layer_index": Out(16),
            "layer_cycles": Out(32),
        })

    pe_count = property(lambda self: self.params.pe_count)
    simd_lanes = property(lambda self: self.params.simd_lanes)
    acc_bound = property(lambda self: self.params.acc_bound)
    act_buffer_words = property(lambda self: self.params.act_buffer_words)
    weight_buffer_words = property(lambda self: self.params.weight_buffer_words)
    popcount_stages = property(lambda self: self.params.popcount_stages)
    max_burst = property(lambda self: self.params.max_burst)
    acc_bits = property(lambda self: self.params.acc_bits)

    @property
    def bus_bits(self):
        return self.params.bus_bits

    @property
    def mac_per_cycle(self):
        return self.params.pe_count * self.params.simd_lanes

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, S = p.pe_count, p.simd_lanes
        lane_bits = (P - 1).bit_length()          # bits of a channel index within a tile
        bus = p.bus_bits
        bus_bytes = p.bus_bytes
        log_bus_bytes = bus_bytes.bit_length() - 1
        rec_bits = p.threshold_layout.bits
        ww_beats = P * S // bus                       # bus words of a weight word
        thr_beats = P * rec_bits // bus
        tile_beats = P * p.acc_bits // bus            # bus words of a tile's raw accumulators
        tiles_per_group = S // P
        desc_beats = -(-DESCRIPTOR.bits // bus)
        frame_words_per_col = 64 // S if S in (32, 64) else 1    # frame-pair words a stored column, a row

        # ------------------------------------------------------------------ components
        m.submodules.loader = loader = Loader(params=p)
        m.submodules.decoder = decoder = DescriptorDecoder(params=p)
        m.submodules.validator = validator = Validator(params=p)
        m.submodules.sequencer = seq = Sequencer(params=p)
        m.submodules.pe_array = pe_array = PEArray(pe_count=P, simd_lanes=S, acc_bound=p.acc_bound,
                                                   popcount_stages=p.popcount_stages)
        m.submodules.thresh = thresh = ThresholdUnit(channels=P, acc_bound=p.acc_bound)
        m.submodules.writer = writer = Writer(params=p)
        m.submodules.write_master = wmaster = WriteMaster(params=p)
        m.submodules.act_mem = act_mem = Memory(shape=unsigned(bus), depth=p.act_buffer_words, init=[])
        # The weight buffer is P*S bits wide and written one bus word at a time: one memory per bus
        # word of a weight word (a single write enable each, which every block-RAM mapper takes).
        wt_read = []
        for i in range(ww_beats):
            mem = Memory(shape=unsigned(bus), depth=2 * p.weight_buffer_words, init=[])
            m.submodules[f"wt_mem{i}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(loader.wt_waddr), wp.data.eq(loader.wt_wdata), wp.en.eq(loader.wt_we[i]),
                         rp.addr.eq(seq.wt_raddr)]
            wt_read.append(rp.data)
        act_wp, act_rp = act_mem.write_port(), act_mem.read_port()
        m.d.comb += [
            act_wp.addr.eq(loader.act_waddr), act_wp.data.eq(loader.act_wdata), act_wp.en.eq(loader.act_we),
            act_rp.addr.eq(seq.act_raddr), seq.act_rdata.eq(act_rp.data),
            seq.wt_rdata.eq(Cat(*wt_read)),
            decoder.raw.eq(loader.desc),
            validator.fields.eq(decoder.fields),
            validator.derived.eq(decoder.derived),
        ]
        wiring.connect(m, loader.rd, wiring.flipped(self.rd))
        wiring.connect(m, wmaster.wr, wiring.flipped(self.wr))

        # The pipeline after the sequencer: never stalled.
        wiring.connect(m, seq.o_stream, pe_array.i_stream)
        m.d.comb += [
            thresh.i_stream.valid.eq(pe_array.o_stream.valid),
            pe_array.o_stream.ready.eq(1),
            thresh.i_stream.payload.acc.eq(pe_array.o_stream.payload),
            thresh.i_stream.payload.thresholds.eq(loader.thresholds),
            thresh.i_stream.payload.bypass.eq(decoder.derived.raw),
        ]
        wiring.connect(m, thresh.o_stream, writer.i_stream)
        wiring.connect(m, writer.o_stream, wmaster.i_stream)
        m.d.comb += [seq.credit_ok.eq(writer.credit_ok), writer.issued.eq(seq.issued_last)]

        # ------------------------------------------------------------------ list and layer state
        f, d = decoder.fields, decoder.derived
        index = Signal(16)
        count = Signal(16)
        list_base = Signal(32)
        win_base = Signal(32)
        win_limit = Signal(33)
        layer_cyc = Signal(32)
        done_index = Signal(16)
        tile = Signal(12)
        w_addr = Signal(32)                       # this tile's weights
        t_addr = Signal(32)                       # this tile's threshold records
        tile_dst = Signal(32)
        raw_left = Signal(13)                     # raw words of a pixel not yet written by earlier tiles
        ch_left = Signal(13)                      # output channels not yet covered by earlier tiles
        plane = Signal(range(2 * p.act_buffer_words))
        wt_words = Signal(28)                     # bus words of one tile's weights
        w_next = Signal(32)                       # the next tile's weights
        n_tiles_m1 = Signal(12)
        last_tile = Signal()
        first_tile = Signal()                     # tile == 0 (a register: no compare on the FSM's paths)
        # The next descriptor's address checks and the end of the list, registered whenever
        # list_base and index change (no compare on the FSM's paths).
        desc_misaligned = Signal()
        desc_outside = Signal()
        list_end = Signal()
        list_carry = Signal()                    # list_base + 32 passes 2**32
        list_wrapped = Signal()
        list_base_end = Signal(34)               # list_base + the descriptor's bytes (a register)
        m.d.comb += list_carry.eq(list_base_end[32:] != 0)
        m.d.comb += [
            validator.window_base.eq(win_base),
            validator.window_limit.eq(win_limit),
            self.layer_index.eq(done_index),
            self.layer_cycles.eq(layer_cyc),
        ]

        # sequencer, writer and write-master configuration of the current tile
        raw_now = Signal(range(tile_beats + 1))
        m.d.comb += [
            seq.cfg.pad.eq(d.pad), seq.cfg.op.eq(d.op), seq.cfg.ho.eq(d.ho), seq.cfg.wo.eq(d.wo),
            seq.cfg.cb.eq(d.cb), seq.cfg.plane.eq(plane), seq.cfg.gs.eq(d.gs), seq.cfg.wwt.eq(d.wwt),
            seq.cfg.bank.eq(tile[0]), seq.cfg.gap.eq(Mux(d.raw, raw_now, 1)),
            writer.raw.eq(d.raw),
            writer.lane_sel.eq(tile[:max((tiles_per_group - 1).bit_length(), 1)] if tiles_per_group > 1 else 0),
            writer.beats.eq(Mux(d.raw, raw_now, 1)),
            wmaster.dst.eq(tile_dst),
            wmaster.stride.eq(Mux(d.raw, d.raw_beats << log_bus_bytes, bus_bytes)),
            wmaster.beats.eq(Mux(d.raw, raw_now, 1)),
            loader.act_cols.eq(Mux(d.frames, d.ws << (frame_words_per_col.bit_length() - 1), d.ws)),
            loader.act_cb.eq(d.cb),
            loader.act_plane.eq(plane),
        ]
        lane_mask = Signal(P)
        m.d.comb += writer.lane_mask.eq(lane_mask)

        def read(target, addr, words, bank=0, frames=0):
            m.d.comb += [loader.cmd_valid.eq(1), loader.cmd.target.eq(target), loader.cmd.addr.eq(addr),
                         loader.cmd.words.eq(words), loader.cmd.bank.eq(bank), loader.cmd.frames.eq(frames)]

        def fail(code, layer):
            m.d.sync += [self.error_code.eq(code), self.error_index.eq(index), self.error_layer.eq(layer),
                         self.finished.eq(1), self.busy.eq(0)]
            m.next = "IDLE"

        with m.If(self.busy):
            m.d.sync += layer_cyc.eq(layer_cyc + 1)
        m.d.sync += [self.finished.eq(0), self.layer_done.eq(0)]
        decode_wait = Signal(range(DECODE_CYCLES + 1))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    first_end = kept(m, self.desc_addr + DESCRIPTOR.nbytes, "first_end")
                    limit = kept(m, self.window_base + self.window_size, "limit")
                    m.d.sync += [
                        desc_misaligned.eq(self.desc_addr[:log_bus_bytes] != 0),
                        desc_outside.eq(lt(self.desc_addr, self.window_base) | gt(first_end, limit)),
                        self.busy.eq(1), index.eq(0), count.eq(self.desc_count), list_base.eq(self.desc_addr),
                        list_base_end.eq(first_end),
                        list_end.eq(self.desc_count == 0), list_wrapped.eq(0),
                        win_base.eq(self.window_base), win_limit.eq(limit),
                        self.error_code.eq(ERR_NONE), self.error_index.eq(0), self.error_layer.eq(0),
                        layer_cyc.eq(0),
                    ]
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(list_end):
                    m.d.sync += [self.busy.eq(0), self.finished.eq(1)]
                    m.next = "IDLE"
                with m.Elif(desc_misaligned):
                    fail(ERR_ALIGN, 0)
                with m.Elif(desc_outside):
                    fail(ERR_ADDRESS, 0)
                with m.Else():
                    read(TARGET_DESC, list_base, desc_beats)
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.If(loader.done):
                    m.d.comb += decoder.load.eq(1)
                    m.d.sync += decode_wait.eq(DECODE_CYCLES - 1)
                    m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(decode_wait == 0):
                    m.d.comb += validator.start.eq(1)
                    m.next = "VALIDATE"
                with m.Else():
                    m.d.sync += decode_wait.eq(decode_wait - 1)
            with m.State("VALIDATE"):
                m.d.sync += plane.eq(d.hs << d.cb)         # stable long before the source load needs it
                with m.If(validator.done):
                    with m.If(validator.error != ERR_NONE):
                        fail(validator.error, f.layer_id)
                    with m.Else():
                        m.d.sync += [
                            tile.eq(0), first_tile.eq(1), w_addr.eq(f.weights_addr), n_tiles_m1.eq(d.n_tiles - 1),
                            t_addr.eq(f.thresholds_addr), tile_dst.eq(f.dst_addr), raw_left.eq(d.raw_beats),
                            ch_left.eq(f.out_channels), wt_words.eq(d.wwt << (ww_beats.bit_length() - 1)),
                        ]
                        read(TARGET_ACT, f.src_addr, validator.src_words, frames=d.frames)
                        m.next = "ACT"
            with m.State("ACT"):
                with m.If(loader.done):
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.sync += [
                    raw_now.eq(Mux(raw_left > tile_beats, tile_beats, raw_left)),
                    # ch_left > c as (a bit above c's set) | (the bits of c's width > c): no wide compare
                    lane_mask.eq(Cat((ch_left[lane_bits:] != 0) | (ch_left[:lane_bits] > c) for c in range(P))),
                    last_tile.eq(tile == n_tiles_m1),
                    w_next.eq(w_addr + (wt_words << log_bus_bytes)),
                ]
                with m.If(first_tile):
                    # the first tile's weights; the others are prefetched while the previous tile runs
                    read(TARGET_WEIGHTS, w_addr, wt_words, bank=0)
                    m.next = "WEIGHTS"
                with m.Elif(d.raw):
                    m.next = "RUN"
                with m.Else():
                    read(TARGET_THRESHOLDS, t_addr, thr_beats)
                    m.next = "THRESHOLDS"
            with m.State("WEIGHTS"):
                with m.If(loader.done):
                    with m.If(d.raw):
                        m.next = "RUN"
                    with m.Else():
                        read(TARGET_THRESHOLDS, t_addr, thr_beats)
                        m.next = "THRESHOLDS"
            with m.State("THRESHOLDS"):
                with m.If(loader.done):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [seq.start.eq(1), wmaster.start.eq(1)]
                with m.If(~last_tile):
                    # prefetch the next tile's weights into the other bank (double buffering)
                    read(TARGET_WEIGHTS, w_next, wt_words, bank=~tile[0])
                m.next = "COMPUTE"
            with m.State("COMPUTE"):
                with m.If(~seq.busy & writer.idle & loader.done):
                    m.d.sync += [
                        tile.eq(tile + 1), first_tile.eq(0),
                        w_addr.eq(w_next),
                        t_addr.eq(t_addr + P * rec_bits // 8),
                        raw_left.eq(raw_left - raw_now),
                        ch_left.eq(ch_left - P),
                    ]
                    if tiles_per_group > 1:
                        with m.If(d.raw):
                            m.d.sync += tile_dst.eq(tile_dst + (P * p.acc_bits // 8))
                        with m.Elif(tile[:tiles_per_group.bit_length() - 1] == tiles_per_group - 1):
                            m.d.sync += tile_dst.eq(tile_dst + (validator.pixels << log_bus_bytes))
                    else:
                        m.d.sync += tile_dst.eq(tile_dst + Mux(d.raw, P * p.acc_bits // 8,
                                                               validator.pixels << log_bus_bytes))
                    with m.If(last_tile):
                        m.next = "LAYER_END"
                    with m.Else():
                        m.next = "TILE"
            with m.State("LAYER_END"):
                m.d.sync += [self.layer_done.eq(1), index.eq(index + 1), done_index.eq(index),
                             list_base.eq(list_base_end[:32]), list_base_end.eq(list_base_end[:32] + DESCRIPTOR.nbytes),
                             list_wrapped.eq(list_carry)]
                m.next = "LAYER_GAP"
            with m.State("LAYER_GAP"):
                # the next descriptor's checks, from the registers LAYER_END updated
                m.d.sync += [layer_cyc.eq(0), list_end.eq(index == count),
                             desc_misaligned.eq(list_base[:log_bus_bytes] != 0),
                             desc_outside.eq(list_wrapped | lt(list_base, win_base) | gt(list_base_end, win_limit))]
                m.next = "NEXT"
        return m
