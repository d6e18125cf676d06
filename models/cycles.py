"""Analytical cycle model of the convolution engine (the gateware in ``hw/engine/``).

It follows the engine's control FSM state by state, with a memory that answers every read after
a fixed ``latency`` and never inserts wait states (the model's only memory parameter). Under
that memory the model is exact: the tests compare it with the RTL's ``LAYER_CYCLES`` and
``TOTAL_CYCLES`` counters cycle for cycle. With wait states and variable latency the RTL takes
longer; the model is then a lower bound.

The pipeline latencies it adds up are the components' own (each component's ``latency``
property; a test checks that they equal the constants here, which the gateware builds from)::

    descriptor = 1                                  NEXT
               + load(desc words)                   FETCH
               + DECODE_CYCLES                      DECODE
               + VALIDATE_CYCLES                    VALIDATE
               + load(source words)                 ACT
               + sum over tiles t of tile(t)
               + 1                                  LAYER_END
    tile(t)    = 1                                  TILE
               + load(weight words)  if t == 0      WEIGHTS (later tiles are prefetched)
               + load(threshold words) if codes     THRESHOLDS
               + 1                                  RUN
               + compute(t)                         COMPUTE
    compute(t) = max(c + (N - 1) * max(c, R) + (R - 1) + drain,
                     load(weight words) if a next tile exists)
    drain      = SEQUENCER_LATENCY + (popcount_stages + 2) + THRESHOLD_LATENCY
                 + WRITER_LATENCY + WRITE_FIFO_LATENCY + 1
    load(n)    = latency + n + 2

with ``c = G_in * k * k`` the beats of one pixel, ``N`` the output pixels, ``R`` the bus words of
one pixel's result in this tile (1 for codes; the tile's share of the raw accumulators, padded
to a whole bus word, for raw outputs: the writer's pace). A descriptor list costs the sum of its
descriptors plus one cycle each (LAYER_GAP) and one to finish.
"""

from .engine import DESCRIPTOR, OUTPUT_RAW, raw_channels

__all__ = ["descriptor_cycles", "list_cycles", "ideal_cycles", "drain_cycles", "pe_array_latency",
           "DEFAULT_LATENCY", "MUL_CYCLES", "MUL_COUNT", "DECODE_CYCLES", "VALIDATE_CYCLES",
           "SEQUENCER_LATENCY", "THRESHOLD_LATENCY", "WRITER_LATENCY", "WRITE_FIFO_LATENCY",
           "WRITE_FIFO_DEPTH"]

#: Memory read latency (cycles) the model assumes unless told otherwise.
DEFAULT_LATENCY = 8

#: Cycles of one shift-add multiplication in the validator, and how many it does.
MUL_CYCLES = 16
MUL_COUNT = 6
#: Descriptor decoder: two register stages.
DECODE_CYCLES = 2
#: Validator: start, the products (``MUL_CYCLES + 1`` cycles each), the check flags, the error.
VALIDATE_CYCLES = 1 + MUL_COUNT * (MUL_CYCLES + 1) + 2
#: Sequencer: issue -> tap position -> source row/column -> row offset and buffer read -> zero
#: padding register -> the PE array's input.
SEQUENCER_LATENCY = 5
#: Threshold unit: its output register.
THRESHOLD_LATENCY = 1
#: Writer: the captured pixel before its first word enters the FIFO.
WRITER_LATENCY = 1
#: Write FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``): a word written is readable two cycles later.
WRITE_FIFO_LATENCY = 2
#: Bus words the write FIFO holds.
WRITE_FIFO_DEPTH = 32


def pe_array_latency(popcount_stages):
    """The PE array's latency: the popcount stages, the accumulator and the output register."""
    return popcount_stages + 2


def drain_cycles(popcount_stages):
    """Cycles from issuing a tile's last beat to the end of COMPUTE, for a one-word result."""
    return (SEQUENCER_LATENCY + pe_array_latency(popcount_stages) + THRESHOLD_LATENCY + WRITER_LATENCY
            + WRITE_FIFO_LATENCY + 1)


def _load(n, latency):
    return latency + n + 2


def descriptor_cycles(desc, params=None, *, latency=DEFAULT_LATENCY):
    """Cycles of one descriptor, as ``LAYER_CYCLES`` counts them.

    Parameters
    ----------
    desc : models.engine.Descriptor
    params : models.engine.EngineParams, optional
        Default ``desc.params``; its ``popcount_stages`` sets the PE array's pipeline depth.
    latency : int
        Memory read latency in cycles.
    """
    p = desc.params if params is None else params
    bus = p.bus_bits
    k = desc.kernel
    c = desc.in_groups * k * k                                  # beats of a pixel = weight words of a tile
    n_weights = c * p.pe_count * p.simd_lanes // bus
    n_thresholds = p.pe_count * p.threshold_layout.bits // bus
    raw = desc.output_mode == OUTPUT_RAW
    pixels = desc.out_height * desc.out_width
    drain = drain_cycles(p.popcount_stages)
    desc_words = -(-DESCRIPTOR.bits // bus)
    per_word = bus // p.acc_bits
    tile_words = p.pe_count // per_word                         # raw words of a whole tile

    cycles = 1 + _load(desc_words, latency) + DECODE_CYCLES + VALIDATE_CYCLES + _load(desc.src_words, latency)
    raw_left = raw_channels(desc.out_channels, p) // per_word
    tiles = desc.tiles
    for t in range(tiles):
        cycles += 1
        if t == 0:
            cycles += _load(n_weights, latency)
        if not raw:
            cycles += _load(n_thresholds, latency)
        cycles += 1
        r = min(raw_left, tile_words) if raw else 1
        raw_left -= r if raw else 0
        compute = c + (pixels - 1) * max(c, r) + (r - 1) + drain
        if t < tiles - 1:
            compute = max(compute, _load(n_weights, latency))
        cycles += compute
    return cycles + 1


def list_cycles(descs, params=None, **kw):
    """``TOTAL_CYCLES`` of a descriptor list and the cycles of each descriptor."""
    each = [descriptor_cycles(d, params, **kw) for d in descs]
    return sum(each) + len(each) + 1, each


def ideal_cycles(desc, params=None):
    """Cycles of the PE array alone: one beat per cycle, ``H*W*G_in*k*k`` per tile."""
    return desc.out_height * desc.out_width * desc.in_groups * desc.kernel ** 2 * desc.tiles
