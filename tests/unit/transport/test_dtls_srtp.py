"""DTLS-SRTP (RFC 5763/5764): our DtlsServer against a pyOpenSSL client, in memory.

Datagrams move between the two with plain function calls: the server's
``send`` appends to a list that the client reads with ``bio_write``. The
client exports its own keying material and builds its own libsrtp session,
so a packet that crosses over proves both sides derived the same keys.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL

from mediapod.transport.dtls import DtlsCertificate, DtlsServer, DtlsState, certificate_fingerprint
from mediapod.transport.srtp import (
    AEAD_AES_128_GCM,
    AES128_CM_SHA1_80,
    SRTP_PROFILES,
    SrtpError,
    SrtpProfile,
    SrtpSession,
)
from tests.support.dtls_client import DtlsClient

# RTP v2, marker 0, PT 96, seq 4660, ts 0x01020304, SSRC 0xdeadbeef, 12-byte payload.
RTP_PACKET = bytes.fromhex("80601234" "01020304" "deadbeef") + b"hello, world"
# RTCP receiver report, no report blocks, sender SSRC 0xdeadbeef.
RTCP_PACKET = bytes.fromhex("80c90001" "deadbeef")


class Association:
    """A DtlsServer wired to a DtlsClient through two in-memory datagram lists."""

    def __init__(
        self,
        *,
        client_profiles: bytes | None = b"SRTP_AEAD_AES_128_GCM",
        fingerprints: list[tuple[str, str]] | None = None,
        client_max_version: int | None = None,
    ) -> None:
        self.server_certificate = DtlsCertificate.generate()
        self.client = DtlsClient(DtlsCertificate.generate(), client_profiles, client_max_version)
        self.to_client: list[bytes] = []
        self.states: list[DtlsState] = []
        self.application_data: list[bytes] = []
        if fingerprints is None:
            fingerprints = [("sha-256", self.client.certificate.fingerprint)]
        self.server = DtlsServer(
            self.server_certificate.ssl_context(),
            fingerprints,
            self.to_client.append,
            self.states.append,
            self.application_data.append,
        )

    def handshake(self, rounds: int = 10) -> None:
        for _ in range(rounds):
            for datagram in self.client.step(self.to_client):
                self.server.feed(datagram)
            if self.client.handshake_done and self.server.state != DtlsState.CONNECTING:
                # Let the client read the server's final flight.
                self.client.step(self.to_client)
                return

    def close(self) -> None:
        self.server.close()


@pytest.fixture
async def association() -> AsyncIterator[Association]:
    assoc = Association()
    yield assoc
    assoc.close()


# --- the handshake -----------------------------------------------------------


async def test_server_waits_for_a_client_hello_in_state_new() -> None:
    assoc = Association()

    assert assoc.server.state == DtlsState.NEW
    assert assoc.server.srtp is None
    assert assoc.to_client == []
    assoc.close()


async def test_handshake_connects_and_negotiates_the_clients_profile(association: Association) -> None:
    association.handshake()

    assert association.client.handshake_done
    assert association.server.state == DtlsState.CONNECTED
    assert association.states == [DtlsState.CONNECTING, DtlsState.CONNECTED]
    assert association.server.failure == ""
    assert association.server.srtp is not None
    assert association.server.srtp.profile == AEAD_AES_128_GCM
    assert association.client.ssl.get_selected_srtp_profile() == b"SRTP_AEAD_AES_128_GCM"


async def test_server_prefers_gcm_when_the_client_offers_both() -> None:
    assoc = Association(client_profiles=b"SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM")

    assoc.handshake()

    assert assoc.server.state == DtlsState.CONNECTED
    assert assoc.server.srtp is not None
    assert assoc.server.srtp.profile.openssl_name in {p.openssl_name for p in SRTP_PROFILES}
    assert assoc.client.ssl.get_selected_srtp_profile() == assoc.server.srtp.profile.openssl_name
    assoc.close()


async def test_server_presents_the_certificate_it_signals() -> None:
    assoc = Association()

    assoc.handshake()

    server_cert = assoc.client.ssl.get_peer_certificate(as_cryptography=True)
    assert server_cert is not None
    assert certificate_fingerprint(server_cert) == assoc.server_certificate.fingerprint
    assoc.close()


@pytest.mark.parametrize("profile", [AES128_CM_SHA1_80, AEAD_AES_128_GCM], ids=lambda p: p.openssl_name.decode())
async def test_client_protected_packets_are_unprotected_by_the_server(profile: SrtpProfile) -> None:
    assoc = Association(client_profiles=profile.openssl_name)
    assoc.handshake()
    assert assoc.server.srtp is not None and assoc.server.srtp.profile == profile
    client_srtp = assoc.client.srtp()

    assert assoc.server.srtp.unprotect_rtp(client_srtp.protect_rtp(RTP_PACKET)) == RTP_PACKET
    assert assoc.server.srtp.unprotect_rtcp(client_srtp.protect_rtcp(RTCP_PACKET)) == RTCP_PACKET
    assoc.close()


@pytest.mark.parametrize("profile", [AES128_CM_SHA1_80, AEAD_AES_128_GCM], ids=lambda p: p.openssl_name.decode())
async def test_server_protected_packets_are_unprotected_by_the_client(profile: SrtpProfile) -> None:
    assoc = Association(client_profiles=profile.openssl_name)
    assoc.handshake()
    assert assoc.server.srtp is not None
    client_srtp = assoc.client.srtp()

    protected = assoc.server.srtp.protect_rtp(RTP_PACKET)

    assert protected != RTP_PACKET
    assert protected[:12] == RTP_PACKET[:12]  # the header stays in the clear
    assert client_srtp.unprotect_rtp(protected) == RTP_PACKET
    assert client_srtp.unprotect_rtcp(assoc.server.srtp.protect_rtcp(RTCP_PACKET)) == RTCP_PACKET
    assoc.close()


@pytest.mark.parametrize(
    ("profile", "overhead"),
    [(AES128_CM_SHA1_80, 10), (AEAD_AES_128_GCM, 16)],
    ids=["SRTP_AES128_CM_SHA1_80", "SRTP_AEAD_AES_128_GCM"],
)
async def test_srtp_adds_the_profiles_auth_tag(profile: SrtpProfile, overhead: int) -> None:
    assoc = Association(client_profiles=profile.openssl_name)
    assoc.handshake()
    assert assoc.server.srtp is not None

    assert len(assoc.server.srtp.protect_rtp(RTP_PACKET)) == len(RTP_PACKET) + overhead
    assoc.close()


async def test_tampered_srtp_fails_authentication(association: Association) -> None:
    association.handshake()
    assert association.server.srtp is not None
    protected = bytearray(association.client.srtp().protect_rtp(RTP_PACKET))
    protected[-1] ^= 0x01

    with pytest.raises(SrtpError):
        association.server.srtp.unprotect_rtp(bytes(protected))


async def test_srtp_sessions_of_two_associations_do_not_interoperate() -> None:
    first, second = Association(), Association()
    first.handshake()
    second.handshake()
    assert second.server.srtp is not None

    with pytest.raises(SrtpError):
        second.server.srtp.unprotect_rtp(first.client.srtp().protect_rtp(RTP_PACKET))
    first.close()
    second.close()


async def test_server_retransmits_its_flight_when_the_client_goes_quiet(association: Association) -> None:
    for datagram in association.client.step([]):
        association.server.feed(datagram)
    first_flight = list(association.to_client)
    assert first_flight
    association.to_client.clear()

    # OpenSSL's initial DTLS retransmission timeout is one second.
    for _ in range(40):
        await asyncio.sleep(0.05)
        if association.to_client:
            break

    assert association.to_client, "no retransmission within 2 s"
    assert association.server.state == DtlsState.CONNECTING


# --- verification ------------------------------------------------------------


async def test_client_certificate_not_matching_the_sdp_fingerprint_fails() -> None:
    stranger = DtlsCertificate.generate()
    assoc = Association(fingerprints=[("sha-256", stranger.fingerprint)])

    assoc.handshake()

    assert assoc.server.state == DtlsState.FAILED
    assert assoc.states[-1] == DtlsState.FAILED
    assert "fingerprint" in assoc.server.failure
    assert assoc.server.srtp is None
    assoc.close()
    assert assoc.server.state == DtlsState.FAILED


async def test_fingerprint_matching_is_case_insensitive() -> None:
    client_certificate = DtlsCertificate.generate()
    assoc = Association(fingerprints=[("SHA-256", client_certificate.fingerprint.lower())])
    assoc.client = DtlsClient(client_certificate, b"SRTP_AEAD_AES_128_GCM")

    assoc.handshake()

    assert assoc.server.state == DtlsState.CONNECTED
    assoc.close()


async def test_fingerprint_with_another_hash_function_is_checked() -> None:
    client_certificate = DtlsCertificate.generate()
    sha512 = certificate_fingerprint(client_certificate.cert, "sha-512")
    assoc = Association(fingerprints=[("sha-512", sha512)])
    assoc.client = DtlsClient(client_certificate, b"SRTP_AEAD_AES_128_GCM")

    assoc.handshake()

    assert assoc.server.state == DtlsState.CONNECTED
    assoc.close()


async def test_only_unknown_hash_functions_in_sdp_fail_verification() -> None:
    assoc = Association(fingerprints=[("md5", "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF")])

    assoc.handshake()

    assert assoc.server.state == DtlsState.FAILED
    assert "fingerprint" in assoc.server.failure
    assoc.close()


async def test_client_offering_no_srtp_profile_fails() -> None:
    assoc = Association(client_profiles=None)

    assoc.handshake()

    assert assoc.server.state == DtlsState.FAILED
    assert "SRTP" in assoc.server.failure
    assert assoc.server.srtp is None
    assoc.close()


async def test_client_limited_to_dtls_1_0_is_refused() -> None:
    dtls_1_0 = 0xFEFF
    assoc = Association(client_max_version=dtls_1_0)

    try:
        assoc.handshake()
    except SSL.Error:
        pass  # the client may see the server's protocol_version alert as an error

    assert assoc.server.state == DtlsState.FAILED
    assert assoc.server.srtp is None
    assoc.close()


async def test_client_offering_only_unsupported_profiles_fails() -> None:
    assoc = Association(client_profiles=b"SRTP_AES128_CM_SHA1_32")

    assoc.handshake()

    assert assoc.server.state == DtlsState.FAILED
    assert assoc.server.srtp is None
    assoc.close()


def test_certificate_fingerprint_is_colon_separated_upper_case_hex() -> None:
    certificate = DtlsCertificate.generate()

    fingerprint = certificate.fingerprint

    pairs = fingerprint.split(":")
    assert len(pairs) == 32
    assert all(len(pair) == 2 and pair == pair.upper() for pair in pairs)
    assert bytes.fromhex("".join(pairs)) == certificate.cert.fingerprint(hashes.SHA256())


# --- garbage and teardown ----------------------------------------------------


GARBAGE = {
    "empty": b"",
    "one byte": b"\x16",
    "record header only": bytes.fromhex("16fefd00000000000000000010"),
    "record claiming more than it has": bytes.fromhex("16fefd0000000000000000ffff") + b"\x01\x02",
    "handshake record with nonsense body": bytes.fromhex("16fefd000000000000000000080102030405060708"),
    "application data before handshake": bytes.fromhex("17fefd000100000000000100040a0b0c0d"),
    "random-looking bytes": bytes.fromhex("2f8e91c4d7a0331b5e6c0099aa7d3e12f4c8b6a5"),
}


@pytest.mark.parametrize("datagram", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_before_the_handshake_does_not_raise(datagram: bytes) -> None:
    assoc = Association()

    assoc.server.feed(datagram)

    assert assoc.server.state in (DtlsState.NEW, DtlsState.CONNECTING, DtlsState.FAILED)
    assert assoc.server.srtp is None
    assoc.close()


@pytest.mark.parametrize("datagram", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_after_the_handshake_is_ignored(association: Association, datagram: bytes) -> None:
    association.handshake()

    association.server.feed(datagram)

    assert association.server.state == DtlsState.CONNECTED


async def test_garbage_before_a_real_client_hello_does_not_prevent_the_handshake(association: Association) -> None:
    association.server.feed(GARBAGE["record header only"])
    association.server.feed(GARBAGE["random-looking bytes"])

    association.handshake()

    assert association.server.state == DtlsState.CONNECTED


async def test_feeding_a_failed_association_does_nothing() -> None:
    assoc = Association(fingerprints=[("sha-256", DtlsCertificate.generate().fingerprint)])
    assoc.handshake()
    assert assoc.server.state == DtlsState.FAILED
    states_before = list(assoc.states)

    assoc.server.feed(GARBAGE["handshake record with nonsense body"])

    assert assoc.server.state == DtlsState.FAILED
    assert assoc.states == states_before
    assoc.close()


async def test_close_sends_close_notify_and_reports_closed(association: Association) -> None:
    association.handshake()
    association.to_client.clear()

    association.server.close()

    assert association.server.state == DtlsState.CLOSED
    assert association.states[-1] == DtlsState.CLOSED
    assert association.to_client, "close_notify was not sent"
    # An encrypted alert record: content type 21, DTLS 1.2, epoch 1.
    assert association.to_client[0][:5] == bytes.fromhex("15fefd0001")
    association.client.ssl.bio_write(association.to_client[0])
    with pytest.raises(SSL.ZeroReturnError):
        association.client.ssl.recv(1500)


async def test_client_close_notify_closes_the_association(association: Association) -> None:
    association.handshake()

    try:
        association.client.ssl.shutdown()
    except SSL.Error:
        pass
    for datagram in association.client.drain():
        association.server.feed(datagram)

    assert association.server.state == DtlsState.CLOSED
    assert association.states[-1] == DtlsState.CLOSED


async def test_closing_twice_reports_closed_once(association: Association) -> None:
    association.handshake()

    association.server.close()
    association.server.close()

    assert association.states.count(DtlsState.CLOSED) == 1


def test_keying_material_is_split_per_rfc5764() -> None:
    # RFC 5764 section 4.2: client key | server key | client salt | server salt.
    k, s = AES128_CM_SHA1_80.key_length, AES128_CM_SHA1_80.salt_length
    material = bytes(range(2 * (k + s)))
    client = SrtpSession.from_keying_material(AES128_CM_SHA1_80, material, is_server=False)
    server = SrtpSession.from_keying_material(AES128_CM_SHA1_80, material, is_server=True)
    packet = struct.pack("!BBHII", 0x80, 96, 1, 0, 0x01020304) + b"payload"

    assert server.unprotect_rtp(client.protect_rtp(packet)) == packet
    assert client.unprotect_rtp(server.protect_rtp(packet)) == packet


async def test_application_data_from_the_client_reaches_on_data_record_by_record(association: Association) -> None:
    association.handshake()
    association.client.ssl.send(b"first sctp packet")
    association.client.ssl.send(b"second")
    for datagram in association.client.drain():
        association.server.feed(datagram)
    assert association.application_data == [b"first sctp packet", b"second"]


async def test_send_data_reaches_the_client_as_one_record(association: Association) -> None:
    association.handshake()
    assert association.server.send_data(b"x" * 1200)
    for datagram in association.to_client:
        association.client.ssl.bio_write(datagram)
    association.to_client.clear()
    assert association.client.ssl.recv(2048) == b"x" * 1200


async def test_send_data_before_the_handshake_is_refused() -> None:
    association = Association()
    assert not association.server.send_data(b"too early")
    assert association.to_client == []
