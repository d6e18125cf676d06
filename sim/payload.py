"""Stream payloads as plain Python values, packed and unpacked with the gateware's own layouts.

The layouts come from the components themselves (``component.i_stream.payload.shape()``), so a
testbench never repeats a field offset: a :class:`amaranth.lib.data.StructLayout` maps to a
``dict``, an :class:`~amaranth.lib.data.ArrayLayout` to a ``list``, a
:class:`~amaranth.lib.data.FlexibleLayout` to a ``dict`` and a plain shape to an ``int``
(negative for signed shapes). :func:`pack` also takes an ``int`` for a layout: its raw bits (a
record already packed by ``models.formats``, for example). Pure Python: usable in a cocotb
process and in pytest.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "width"]


def width(shape):
    """Width in bits of a shape or layout."""
    return Shape.cast(shape).width


def _fields(layout):
    if isinstance(layout, data.ArrayLayout):
        return [(i, layout[i]) for i in range(layout.length)]
    return list(layout)


def pack(shape, value):
    """Bit pattern (an ``int``) of ``value`` seen through ``shape``.

    Raises
    ------
    KeyError
        If a ``dict`` lacks a field of the layout.
    ValueError
        If a list has the wrong length or an integer does not fit its field.
    """
    if isinstance(shape, data.Layout) and not isinstance(value, int):
        if isinstance(shape, data.ArrayLayout) and len(value) != shape.length:
            raise ValueError(f"{shape!r} needs {shape.length} elements, not {len(value)}")
        raw = 0
        for key, field in _fields(shape):
            raw |= pack(field.shape, value[key]) << field.offset
        return raw
    s = Shape.cast(shape)
    v = int(value)
    lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else (0, (1 << s.width) - 1)
    if s.width == 0:
        lo = hi = 0
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit {s!r}")
    return v & ((1 << s.width) - 1)


def unpack(shape, raw):
    """Inverse of :func:`pack`: the value of bit pattern ``raw`` seen through ``shape``."""
    raw = int(raw)
    if isinstance(shape, data.Layout):
        if isinstance(shape, data.ArrayLayout):
            return [unpack(field.shape, raw >> field.offset) for _, field in _fields(shape)]
        return {key: unpack(field.shape, raw >> field.offset) for key, field in _fields(shape)}
    s = Shape.cast(shape)
    v = raw & ((1 << s.width) - 1)
    if s.signed and s.width and v >> (s.width - 1):
        v -= 1 << s.width
    return v
