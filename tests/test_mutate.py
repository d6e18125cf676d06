"""The mutation checklist's runner (sim/mutate.py, ``make mutate``) without running the suite:
every mutation of sim/mutations.yaml still applies to the tree, exactly once, and names tests
that exist; the scratch copy holds the sources and none of the outputs."""

from pathlib import Path
import shutil
import subprocess

import pytest

from sim import mutate


def test_every_mutation_applies_once_and_names_existing_tests(tmp_path):
    mutations = mutate.load_checklist()
    assert len(mutations) >= 20
    for m in mutations:
        probe = tmp_path / m["id"]
        (probe / m["file"]).parent.mkdir(parents=True)
        shutil.copy2(mutate.ROOT / m["file"], probe / m["file"])
        mutate.apply(m, probe)          # raises ChecklistError unless the text is there once
        assert (probe / m["file"]).read_text() != (mutate.ROOT / m["file"]).read_text(), m["id"]
        for test in m["tests"]:
            path = test.split("::")[0]
            assert (mutate.ROOT / path).is_file(), f"mutation {m['id']}: no test file {path}"


def test_a_mutation_that_does_not_apply_is_refused(tmp_path):
    m = dict(mutate.load_checklist()[0])
    m["find"] = m.get("find", "") + "\n# not in the file\n"
    (tmp_path / m["file"]).parent.mkdir(parents=True)
    shutil.copy2(mutate.ROOT / m["file"], tmp_path / m["file"])
    with pytest.raises(mutate.ChecklistError, match="occurs 0 times"):
        mutate.apply(m, tmp_path)


@pytest.mark.parametrize("git", [True, False], ids=["git-checkout", "source-tree"])
def test_the_copy_holds_the_sources_not_the_outputs(tmp_path, git):
    root = tmp_path / "tree"
    for rel in ("hw/a.py", "docs/b.md", ".venv/bin/python", "build/sim/x.o", "hw/__pycache__/a.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / ".gitignore").write_text("/.venv/\n/build/\n__pycache__/\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    dest = tmp_path / "copy"
    mutate.copy_tree(Path(root), dest)
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == [".gitignore", "docs/b.md", "hw/a.py"]
