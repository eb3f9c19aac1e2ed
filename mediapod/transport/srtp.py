"""SRTP/SRTCP sessions keyed from a DTLS-SRTP handshake (RFC 5764), via libsrtp."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp
from pylibsrtp import Policy, Session

SrtpError = pylibsrtp.Error


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """An SRTP protection profile as named by OpenSSL and numbered by libsrtp."""

    openssl_name: bytes
    libsrtp_profile: int
    key_length: int
    salt_length: int


AEAD_AES_128_GCM = SrtpProfile(b"SRTP_AEAD_AES_128_GCM", Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12)
AES128_CM_SHA1_80 = SrtpProfile(b"SRTP_AES128_CM_SHA1_80", Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14)

# Preference order offered in the DTLS use_srtp extension: GCM is cheaper per
# packet (one AES pass, no separate HMAC) and every current browser has it.
SRTP_PROFILES: tuple[SrtpProfile, ...] = (AEAD_AES_128_GCM, AES128_CM_SHA1_80)


def profile_by_openssl_name(name: bytes) -> SrtpProfile | None:
    """The profile OpenSSL reports as negotiated, or None if we never offered it."""
    for profile in SRTP_PROFILES:
        if profile.openssl_name == name:
            return profile
    return None


class SrtpSession:
    """Both directions of one DTLS-SRTP association: inbound and outbound libsrtp sessions.

    One instance serves every SSRC on the 5-tuple (BUNDLE + rtcp-mux), so the
    policies use the ANY_INBOUND / ANY_OUTBOUND wildcards.
    """

    __slots__ = ("profile", "protect_rtcp", "protect_rtp", "unprotect_rtcp", "unprotect_rtp")

    def __init__(self, profile: SrtpProfile, local_key: bytes, remote_key: bytes) -> None:
        self.profile = profile
        rx = Session(self._policy(remote_key, Policy.SSRC_ANY_INBOUND))
        tx = Session(self._policy(local_key, Policy.SSRC_ANY_OUTBOUND))
        # libsrtp's own methods, bound once: protect_rtp runs for every packet to every subscriber.
        self.unprotect_rtp: Callable[[bytes], bytes] = rx.unprotect
        self.unprotect_rtcp: Callable[[bytes], bytes] = rx.unprotect_rtcp
        self.protect_rtp: Callable[[bytes], bytes] = tx.protect
        self.protect_rtcp: Callable[[bytes], bytes] = tx.protect_rtcp

    def _policy(self, key: bytes, ssrc_type: int) -> Policy:
        policy = Policy(key=key, ssrc_type=ssrc_type, srtp_profile=self.profile.libsrtp_profile)
        # Retransmissions re-send a sequence number already protected once.
        policy.allow_repeat_tx = True
        policy.window_size = 1024
        return policy

    @classmethod
    def from_keying_material(cls, profile: SrtpProfile, material: bytes, is_server: bool) -> SrtpSession:
        """Split RFC 5764 section 4.2 keying material: client key, server key, client salt, server salt."""
        k, s = profile.key_length, profile.salt_length
        client = material[0:k] + material[2 * k : 2 * k + s]
        server = material[k : 2 * k] + material[2 * k + s : 2 * k + 2 * s]
        return cls(profile, server, client) if is_server else cls(profile, client, server)
