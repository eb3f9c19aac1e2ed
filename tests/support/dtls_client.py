"""A browser's side of DTLS-SRTP for tests: a pyOpenSSL client on memory BIOs."""

from __future__ import annotations

from OpenSSL import SSL, crypto

from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.srtp import SrtpSession, profile_by_openssl_name


class DtlsClient:
    """The browser's side: a pyOpenSSL DTLS client on memory BIOs."""

    def __init__(self, certificate: DtlsCertificate, srtp_profiles: bytes | None, max_version: int | None = None) -> None:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        if max_version is not None:
            ctx.set_max_proto_version(max_version)
            # OpenSSL 3 only speaks the old versions at security level 0.
            ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
        ctx.use_certificate(crypto.X509.from_cryptography(certificate.cert))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(certificate.key))
        # The client too trusts the SDP fingerprint, not a CA.
        ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
        if srtp_profiles is not None:
            ctx.set_tlsext_use_srtp(srtp_profiles)
        self.ssl = SSL.Connection(ctx)
        self.ssl.set_connect_state()
        self.certificate = certificate
        self.handshake_done = False

    def step(self, incoming: list[bytes]) -> list[bytes]:
        """Take the server's datagrams, advance the handshake, return what the client sends."""
        for datagram in incoming:
            self.ssl.bio_write(datagram)
        incoming.clear()
        if not self.handshake_done:
            try:
                self.ssl.do_handshake()
                self.handshake_done = True
            except SSL.WantReadError:
                pass
        else:
            try:
                self.ssl.recv(1500)
            except (SSL.WantReadError, SSL.ZeroReturnError):
                pass
        return self.drain()

    def drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                data = self.ssl.bio_read(1500)
            except SSL.WantReadError:
                return out
            if not data:
                return out
            out.append(data)

    def srtp(self) -> SrtpSession:
        profile = profile_by_openssl_name(self.ssl.get_selected_srtp_profile())
        assert profile is not None
        material = self.ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        return SrtpSession.from_keying_material(profile, material, is_server=False)
