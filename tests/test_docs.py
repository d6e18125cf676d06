import os
import re

from models.formats import threshold_record

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def test_record_tables_in_formats_md_are_generated_from_the_code():
    with open(os.path.join(DOCS, "formats.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"<!-- threshold-record:(\d+) -->\n(.*?)\n<!-- end -->", text, re.S)
    assert blocks, "docs/formats.md has no threshold record table"
    for bound, table in blocks:
        assert table.strip() == threshold_record(int(bound)).doc_table()


def _block(text, tag):
    found = re.findall(rf"<!-- {tag} -->\n(.*?)\n<!-- end -->", text, re.S)
    assert found, f"no {tag} table"
    return found[0].strip()


def test_descriptor_and_register_tables_are_generated_from_the_code():
    from models.engine import DESCRIPTOR
    from models.regmap import doc_table
    with open(os.path.join(DOCS, "formats.md"), encoding="utf-8") as f:
        assert _block(f.read(), "descriptor") == DESCRIPTOR.doc_table()
    from sw.program import cycles_table
    with open(os.path.join(DOCS, "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    assert _block(text, "regmap") == doc_table()
    assert _block(text, "cycles") == cycles_table()
