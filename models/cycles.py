"""Analytical cycle model of the convolution engine (the gateware in ``hw/engine.py``).

It follows the engine's state machine, with a memory that answers every read after a fixed
``latency`` and never inserts wait states (the model's only memory parameter). Under that
memory the model is exact: ``tests/test_sim_accelerator.py`` compares it with the RTL's
``LAYER_CYCLES`` and ``TOTAL_CYCLES`` counters cycle for cycle. With wait states and variable
latency the RTL takes longer; the model is then a lower bound.

Per descriptor::

    setup      = 1 + load(desc) + 1 + 1 + MUL_COUNT * (MUL_CYCLES + 1) + 1
    activation = load(G_src * H_src * W_src)
    tile 0     = 1 + load(weights) [+ load(thresholds)] + 1 + compute(0)
    tile t > 0 = 1 [+ load(thresholds)] + 1 + compute(t)
    compute(t) = max(H*W*G_in*k*k + drain, load(weights) if a next tile exists)   (codes)
    compute(t) = max(G_in*k*k + drain + (H*W - 1) * max(G_in*k*k, R) + R + 1, ...)  (raw)
    end        = 1
    load(n)    = latency + n + 2

with ``R`` the bus beats of one pixel's raw accumulators (the writer's pace) and ``drain`` the
pipeline depth after the last beat (PE array, threshold unit, write FIFO). A descriptor list
costs the sum of its descriptors plus one cycle each and one to finish.
"""

from .engine import DESCRIPTOR, OUTPUT_RAW

__all__ = ["descriptor_cycles", "list_cycles", "ideal_cycles", "DEFAULT_LATENCY", "MUL_CYCLES", "MUL_COUNT"]

#: Cycles of one shift-add multiplication in the engine's validation step, and how many it does
#: (the gateware builds its multiplier from these).
MUL_CYCLES = 16
MUL_COUNT = 6

#: Memory read latency (cycles) the model assumes unless told otherwise.
DEFAULT_LATENCY = 8


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
    popcount_stages = p.popcount_stages
    bus = p.bus_bits
    k = desc.kernel
    wwt = desc.in_groups * k * k
    words_per_weight_word = p.pe_count * p.simd_lanes // bus
    n_weights = wwt * words_per_weight_word
    n_thresholds = p.pe_count * p.threshold_layout.bits // bus
    raw = desc.output_mode == OUTPUT_RAW
    raw_beats = p.pe_count * p.acc_bits // bus
    pixels = desc.out_height * desc.out_width
    pe_latency = popcount_stages + 2          # PE (popcount stages + accumulator) + array output register
    drain = pe_latency + 3
    desc_beats = -(-DESCRIPTOR.bits // bus)

    cycles = 1 + _load(desc_beats, latency) + 1 + 1 + MUL_COUNT * (MUL_CYCLES + 1) + 1
    cycles += _load(desc.src_words, latency)
    tiles = desc.tiles
    for t in range(tiles):
        cycles += 1
        if t == 0:
            cycles += _load(n_weights, latency)
        if not raw:
            cycles += _load(n_thresholds, latency)
        cycles += 1
        if raw:
            # the writer needs raw_beats cycles per pixel: it sets the pace when a pixel takes fewer
            compute = wwt + drain + (pixels - 1) * max(wwt, raw_beats) + raw_beats + 1
        else:
            compute = pixels * wwt + drain
        streamed = compute
        if wwt == 1 and pixels > 1 and (not raw or raw_beats == 1):
            # measured: when every beat both starts and ends a sum, the PE array's pipeline
            # inserts two bubble cycles once per tile
            compute += 2
        if t < tiles - 1:
            prefetch = _load(n_weights, latency)
            if not raw and prefetch == streamed + 1:
                # measured: a prefetch whose last beat lands one cycle after the last output
                # costs one more cycle (its completion and the drain's meet in one cycle)
                prefetch += 1
            compute = max(compute, prefetch)
        cycles += compute
    return cycles + 1


def list_cycles(descs, params, **kw):
    """``TOTAL_CYCLES`` of a descriptor list and the cycles of each descriptor."""
    each = [descriptor_cycles(d, params, **kw) for d in descs]
    return sum(each) + len(each) + 1, each


def ideal_cycles(desc, params):
    """Cycles of the PE array alone: one beat per cycle, ``H*W*G_in*k*k`` per tile."""
    return desc.out_height * desc.out_width * desc.in_groups * desc.kernel ** 2 * desc.tiles
