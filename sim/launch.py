"""pytest helpers shared by the ``tests/test_sim_*.py`` launchers."""

import pytest

from .runner import TEST_CONFIGS, selected_simulators, simulator_missing

__all__ = ["simulator_params", "config_params"]


def simulator_params():
    """``pytest.param`` per selected simulator (``$SIM``); one that cannot run here is skipped
    with the reason (for Icarus: how to install it), never silently."""
    params = []
    for sim in selected_simulators():
        reason = simulator_missing(sim)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(sim, marks=marks, id=sim))
    return params


def config_params():
    """The small array configurations every component is simulated with."""
    return [pytest.param(name, id=name) for name in TEST_CONFIGS]
