"""The one error type the wire-format parsers raise."""

from __future__ import annotations


class MalformedPacket(ValueError):
    """A packet that cannot be parsed: truncated, wrong version, bad lengths or padding.

    Every parser in ``mediapod.rtp`` raises this and nothing else on bad input,
    so the receive path can count and drop a bad packet with a single
    ``except MalformedPacket`` instead of guarding against ``IndexError`` or
    ``struct.error`` leaking out of the byte fiddling. It subclasses
    ``ValueError`` because bad input is a bad value, and so callers that only
    know the standard library still catch it.
    """
