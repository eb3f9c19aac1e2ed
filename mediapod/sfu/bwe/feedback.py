"""What TWCC feedback says about one packet we sent, once matched to our send history."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PacketResult:
    """One sent packet and its fate: arrival on the receiver's clock, or None if reported lost.

    Send and arrival times are on different clocks; only their differences
    between packets are ever compared.
    """

    sequence: int  # extended transport-wide sequence number
    send_time: float  # our clock, seconds
    size: int  # bytes, headers included
    arrival: float | None  # receiver clock, seconds; None = reported lost
