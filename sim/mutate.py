"""``make mutate``: apply each mutation of the checklist (``sim/mutations.yaml``) to a scratch copy
of the tree, run the tests the checklist names against it, and check that they fail.

Each mutation is a patch (file, exact text, replacement) applied to a fresh copy of the working
tree in a temporary directory; the working tree itself is never written. A patch whose text does
not occur exactly once fails loudly (the file changed: update the checklist). The tests run with
the project's interpreter, the copy first on ``sys.path`` (the runner checks that the copy's
modules are the ones imported), ``pytest -x``: the time reported is the time to the first failure.
Before the mutants, the same test selections run once on an unmutated copy and must pass.

Writes ``build/mutate.json`` and the table between the ``mutation-table`` markers of
``docs/verification.md``; exits 1 if a mutation survived or could not be applied.

::

    python -m sim.mutate [--only ID ...] [--list] [--no-baseline] [--no-doc]

``--only`` runs some mutations and merges their results into those of the last full run.
"""

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECKLIST = ROOT / "sim" / "mutations.yaml"
DOC = ROOT / "docs" / "verification.md"
RESULTS = ROOT / "build" / "mutate.json"
BEGIN, END = "<!-- mutation-table:begin -->", "<!-- mutation-table:end -->"
_KEYS = {"id", "class", "file", "find", "replace", "tests"}


class ChecklistError(Exception):
    """The checklist is malformed or a patch no longer applies (one line, naming the entry)."""


def load_checklist(path=CHECKLIST):
    """The mutations of the checklist, checked for their keys."""
    entries = yaml.safe_load(Path(path).read_text())
    if not isinstance(entries, list) or not entries:
        raise ChecklistError(f"{path}: expected a list of mutations")
    seen = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or set(e) != _KEYS:
            raise ChecklistError(f"{path}: entry {i} must have exactly the keys {sorted(_KEYS)}, not "
                                 f"{sorted(e) if isinstance(e, dict) else e!r}")
        if e["id"] in seen:
            raise ChecklistError(f"{path}: mutation id {e['id']!r} repeats")
        seen.add(e["id"])
        if not isinstance(e["tests"], list) or not e["tests"]:
            raise ChecklistError(f"{path}: mutation {e['id']}: tests must be a non-empty list")
    return entries


#: Left out of the copy where the tree is not a git checkout (what .gitignore leaves out).
_NOT_COPIED = {".git", ".venv", "build", "sim_build", "__pycache__", ".pytest_cache", ".hypothesis"}


def _tree_files(root):
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                             capture_output=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        # not a git checkout (an unpacked source tree): every file outside the outputs
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _NOT_COPIED and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
        return sorted(files)
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def copy_tree(root, dest):
    """Copy the working tree (tracked and untracked files git does not ignore) to ``dest``."""
    for rel in _tree_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def apply(mutation, tree):
    """Patch the copy at ``tree``; raises :class:`ChecklistError` if the text is not there once."""
    path = tree / mutation["file"]
    if not path.is_file():
        raise ChecklistError(f"mutation {mutation['id']}: {mutation['file']} does not exist")
    text = path.read_text()
    n = text.count(mutation["find"])
    if n != 1:
        raise ChecklistError(f"mutation {mutation['id']}: the text to replace occurs {n} times in "
                             f"{mutation['file']} (expected once; update {CHECKLIST.relative_to(ROOT)}): "
                             f"{mutation['find'].strip()[:80]!r}")
    path.write_text(text.replace(mutation["find"], mutation["replace"]))


def _env(tree):
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_imports(tree):
    """The copy's packages are the ones a test run there imports (not the installed tree)."""
    code = ("import models, hw, sim, sw, os, sys; "
            "print('\\n'.join(os.path.dirname(m.__file__) for m in (models, hw, sim, sw)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=_env(tree), capture_output=True, text=True,
                         check=True).stdout.split()
    wrong = [d for d in out if not Path(d).resolve().is_relative_to(tree.resolve())]
    if wrong:
        raise ChecklistError(f"a run in the scratch copy imports {wrong}, not the copy's packages")


def run_tests(tree, tests, timeout):
    """``(status, seconds, first failing test, tail of the output)``; status ``"failed"``,
    ``"passed"``, ``"error"`` (collection or usage error) or ``"timeout"``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, "", ""
    elapsed = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    failed = re.findall(r"^FAILED (.+?)(?: - .*)?$", out, re.M)
    status = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    return status, elapsed, failed[0] if failed else "", "\n".join(out.splitlines()[-15:])


def _table(results):
    rows = ["| mutation | class | where | caught by | seconds |", "|---|---|---|---|---|"]
    for r in results:
        caught = f"`{r['caught_by']}`" if r["status"] == "caught" else f"**{r['status'].upper()}**"
        rows.append(f"| `{r['id']}` | {r['class']} | `{r['file']}` | {caught} | {r['seconds']:.1f} |")
    return "\n".join(rows)


def write_doc(results, path=DOC):
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ChecklistError(f"{path}: no {BEGIN} ... {END} markers for the mutation table")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    caught = sum(r["status"] == "caught" for r in results)
    summary = (f"{caught} of {len(results)} mutations caught; {sum(r['seconds'] for r in results):.0f} s of "
               f"test time in all (`make mutate`, {time.strftime('%Y-%m-%d')}).")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{BEGIN}\n{summary}\n\n{_table(results)}\n{END}{tail}")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sim.mutate", description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these mutations only")
    ap.add_argument("--list", action="store_true", help="list the mutations and check that each applies")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run on the unmutated copy")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite the table in docs/verification.md")
    ap.add_argument("--timeout", type=float, default=900, help="seconds one test run may take")
    args = ap.parse_args(argv)
    try:
        mutations = load_checklist()
        if args.only:
            unknown = set(args.only) - {m["id"] for m in mutations}
            if unknown:
                raise ChecklistError(f"unknown mutation ids: {sorted(unknown)}")
            mutations = [m for m in mutations if m["id"] in args.only]
        with tempfile.TemporaryDirectory(prefix="lmf-mutants-") as scratch:
            scratch = Path(scratch)
            pristine = scratch / "pristine"
            copy_tree(ROOT, pristine)
            for m in mutations:                      # every patch applies before anything runs
                probe = scratch / "probe"
                shutil.rmtree(probe, ignore_errors=True)
                probe.mkdir()
                target = probe / m["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(pristine / m["file"], target)
                apply(m, probe)
            if args.list:
                for m in mutations:
                    print(f"{m['id']:28} {m['class']:40} {m['file']}")
                return 0
            check_imports(pristine)
            if not args.no_baseline:
                for tests in sorted({tuple(m["tests"]) for m in mutations}):
                    status, seconds, failed, tail = run_tests(pristine, list(tests), args.timeout)
                    print(f"baseline {' '.join(tests)}: {status} in {seconds:.1f} s", flush=True)
                    if status != "passed":
                        raise ChecklistError(f"the unmutated tree does not pass {' '.join(tests)} ({status}, "
                                             f"{failed}):\n{tail}")
            results = []
            for m in mutations:
                tree = scratch / "mutant"
                shutil.rmtree(tree, ignore_errors=True)
                shutil.copytree(pristine, tree)
                apply(m, tree)
                status, seconds, failed, tail = run_tests(tree, m["tests"], args.timeout)
                verdict = {"failed": "caught", "passed": "survived"}.get(status, status)
                results.append(dict(id=m["id"], **{"class": m["class"]}, file=m["file"], status=verdict,
                                    caught_by=failed, seconds=round(seconds, 1)))
                print(f"{m['id']:28} {verdict:9} {seconds:6.1f} s  {failed}", flush=True)
                if verdict not in ("caught", "survived"):
                    print(tail)
    except ChecklistError as e:
        print(f"mutate: error: {e}", file=sys.stderr)
        return 2
    if args.only and RESULTS.exists():
        # a partial run updates its entries of the last full run
        order = [m["id"] for m in load_checklist()]
        merged = {r["id"]: r for r in json.loads(RESULTS.read_text())}
        merged.update({r["id"]: r for r in results})
        results = [merged[i] for i in order if i in merged]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    if not args.no_doc:
        write_doc(results)
    bad = [r["id"] for r in results if r["status"] != "caught"]
    print(f"{len(results) - len(bad)} of {len(results)} mutations caught" + (f"; not caught: {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
