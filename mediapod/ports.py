"""Checking a TCP port is free before a server binds it, so the user reads one clear line instead of a server's own failure."""

from __future__ import annotations

import errno
import socket


class PortInUse(OSError):
    """A port the pod is configured to listen on is taken; the message names it."""


def claim_tcp_port(what: str, host: str, port: int) -> int:
    """The port, checked free (0: a free one picked now); ``what`` names it in the error.

    Raises:
        PortInUse: another socket holds it.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(exc.errno, f"{what} port {host}:{port} is already in use") from None
            raise
        return int(probe.getsockname()[1])
