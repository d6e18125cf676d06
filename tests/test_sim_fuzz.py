"""Descriptor fuzzing of the whole accelerator (sim/tb_descriptor_fuzz.py) on the small engine
configurations, each simulator: a few hundred descriptors per run by default (``make sim``; fewer
on Icarus, which runs this design about 20 times slower), ``FUZZ_DESCRIPTORS`` of them with
``make fuzz`` (10,000 by default)."""

import json
import os

import pytest

from sim.accel_runner import ENGINE_TEST_CONFIGS, SIM_BUILD, run_accelerator
from sim.launch import simulator_params

pytestmark = pytest.mark.sim

#: Descriptors per run when FUZZ_DESCRIPTORS is not set, by simulator.
DEFAULT_DESCRIPTORS = {"verilator": 200, "icarus": 60}


@pytest.mark.parametrize("config", list(ENGINE_TEST_CONFIGS))
@pytest.mark.parametrize("simulator", simulator_params())
def test_descriptor_fuzz(simulator, config):
    count = int(os.environ.get("FUZZ_DESCRIPTORS") or DEFAULT_DESCRIPTORS[simulator])
    results = SIM_BUILD / f"fuzz-{config}-{simulator}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    env = {"LMF_FUZZ_DESCRIPTORS": str(count), "LMF_FUZZ_RESULTS": str(results),
           "LMF_FUZZ_SEED": os.environ.get("FUZZ_SEED", "1")}
    if os.environ.get("LMF_FUZZ_FRAMES"):
        env["LMF_FUZZ_FRAMES"] = os.environ["LMF_FUZZ_FRAMES"]
    run_accelerator(config, simulator, module="sim.tb_descriptor_fuzz", extra_env=env)
    summary = json.loads(results.read_text())
    print(f"descriptor fuzz {config} {simulator}: " + json.dumps({k: v for k, v in summary.items() if k != "labels"}))
    assert summary["descriptors"] >= count
    assert summary["window_hits"] > 0 and summary["valid"] > 0 and summary["invalid"] > summary["valid"]
