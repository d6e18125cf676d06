"""Regenerate the tables in ``docs/`` that are generated from the code: ``python -m models.docgen``.

The blocks between ``<!-- tag -->`` and ``<!-- end -->`` markers are replaced by the code's own
tables (``tests/test_docs.py`` checks that they agree): the layer descriptor and the threshold
records in ``docs/formats.md``, the register map and the cycles per layer of the default
networks (:func:`sw.program.cycles_table`: the compiled programs' descriptors through the cycle
model) in ``docs/architecture.md``.
"""

import os
import re
import sys

from .engine import DESCRIPTOR
from .formats import threshold_record
from .regmap import doc_table

__all__ = ["generated_blocks", "update", "main"]

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def generated_blocks():
    """``{file: {tag: table}}`` of every generated block."""
    return {"formats.md": {"descriptor": DESCRIPTOR.doc_table(),
                           **{f"threshold-record:{b}": threshold_record(b).doc_table() for b in (13824, 27648)}},
            "architecture.md": {"regmap": doc_table(), "cycles": _cycles_table()}}


def _cycles_table():
    # The compiler is the host's (sw/program.py); imported here, where only the docs need it.
    from sw.program import cycles_table
    return cycles_table()


def update(docs=DOCS):
    """Rewrite the generated blocks in place; returns the files changed."""
    changed = []
    for name, blocks in generated_blocks().items():
        path = os.path.join(docs, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = text
        for tag, table in blocks.items():
            # (an empty block, the end marker right after the tag, is filled as well)
            new = re.sub(rf"(<!-- {re.escape(tag)} -->\n)(?:.*?\n)??(<!-- end -->)",
                         lambda m, table=table: m.group(1) + table + "\n" + m.group(2), new, flags=re.S)
        if new != text:
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(tmp, path)
            changed.append(path)
    return changed


def main():
    for path in update():
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
