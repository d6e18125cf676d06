import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

#: Co-simulation modules by decreasing cost of what they build: under pytest-xdist the longest
#: build (the default accelerator) starts first, the small ones fill the other workers.
_SIM_ORDER = ("test_sim_network", "test_sim_rtl_backend", "test_sim_accelerator", "test_sim_small_network",
              "test_sim_de10nano",
              "test_sim_pe_array", "test_sim_pe", "test_sim_threshold", "test_sim_popcount")


def _accelerator_group(item):
    """Tests that share one accelerator simulator (the network's: the network run, the rtl
    backend, the layer tests of a configuration the network runs on) run on one xdist worker (``--dist loadgroup``), so that no worker waits for
    another's build of the same model."""
    module = item.module.__name__.rsplit(".", 1)[-1]
    from sim.launch import hw_config_override
    from models.hwconfig import load_hw_config
    if module in ("test_sim_network", "test_sim_rtl_backend"):
        return "network-" + load_hw_config(hw_config_override() if module == "test_sim_network" else None).name
    if module == "test_sim_accelerator" and hasattr(item, "callspec") and "config" in item.callspec.params:
        from sim.accel_runner import REGRESS_ENGINE_CONFIGS
        config = item.callspec.params["config"]
        if config in REGRESS_ENGINE_CONFIGS or hw_config_override() is not None:
            return "network-" + load_hw_config(config).name
    return None


def pytest_collection_modifyitems(config, items):
    def rank(item):
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return _SIM_ORDER.index(module) if module in _SIM_ORDER else len(_SIM_ORDER)

    items.sort(key=rank)
    from sim.launch import REGRESS_ONLY_REASON, regress_enabled
    regress = regress_enabled()
    for item in items:
        if not regress and item.get_closest_marker("regress") is not None:
            item.add_marker(pytest.mark.skip(reason=REGRESS_ONLY_REASON))
        if item.get_closest_marker("sim") is not None:
            group = _accelerator_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))
