"""DTLS 1.2 server for DTLS-SRTP (RFC 5763/5764) over a memory BIO.

The media pod is always the DTLS server: it answers the publisher's offer with
``a=setup:passive`` and offers ``actpass`` on the subscriber connection, which
browsers and aiortc answer with ``active``.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto

from mediapod.transport.srtp import SRTP_PROFILES, SrtpSession, profile_by_openssl_name

DTLS1_2_VERSION = 0xFEFD
# Largest plaintext a DTLS record can carry (RFC 6347 section 4.1: 2^14 bytes).
MAX_RECORD_SIZE = 16384

_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "sha-1": hashes.SHA1(),
    "sha-224": hashes.SHA224(),
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}
# Hash names (RFC 8122) of the a=fingerprint lines the handshake can check; an
# offer offering none of them is refused at offer time, not after the handshake.
FINGERPRINT_ALGORITHMS: frozenset[str] = frozenset(_DIGESTS)


def certificate_fingerprint(cert: x509.Certificate, algorithm: str = "sha-256") -> str:
    """The SDP ``a=fingerprint`` value: upper-case hex pairs joined by colons."""
    digest = cert.fingerprint(_DIGESTS[algorithm]).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True)
class DtlsCertificate:
    """The self-signed ECDSA certificate a media pod presents to every peer."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls) -> DtlsCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "switchboard")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert)

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.cert)

    def ssl_context(self) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_options(SSL.OP_NO_TICKET)
        # One association per PeerConnection, idle after its handshake unless
        # it carries data channels: without this each keeps its 16 KB read and
        # write record buffers for life (48 KiB of the 140 KiB an SSL object
        # holds once connected, measured with glibc's mallinfo2).
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        # DTLS 1.2 only (RFC 8827 requires it); pyOpenSSL has no name for the
        # version, so OpenSSL's DTLS1_2_VERSION value is spelled out.
        ctx.set_min_proto_version(DTLS1_2_VERSION)
        # Any certificate is accepted by OpenSSL; trust comes from comparing it
        # with the fingerprint signaled in SDP once the handshake completes.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.use_certificate(crypto.X509.from_cryptography(self.cert))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(self.key))
        ctx.set_cipher_list(
            b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
            b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
        )
        ctx.set_tlsext_use_srtp(b":".join(p.openssl_name for p in SRTP_PROFILES))
        return ctx


class DtlsState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


class DtlsServer:
    """One DTLS association, driven by datagrams fed in and a retransmission timer.

    ``send`` writes a datagram to the peer's selected address; ``on_state``
    is told when the association connects (``srtp`` is then set), fails or
    closes; ``on_data`` gets the application data (SCTP packets) the peer
    sends once connected, one record at a time.
    """

    def __init__(
        self,
        context: SSL.Context,
        remote_fingerprints: list[tuple[str, str]],
        send: Callable[[bytes], None],
        on_state: Callable[[DtlsState], None],
        on_data: Callable[[bytes], None],
    ) -> None:
        self._ssl = SSL.Connection(context)
        self._ssl.set_accept_state()
        self._remote_fingerprints = remote_fingerprints
        self._send = send
        self._on_state = on_state
        self._on_data = on_data
        self._timer: asyncio.TimerHandle | None = None
        self.state = DtlsState.NEW
        self.srtp: SrtpSession | None = None
        self.failure: str = ""

    def feed(self, datagram: bytes) -> None:
        """Process one DTLS datagram from the peer."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return
        try:
            self._ssl.bio_write(datagram)
        except SSL.Error:
            return
        if self.state in (DtlsState.NEW, DtlsState.CONNECTING):
            self._set_state(DtlsState.CONNECTING)
            self._advance_handshake()
        else:
            self._drain_application_data()

    def send_data(self, data: bytes) -> bool:
        """Send application data (one SCTP packet) as one record; False if the association cannot carry it."""
        if self.state != DtlsState.CONNECTED:
            return False
        try:
            self._ssl.send(data)
        except SSL.Error:
            return False
        self._flush()
        return True

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.state == DtlsState.CONNECTED:
            try:
                self._ssl.shutdown()
            except SSL.Error:
                pass
            self._flush()
        if self.state not in (DtlsState.FAILED, DtlsState.CLOSED):
            self._set_state(DtlsState.CLOSED)

    def _advance_handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._flush()
            self._arm_timer()
            return
        except SSL.Error as exc:
            self._flush()
            self._fail(f"handshake failed: {exc}")
            return
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reason = self._verify_peer()
        if reason:
            self._fail(reason)
            return
        profile = profile_by_openssl_name(self._ssl.get_selected_srtp_profile())
        if profile is None:
            self._fail("peer negotiated no SRTP profile")
            return
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        self.srtp = SrtpSession.from_keying_material(profile, material, is_server=True)
        self._set_state(DtlsState.CONNECTED)
        # The peer's first SCTP packet may share a datagram with its Finished.
        if self.state == DtlsState.CONNECTED:
            self._drain_application_data()

    def _verify_peer(self) -> str:
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            return "peer presented no certificate"
        checked = 0
        for algorithm, value in self._remote_fingerprints:
            if algorithm.lower() not in _DIGESTS:
                continue
            checked += 1
            if value.upper() != certificate_fingerprint(cert, algorithm.lower()):
                return "peer certificate does not match the SDP fingerprint"
        return "" if checked else "no usable SDP fingerprint to check the peer certificate"

    def _drain_application_data(self) -> None:
        # One record holds one SCTP packet; a close_notify ends the association.
        while True:
            try:
                data = self._ssl.recv(MAX_RECORD_SIZE)
            except SSL.ZeroReturnError:
                self._set_state(DtlsState.CLOSED)
                return
            except SSL.WantReadError:
                return
            except SSL.Error:
                return
            if data:
                self._on_data(data)

    def _flush(self) -> None:
        while True:
            try:
                data = self._ssl.bio_read(1500)
            except SSL.WantReadError:
                return
            if not data:
                return
            self._send(data)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        timeout = self._ssl.DTLSv1_get_timeout()
        if timeout is None:
            self._timer = None
            return
        self._timer = asyncio.get_running_loop().call_later(max(timeout, 0.01), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.state != DtlsState.CONNECTING:
            return
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(f"handshake timed out: {exc}")
            return
        self._flush()
        self._arm_timer()

    def _fail(self, reason: str) -> None:
        self.failure = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._set_state(DtlsState.FAILED)

    def _set_state(self, state: DtlsState) -> None:
        if state == self.state:
            return
        self.state = state
        self._on_state(state)
