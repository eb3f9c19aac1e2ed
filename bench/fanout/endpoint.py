"""One generator-side WebRTC endpoint: a UDP socket that completes ICE and DTLS-SRTP, then steps aside.

The generator must be cheaper than the SFU it loads, so after the handshake
the socket and the SRTP keying material go to a counting process
(subscribers.py) or the publisher (publisher.py); nothing here runs per
media packet. Both DTLS roles are supported because SFUs differ: our pod
and mediasoup let us be the client, Janus answers an offer with
``a=setup:active`` and is the client itself.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from dataclasses import dataclass

from aioice import stun
from OpenSSL import SSL, crypto

from bench.fanout.sdp import RemoteDescription
from mediapod.transport.dtls import DtlsCertificate

# One cipher for every SFU, so no one is measured with a cheaper one.
SRTP_PROFILE = b"SRTP_AES128_CM_SHA1_80"
KEYING_MATERIAL_LENGTH = 2 * (16 + 14)
CHECK_INTERVAL = 0.05


@dataclass(frozen=True)
class IceCredentials:
    """Both ends' ICE credentials and the SFU's address: what keepalives and check answers need."""

    local_ufrag: str
    local_pwd: str
    remote_ufrag: str
    remote_pwd: str
    remote_address: tuple[str, int]
    controlling: bool


@dataclass(frozen=True)
class Connected:
    """What a finished handshake leaves: the socket, ICE credentials and SRTP keying material."""

    sock: socket.socket
    ice: IceCredentials
    keying_material: bytes
    is_dtls_server: bool


def binding_request(ice: IceCredentials) -> bytes:
    """A connectivity check (also our consent keepalive), nominating when we control."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{ice.remote_ufrag}:{ice.local_ufrag}"
    request.attributes["PRIORITY"] = 1853824767
    if ice.controlling:
        request.attributes["ICE-CONTROLLING"] = 0x1122334455667788
        request.attributes["USE-CANDIDATE"] = None
    else:
        request.attributes["ICE-CONTROLLED"] = 0x1122334455667788
    request.add_message_integrity(ice.remote_pwd.encode())
    request.add_fingerprint()
    return bytes(request)


def binding_response(data: bytes, address: tuple[str, int], ice: IceCredentials) -> bytes | None:
    """Our answer to the SFU's connectivity or consent check (full-ICE SFUs send them), or None."""
    try:
        message = stun.parse_message(data)
    except ValueError:
        return None
    if message.message_method != stun.Method.BINDING or message.message_class != stun.Class.REQUEST:
        return None
    response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=message.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = address
    response.add_message_integrity(ice.local_pwd.encode())
    response.add_fingerprint()
    return bytes(response)


class Endpoint:
    """A bound UDP socket with fresh ICE credentials; connect() runs ICE and DTLS on it."""

    def __init__(self, bind_ip: str, certificate: DtlsCertificate) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_ip, 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(16)
        self.certificate = certificate

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint

    async def connect(self, remote: RemoteDescription, *, we_offered: bool, timeout: float = 20.0) -> Connected:
        """ICE, then DTLS in the role the SDP gave us; raises TimeoutError naming the stage it stuck in."""
        # An ICE-lite SFU never controls; a full one controls when it made the offer.
        ice = IceCredentials(self.ufrag, self.pwd, remote.ufrag, remote.pwd, remote.address, remote.ice_lite or we_offered)
        dtls_server = remote.setup == "active"
        tls = self._dtls(server=dtls_server)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        ice_done = False
        next_check = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not ice_done and now >= next_check:
                self.sock.sendto(binding_request(ice), ice.remote_address)
                next_check = now + CHECK_INTERVAL
            if ice_done and self._advance(tls, ice.remote_address):
                material = tls.export_keying_material(b"EXTRACTOR-dtls_srtp", KEYING_MATERIAL_LENGTH)
                return Connected(self.sock, ice, material, dtls_server)
            try:
                data, address = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 2048), CHECK_INTERVAL)
            except TimeoutError:
                if ice_done:
                    tls.DTLSv1_handle_timeout()
                continue
            first = data[0]
            if first < 4:
                response = binding_response(data, address, ice)
                if response is not None:
                    self.sock.sendto(response, address)
                elif data[:2] == b"\x01\x01":  # our check succeeded
                    ice_done = True
            elif 20 <= first < 64:
                tls.bio_write(data)
                ice_done = True  # DTLS from the SFU means it considers ICE done
        raise TimeoutError(f"{'DTLS' if ice_done else 'ICE'} with {remote.address} did not complete in {timeout} s")

    def _dtls(self, *, server: bool) -> SSL.Connection:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(crypto.X509.from_cryptography(self.certificate.cert))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(self.certificate.key))
        # Peers trust the SDP fingerprint, not a CA; the bench does not check it.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.set_tlsext_use_srtp(SRTP_PROFILE)
        tls = SSL.Connection(ctx)
        if server:
            tls.set_accept_state()
        else:
            tls.set_connect_state()
        return tls

    def _advance(self, tls: SSL.Connection, address: tuple[str, int]) -> bool:
        """One handshake step; sends what it produced; True once the handshake is complete."""
        try:
            tls.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        while True:
            try:
                data = tls.bio_read(2048)
            except SSL.WantReadError:
                break
            self.sock.sendto(data, address)
        return done
