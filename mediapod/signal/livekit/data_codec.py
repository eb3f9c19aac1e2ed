"""LiveKit's data packets (livekit_models.proto ``DataPacket``) as the room's DataMessages and back.

LiveKit's clients put one serialized DataPacket in each data channel
message. Like LiveKit's server (pkg/rtc/participant.go,
handleReceivedDataMessage), we trust the channel a packet came on for its
kind and overwrite who sent it, so no client can speak for another; the
room reads only the destinations and, for a user packet, its topic and
payload. Every other packet kind (RPC request/ack/response, stream
header/chunk/trailer, chat, transcription, SIP DTMF, encrypted packets)
means something only to the SDKs and is forwarded with its body untouched.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from livekit.protocol import models as lk

from mediapod.rtc.data import DataKind, DataMessage

FORMAT = "livekit"

_KINDS = {DataKind.RELIABLE: lk.DataPacket.RELIABLE, DataKind.LOSSY: lk.DataPacket.LOSSY}


class LiveKitDataCodec:
    """DataCodec for LiveKit's clients: a data channel message is one DataPacket."""

    format = FORMAT

    def decode(self, frame: bytes, kind: DataKind, sender_identity: str, sender_sid: str) -> DataMessage | None:
        try:
            packet = lk.DataPacket.FromString(frame)
        except DecodeError:
            return None
        packet.kind = _KINDS[kind]
        packet.participant_identity = sender_identity
        packet.participant_sid = sender_sid
        payload, topic = b"", ""
        if packet.WhichOneof("value") == "user":
            user = packet.user
            user.participant_identity = sender_identity
            user.participant_sid = sender_sid
            # Older clients name destinations in the user packet, newer ones in the DataPacket; both are honoured.
            if packet.destination_identities:
                user.destination_identities[:] = packet.destination_identities
            else:
                packet.destination_identities[:] = user.destination_identities
            payload, topic = user.payload, user.topic
        return DataMessage(
            kind=kind,
            sender_identity=sender_identity,
            sender_sid=sender_sid,
            payload=payload,
            topic=topic,
            destination_identities=frozenset(packet.destination_identities),
            frame=packet.SerializeToString(),
            frame_format=FORMAT,
        )

    def encode(self, message: DataMessage) -> bytes:
        """A user packet for a message from another front end or the server API (no sender: empty identity)."""
        destinations = sorted(message.destination_identities)
        user = lk.UserPacket(
            participant_sid=message.sender_sid,
            participant_identity=message.sender_identity,
            payload=message.payload,
            destination_identities=destinations,
        )
        if message.topic:
            user.topic = message.topic
        packet = lk.DataPacket(
            kind=_KINDS[message.kind],
            participant_identity=message.sender_identity,
            participant_sid=message.sender_sid,
            destination_identities=destinations,
            user=user,
        )
        return packet.SerializeToString()
