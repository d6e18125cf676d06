"""Amaranth views of the bit-level records defined in :mod:`models.formats` (threshold records,
layer descriptors): every field at the offset, width and signedness the record format gives it,
so a bit layout is written once, in ``models/``."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["record_layout"]


def record_layout(record):
    """``data.FlexibleLayout`` of a :class:`models.formats.RecordLayout` (``record.bits`` wide)."""
    return data.FlexibleLayout(record.bits, {
        f.name: data.Field(signed(f.width) if f.signed else unsigned(f.width), record.offsets[f.name])
        for f in record.fields
    })
