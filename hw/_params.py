"""Parameter checks shared by the gateware components (keyword-only, validated before building).

Every message names the parameter and the offending value, in the style of Amaranth's own
library: ``"simd_lanes must be a positive integer, not 0"``.
"""

import operator

__all__ = ["check_int"]


def check_int(name, value, *, minimum=None, maximum=None, what=None):
    """Return ``value`` as an :class:`int` if it is an integer in ``[minimum, maximum]``.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : object
        Value to check; :class:`bool` is rejected.
    minimum, maximum : int, optional
        Inclusive bounds.
    what : str, optional
        Description of the expected value, replacing the one derived from the bounds.

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If ``value`` is out of bounds.
    """
    if what is None:
        if minimum == 1 and maximum is None:
            what = "a positive integer"
        elif minimum == 0 and maximum is None:
            what = "a non-negative integer"
        elif minimum is not None and maximum is not None:
            what = f"an integer between {minimum} and {maximum}"
        elif minimum is not None:
            what = f"an integer >= {minimum}"
        else:
            what = "an integer"
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {what}, not {value!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return value
