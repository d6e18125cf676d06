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
    load(n)    = latency + n + 3

with ``c = G_in * k * k`` the beats of one pixel, ``N`` the output pixels, ``R`` the bus words of
one pixel's result in this tile (1 for codes; the tile's share of the raw accumulators, padded
to a whole bus word, for raw outputs: the writer's pace). A descriptor list costs the sum of its
descriptors plus one cycle each (LAYER_GAP) and one to finish.
"""

from .engine import DESCRIPTOR, OUTPUT_RAW, raw_channels

__all__ = ["descriptor_cycles", "descriptor_phases", "phase_cycles", "load_cycles", "list_cycles", "ideal_cycles",
           "drain_cycles", "pe_array_latency",
           "DEFAULT_LATENCY", "MUL_CYCLES", "MUL_COUNT", "DECODE_CYCLES", "VALIDATE_CYCLES",
           "SEQUENCER_LATENCY", "THRESHOLD_LATENCY", "WRITER_LATENCY", "WRITE_FIFO_LATENCY",
           "WRITE_FIFO_DEPTH"]

#: Memory read latency (cycles) the model assumes unless told otherwise.
DEFAULT_LATENCY = 8

#: Cycles of one shift-add multiplication in the validator, and how many it does.
MUL_CYCLES = 16
MUL_COUNT = 6
#: Descriptor decoder: three register stages (fields, the sizes they give, the sizes those give).
DECODE_CYCLES = 3
#: Validator: start, the products (``MUL_CYCLES + 1`` cycles each), the sizes, region ends and
#: simple checks, the comparisons, the error.
VALIDATE_CYCLES = 1 + MUL_COUNT * (MUL_CYCLES + 1) + 3
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


def descriptor_phases(desc, params=None):
    """The phases of one descriptor in the engine's control FSM: what :func:`descriptor_cycles`
    adds up, kept apart so that a board model can price the memory traffic of each.

    Returns
    -------
    dict
        ``fixed``: control cycles that move no data (NEXT, DECODE, VALIDATE, TILE and RUN of every
        tile, LAYER_END); ``loads``: ``[(what, words)]`` read while the FSM waits (each costs
        ``latency + 3 + words`` cycles, :func:`load_cycles`); ``tiles``: per output tile
        ``(compute, prefetch_words, write_words)``: the COMPUTE cycles the pipeline needs, the
        weight words of the next tile read meanwhile (0 for the last tile) and the bus words the
        tile writes. ``descriptor_cycles = fixed + sum(load_cycles(w)) + sum(max(compute,
        load_cycles(prefetch)) if prefetch else compute)``.
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
    per_word = bus // p.acc_bits
    tile_words = p.pe_count // per_word                         # raw words of a whole tile
    fixed = 1 + DECODE_CYCLES + VALIDATE_CYCLES + 1
    loads = [("descriptor", -(-DESCRIPTOR.bits // bus)), ("source", desc.src_words)]
    tiles = []
    raw_left = raw_channels(desc.out_channels, p) // per_word
    for t in range(desc.tiles):
        fixed += 2
        if t == 0:
            loads.append(("weights", n_weights))
        if not raw:
            loads.append(("thresholds", n_thresholds))
        r = min(raw_left, tile_words) if raw else 1
        if raw:
            raw_left -= r
        compute = c + (pixels - 1) * max(c, r) + (r - 1) + drain
        tiles.append((compute, n_weights if t < desc.tiles - 1 else 0, pixels * r))
    return {"fixed": fixed, "loads": loads, "tiles": tiles}


def load_cycles(words, latency=DEFAULT_LATENCY):
    """Cycles the FSM waits for a read of ``words`` bus words (command to the last word): the
    loader's command register, its request, the memory's latency, the words, the last word's
    arrival and the loader's done register."""
    return latency + words + 3


def phase_cycles(phases, latency=DEFAULT_LATENCY):
    """Cycles of :func:`descriptor_phases` under the model's memory."""
    n = phases["fixed"] + sum(load_cycles(w, latency) for _, w in phases["loads"])
    for compute, prefetch, _ in phases["tiles"]:
        n += max(compute, load_cycles(prefetch, latency)) if prefetch else compute
    return n


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
    return phase_cycles(descriptor_phases(desc, params), latency)


def list_cycles(descs, params=None, **kw):
    """``TOTAL_CYCLES`` of a descriptor list and the cycles of each descriptor."""
    each = [descriptor_cycles(d, params, **kw) for d in descs]
    return sum(each) + len(each) + 1, each


def ideal_cycles(desc, params=None):
    """Cycles of the PE array alone: one beat per cycle, ``H*W*G_in*k*k`` per tile."""
    return desc.out_height * desc.out_width * desc.in_groups * desc.kernel ** 2 * desc.tiles
