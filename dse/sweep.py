"""Sweep files (``dse/sweeps/*.yaml``) and the points they describe."""

import itertools
import os

import yaml

from models.errors import ConfigError
from models.hwconfig import check_target, load_hw_config, target_problems

from .resources import config_from

__all__ = ["DEFAULT_SWEEP", "GRID_KEYS", "Sweep", "load_sweep", "network_label"]

DEFAULT_SWEEP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sweeps", "default.yaml")
#: Parameters a sweep may vary.
GRID_KEYS = ("pe_count", "simd_lanes", "popcount_stages", "act_buffer_words", "weight_buffer_words", "max_burst",
             "clock_mhz")
_KEYS = ("base", "networks", "memory_latency", "grid", "max_logic_levels", "budgets_alms", "calibration")


_NET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "configs")


def _network_path(name):
    """A network configuration's file: a bare name is ``models/configs/<name>.yaml``."""
    if os.sep not in name and not name.endswith((".yaml", ".yml")):
        return os.path.join(_NET_DIR, name + ".yaml")
    return name


def network_label(path):
    """Short name of a network configuration file (its stem)."""
    return os.path.splitext(os.path.basename(path))[0]


class Sweep:
    """A loaded sweep: ``base`` (HardwareConfig), ``networks`` (names), ``latency``, ``points``
    (HardwareConfig per accepted grid point), ``refused`` (``(overrides, reason)``),
    ``max_levels`` (clock MHz -> levels), ``budgets`` (ALMs), ``train`` / ``held_out``."""

    def __init__(self, path, data, base=None):
        self.path = path

        def fail(key, msg):
            raise ConfigError(f"{path}: {key}: {msg}")

        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a sweep must be a mapping, not {type(data).__name__}")
        for key in data:
            if key not in _KEYS:
                fail(key, f"unknown key (expected one of {', '.join(_KEYS)})")
        self.base = check_target(load_hw_config(base or data.get("base")), "accelerator")
        nets = data.get("networks", ["lmflownet_d3_96x128"])
        if not isinstance(nets, list) or not nets or not all(isinstance(n, str) for n in nets):
            fail("networks", f"must be a non-empty list of network configuration names, not {nets!r}")
        self.networks = [_network_path(n) for n in nets]
        for name, path_ in zip(nets, self.networks):
            if not os.path.isfile(path_):
                fail("networks", f"no network configuration {name!r} ({path_})")
        self.latency = data.get("memory_latency", 8)
        if isinstance(self.latency, bool) or not isinstance(self.latency, int) or self.latency < 1:
            fail("memory_latency", f"must be an integer >= 1, not {self.latency!r}")
        grid = data.get("grid", {})
        if not isinstance(grid, dict):
            fail("grid", f"must be a mapping of parameter -> list of values, not {grid!r}")
        for key, values in grid.items():
            if key not in GRID_KEYS:
                fail(f"grid.{key}", f"unknown parameter (expected one of {', '.join(GRID_KEYS)})")
            if not isinstance(values, list) or not values:
                fail(f"grid.{key}", f"must be a non-empty list of values, not {values!r}")
        levels = data.get("max_logic_levels", {})
        if not isinstance(levels, dict) or not all(isinstance(v, int) for v in levels.values()):
            fail("max_logic_levels", f"must map clock MHz -> levels, not {levels!r}")
        self.max_levels = {float(k): v for k, v in levels.items()}
        budgets = data.get("budgets_alms", [])
        if not isinstance(budgets, list) or not all(isinstance(b, int) and b > 0 for b in budgets):
            fail("budgets_alms", f"must be a list of positive integers, not {budgets!r}")
        self.budgets = sorted(budgets)
        self.points, self.refused = [], []
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            overrides = dict(zip(keys, values))
            cfg, problem = self._config(overrides, f"{path}: grid point {overrides}")
            if problem:
                self.refused.append((overrides, problem))
            else:
                self.points.append(cfg)
        cal = data.get("calibration", {})
        self.train, self.held_out = [], []
        for part in ("train", "held_out"):
            for i, overrides in enumerate(cal.get(part, [])):
                cfg, problem = self._config(overrides, f"{path}: calibration.{part}[{i}]")
                if problem:
                    fail(f"calibration.{part}[{i}]", problem)
                getattr(self, part).append(cfg)

    def _config(self, overrides, source):
        try:
            cfg = config_from(self.base, overrides, source=source)
        except ConfigError as e:
            return None, str(e).split(": ", 2)[-1]
        problems = target_problems(cfg, "accelerator")
        return (None, "; ".join(problems)) if problems else (cfg, None)

    def timing_ok(self, clock_mhz, levels):
        """Whether ``levels`` logic levels are taken to close timing at ``clock_mhz``
        (``max_logic_levels``; True for a clock the file does not list)."""
        limit = self.max_levels.get(float(clock_mhz))
        return limit is None or levels <= limit


def load_sweep(path=None, base=None):
    """Read a sweep file (default :data:`DEFAULT_SWEEP`); ``base`` (a hardware configuration name
    or path) replaces the file's ``base``.

    Raises
    ------
    ConfigError
        In one line, naming the file and the key.
    """
    path = path or DEFAULT_SWEEP
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the sweep file: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    return Sweep(path, data, base)
