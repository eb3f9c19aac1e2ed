"""Issue: Reliability — participants with one idle PeerConnection stay connected,
and no participant can stall a pod.

One test per item of the issue's "What it must show", against a real media
pod process, real aiortc peers and real DTLS-SRTP on loopback.
"""

from __future__ import annotations
