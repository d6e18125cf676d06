"""Exceptions shared by the golden model, the formats and the host layer."""


class LMFlowError(Exception):
    """Base class of every error this project raises on bad input.

    The message always names the file, key, layer or value at fault and what was expected, so
    a command-line front end can print it as a single line.
    """


class ConfigError(LMFlowError, ValueError):
    """A configuration (YAML file or dictionary) is malformed or describes an impossible design."""


class WeightsError(LMFlowError, ValueError):
    """A weights file or weights dictionary does not match the network it is loaded for."""


class FormatError(LMFlowError, ValueError):
    """Packed data (words, records, descriptors, ``.flo`` files) cannot be decoded."""
