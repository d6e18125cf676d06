"""cocotb descriptor fuzzing of the whole accelerator: random descriptors, valid and invalid,
biased to the memory window's edges (:mod:`sim.descriptor_fuzz`), against the functional model.

Per descriptor list (many lists share one memory image, loaded once and compared once):

* the memory model fails the run at the first access outside the window (whatever is checked
  next);
* the error code, the descriptor index, its layer_id and LAYERS_DONE equal
  :func:`models.engine.execute_program`'s, and the status bits say done, not busy;
* the memory beats the engine read and wrote equal what the descriptors that ran need
  (:func:`sim.descriptor_fuzz.expected_beats`): an invalid descriptor costs its own fetch and
  nothing else, a list stopped before its first fetch costs nothing;
* the engine finishes within a cycle budget from :mod:`models.cycles` (it never hangs), and with
  a fixed-latency memory its LAYER_CYCLES equal the model's exactly;
* at the end of each image, the whole memory equals the model's, byte for byte.

Half the images sit at the top of the 32-bit address space with a window whose
``base + size`` passes ``2**32``. Environment: ``LMF_FUZZ_DESCRIPTORS`` (how many, default 300),
``LMF_FUZZ_SEED``, ``LMF_FUZZ_RESULTS`` (a JSON file for the counts), ``LMF_FUZZ_FRAMES=1``
(frame-pair sources, see :data:`sim.descriptor_fuzz.RTL_FRAME_PAIRS`).
"""

import json
import os
import time

import cocotb
import numpy as np

from models.cycles import descriptor_cycles
from models.engine import ADDRESS_SPACE, DESCRIPTOR, ERR_NONE, ERROR_NAMES, execute_program

from .accel_cases import describe_mismatch
from .accel_tb import AcceleratorTB, MemorySettings, sim_report as report
from .descriptor_fuzz import (FuzzStats, GuardedMemory, cycle_budget, expected_beats, fill_image, image_lists,
                              make_layout, rtl_frame_pairs)

LISTS_PER_IMAGE = 24

#: Check ERROR.layer_id of a list stopped before its first fetch (misaligned or outside the
#: window), which must read 0.
CHECK_LIST_ERROR_LAYER_ID = True


def _memory_for(rng, image_index):
    """Ideal fixed-latency memory for even images (exact cycle counts), wait states for odd ones."""
    if image_index % 2 == 0:
        latency = int(rng.integers(1, 10))
        return MemorySettings(latency_min=latency, latency_max=latency, seed=image_index + 1), True
    return MemorySettings(stall_pct=int(rng.choice([10, 30])), gap_pct=int(rng.choice([0, 20])),
                          latency_min=int(rng.integers(1, 4)), latency_max=int(rng.integers(4, 12)),
                          seed=int(rng.integers(1, 2**31))), False


@cocotb.test()
async def test_descriptor_fuzz(dut):
    """Random descriptors, mostly small or invalid, against the functional model."""
    target = int(os.environ.get("LMF_FUZZ_DESCRIPTORS", "300"))
    rng = np.random.default_rng(int(os.environ.get("LMF_FUZZ_SEED", "1")))
    frames = rtl_frame_pairs()
    tb = AcceleratorTB(dut)
    await tb.start()
    params = tb.params
    bus = params.bus_bytes
    stats = FuzzStats()
    t0 = time.perf_counter()
    image_index = 0
    low_base = tb.base
    while stats.descriptors < target:
        top = image_index % 4 in (1, 2)
        mem_base = ADDRESS_SPACE - tb.size if top else low_base
        layout = make_layout(params, mem_base, tb.size, wrap_window=top, list_tail=image_index % 3 == 0)
        memory, exact = _memory_for(rng, image_index)
        where = (f"image {image_index} (memory 0x{mem_base:08x}+0x{tb.size:x}, window 0x{layout.window[0]:08x}"
                 f"+0x{layout.window[1]:x}, {memory}, P={params.pe_count} S={params.simd_lanes})")
        image_index += 1
        image = fill_image(rng, layout)
        # every edge of the window once per image, then random lists
        lists = image_lists(rng, image, layout, frames=frames, count=LISTS_PER_IMAGE, max_valid=1, p_invalid=0.85)
        model = GuardedMemory(image.copy(), mem_base, layout.window)
        dut.mem_base.value = mem_base
        tb.base = mem_base
        tb.set_memory(memory)
        await tb.load(image)
        ran = []
        for li, fl in enumerate(lists):
            ctx = (f"{where}, list {li} at 0x{fl.desc_addr:08x} x{fl.count}: "
                   + "; ".join(f"[{i}] {label}" for i, label in enumerate(fl.labels)))
            err, idx = execute_program(model, fl.desc_addr, fl.count, params, layout.window)
            assert not model.violations, report(f"{ctx}\n  the model itself touched memory outside the window: "
                                                f"{model.violations}")
            descs = fl.descriptors(params)
            done = descs[:idx]
            fetched_bad = int(err != ERR_NONE and idx < len(descs) and not fl.desc_addr % bus
                              and layout.window[0] <= fl.desc_addr + idx * DESCRIPTOR.nbytes
                              and fl.desc_addr + (idx + 1) * DESCRIPTOR.nbytes <= layout.window_end)
            slowdown = 1.0 if exact else 1.0 / (1 - memory.stall_pct / 100) / (1 - memory.gap_pct / 100)
            budget = cycle_budget(done, params, latency=memory.latency_max, failed_fetches=fetched_bad,
                                  slowdown=slowdown)
            reads0, writes0 = tb.beats()
            status = await tb.run_list(fl.desc_addr, fl.count, window=layout.window, timeout_cycles=budget,
                                       context=ctx)
            reads, writes = tb.beats()
            layer_id = descs[idx].layer_id if err != ERR_NONE and fetched_bad else 0
            want = dict(error_code=err, error_index=idx if err != ERR_NONE else 0, error_layer=layer_id,
                        layers_done=idx, done=1, busy=0, error=int(err != ERR_NONE), start_ignored=0, fault=0)
            if err != ERR_NONE and not fetched_bad and idx < fl.count and not CHECK_LIST_ERROR_LAYER_ID:
                del want["error_layer"]
            wrong = {k: (status[k], v) for k, v in want.items() if status[k] != v}
            assert not wrong, report(f"{ctx}\n  registers: " + ", ".join(
                f"{k} {got} (expected {v})" for k, (got, v) in wrong.items())
                + f"; model: {ERROR_NAMES[err]} at {idx}")
            want_reads = sum(expected_beats(d.fields, params)[0] for d in done) + fetched_bad * -(-DESCRIPTOR.nbytes // bus)
            want_writes = sum(expected_beats(d.fields, params)[1] for d in done)
            assert (reads - reads0, writes - writes0) == (want_reads, want_writes), report(
                f"{ctx}\n  memory traffic: {reads - reads0} read and {writes - writes0} write beats, expected "
                f"{want_reads} and {want_writes} (an invalid descriptor may only be fetched)")
            if exact:
                cycles = [descriptor_cycles(d, params, latency=memory.latency_min) for d in done][:16]
                assert status["layer_cycles"] == cycles, report(
                    f"{ctx}\n  LAYER_CYCLES {status['layer_cycles']}, models.cycles {cycles}")
            assert status["total_cycles"] <= budget, report(
                f"{ctx}\n  TOTAL_CYCLES {status['total_cycles']} beyond the budget {budget}")
            stats.lists += 1
            stats.cycles += status["total_cycles"]
            for i in range(idx + (err != ERR_NONE)):
                stats.add(fl.labels[min(i, len(fl.labels) - 1)], err if i == idx else ERR_NONE)
            ran.extend(done)
        got = (await tb.dump())[:tb.size]
        expected = model.array
        problem = describe_mismatch(expected, got, ran, mem_base, params)
        assert problem is None, report(f"{where}: after {len(lists)} lists: {problem}")
    elapsed = time.perf_counter() - t0
    summary = dict(stats.as_dict(), images=image_index, seconds=round(elapsed, 1), frames=frames,
                   pe_count=params.pe_count, simd_lanes=params.simd_lanes)
    dut._log.info("descriptor fuzz: %s", {k: v for k, v in summary.items() if k != "labels"})
    path = os.environ.get("LMF_FUZZ_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
