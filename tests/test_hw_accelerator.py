# amaranth: UnusedElaboratable=no
"""The whole accelerator (hw/accelerator.py) in Amaranth's simulator on a tiny configuration, with a
Python memory model that flags every access outside the window (sim/amaranth_accel.py):

* small layers of every kind against the functional model, byte for byte, and against the cycle
  model (models.cycles) cycle for cycle;
* the window check: random descriptors biased to the window's edges (sim/descriptor_fuzz.py),
  mostly invalid, with the error code, index, layer_id and memory traffic of each list equal to
  what the model and the formats say, in a memory at the bottom and one at the top of the 32-bit
  address space (a window reaching past 2**32);
* the error index as wide as DESC_COUNT.

The cocotb tests run the same checks on the generated Verilog with far more cases."""

import numpy as np
import pytest

from hw.accelerator import Accelerator
from models.cycles import list_cycles
from models.engine import ADDRESS_SPACE, DESCRIPTOR, ERR_NONE, ERROR_NAMES, EngineParams, execute_program
from models.regmap import REG
from sim.accel_cases import build_case, describe_mismatch, random_layer
from sim.amaranth_accel import AcceleratorSim
from sim.descriptor_fuzz import GuardedMemory, cycle_budget, expected_beats, fill_image, image_lists, make_layout

TINY = dict(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 64, act_buffer_words=256, weight_buffer_words=64,
            popcount_stages=1, max_burst=8)
PARAMS = EngineParams(**TINY)
BUS = PARAMS.bus_bytes
MEM_SIZE = 8192


def new_sim(mem_base, latency=3, mem_size=MEM_SIZE):
    return AcceleratorSim(Accelerator(**TINY), bus_bytes=BUS, mem_base=mem_base, mem_size=mem_size, latency=latency)


def test_small_layers_match_the_model_and_the_cycle_model():
    """One small layer of each (kernel, input operation, output mode) pair, in two lists."""
    rng = np.random.default_rng(2)
    base = 0x1000
    kinds = [(k, op, raw) for k in (1, 3) for op in (0, 1, 2) for raw in (False, True)]
    rng.shuffle(kinds)
    lists = [kinds[:6], kinds[6:]]
    for latency, kind_list in zip((2, 5), lists):
        layers = [random_layer(rng, PARAMS, max_hw=3, kernel=k, op=op, raw=raw) for k, op, raw in kind_list]
        image, desc_addr, descs, expected, (err, idx) = build_case(rng, PARAMS, layers, base, MEM_SIZE)
        assert (err, idx) == (ERR_NONE, len(layers))
        sim = new_sim(base, latency)
        sim.memory[:] = image

        async def bench(s, ctx):
            return await s.run_list(ctx, desc_addr, len(descs), (base, MEM_SIZE), budget=200_000)

        st = sim.run(bench)
        context = f"latency {latency}: " + "; ".join(f"[{i}] {layer.describe()}" for i, layer in enumerate(layers))
        problem = describe_mismatch(expected, sim.memory, descs, base, PARAMS)
        assert problem is None, f"{context}: {problem}"
        assert not st.violations, f"{context}: accesses outside the window: {[str(v) for v in st.violations]}"
        total, each = list_cycles(descs, PARAMS, latency=latency)
        assert (st.layer_cycles, st.total_cycles) == (each, total), (
            f"{context}: LAYER_CYCLES {st.layer_cycles} TOTAL_CYCLES {st.total_cycles}, models.cycles {each} "
            f"total {total}")
        assert (st.error_code, st.layers_done, st.done, st.busy, st.error) == (ERR_NONE, len(layers), 1, 0, 0), st
        want = [sum(x) for x in zip(*(expected_beats(d.fields, PARAMS) for d in descs))]
        assert [st.read_beats, st.write_beats] == want, f"{context}: memory beats {st.read_beats, st.write_beats}"


def _fuzz(placement, lists, seed, max_valid):
    rng = np.random.default_rng(seed)
    top = placement == "top"
    size = 2 * MEM_SIZE
    mem_base = ADDRESS_SPACE - size if top else 0x1000
    layout = make_layout(PARAMS, mem_base, size, wrap_window=top, guard=256, list_tail=True)
    image = fill_image(rng, layout)
    # every edge of the window once, then random lists
    drawn = image_lists(rng, image, layout, frames=False, count=lists, max_valid=max_valid, p_invalid=0.9)
    model = GuardedMemory(image.copy(), mem_base, layout.window)
    sim = new_sim(mem_base, mem_size=size)
    sim.memory[:] = image
    results = []

    async def bench(s, ctx):
        for fl in drawn:
            err, idx = execute_program(model, fl.desc_addr, fl.count, PARAMS, layout.window)
            descs = fl.descriptors(PARAMS)
            budget = cycle_budget(descs[:idx], PARAMS, latency=s.latency, failed_fetches=int(err != ERR_NONE))
            st = await s.run_list(ctx, fl.desc_addr, fl.count, layout.window, budget)
            results.append((fl, err, idx, st))

    sim.run(bench)
    fetched = 0
    for fl, err, idx, st in results:
        context = f"{placement}: list at 0x{fl.desc_addr:08x} x{fl.count} {fl.labels}"
        assert not st.violations, f"{context}: accesses outside the window: {[str(v) for v in st.violations]}"
        assert (st.error_code, st.layers_done, st.done, st.busy, st.error) == (err, idx, 1, 0, int(err != ERR_NONE)), (
            f"{context}: registers say {ERROR_NAMES.get(st.error_code)} after {st.layers_done}, done {st.done} "
            f"busy {st.busy} error {st.error}; the model {ERROR_NAMES[err]} after {idx}")
        descs = fl.descriptors(PARAMS)
        bad_fetch = err != ERR_NONE and idx < len(descs) and not fl.desc_addr % BUS and \
            layout.window[0] <= fl.desc_addr + idx * DESCRIPTOR.nbytes <= layout.window_end - DESCRIPTOR.nbytes
        if err != ERR_NONE:
            assert st.error_index == idx, f"{context}: ERROR.index {st.error_index}, expected {idx}"
            if bad_fetch:
                assert st.error_layer == descs[idx].layer_id, f"{context}: ERROR.layer_id {st.error_layer}"
        reads = sum(expected_beats(d.fields, PARAMS)[0] for d in descs[:idx]) + bad_fetch * (DESCRIPTOR.nbytes // BUS)
        writes = sum(expected_beats(d.fields, PARAMS)[1] for d in descs[:idx])
        assert (st.read_beats, st.write_beats) == (reads, writes), (
            f"{context}: {st.read_beats} read and {st.write_beats} write beats, expected {reads} and {writes}")
        fetched += idx + (err != ERR_NONE)
    problem = describe_mismatch(model.array, sim.memory, [d for fl, _, idx, _ in results
                                                          for d in fl.descriptors(PARAMS)[:idx]], mem_base, PARAMS)
    assert problem is None, f"{placement}: {problem}"
    return fetched


@pytest.mark.parametrize("placement", ["low", "top"])
def test_window_check_on_random_descriptors(placement):
    """Random descriptor lists, mostly invalid and biased to the window's edges."""
    assert _fuzz(placement, lists=16, seed=3 if placement == "low" else 4, max_valid=1) >= 30


def test_the_error_index_is_as_wide_as_the_descriptor_count():
    """The engine's error_index port and the register file's ERROR.index hold any index of a list
    of DESC_COUNT descriptors (a 300-descriptor list runs in sim/tb_accelerator.py)."""
    acc = Accelerator(**TINY)
    acc._MustUse__silence = acc.engine._MustUse__silence = True     # inspected, never elaborated
    width = REG["DESC_COUNT"].field("count").width
    assert len(acc.engine.error_index) == REG["ERROR"].field("index").width == width == 16
