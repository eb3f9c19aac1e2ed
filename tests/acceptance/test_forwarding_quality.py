"""Issue: Forwarding quality — NACK/RTX, keyframes, simulcast, mute, active speakers.

One test per item of the issue's "What it must show", against a real media
pod process and real aiortc peers.
"""

from __future__ import annotations

import asyncio
import secrets

from mediapod import client
from mediapod.protocol import models_pb2, signal_pb2
from tests.support.audio import ToneTrack
from tests.support.mediapod_process import MediaPodProcess


def speaker_updates(session: client.Session) -> list[signal_pb2.SpeakersChanged]:
    return [m.speakers_changed for m in session.messages if m.WhichOneof("message") == "speakers_changed"]


def is_speaking(session: client.Session, sid: str) -> bool:
    return any(s.sid == sid for s in session.active_speakers)


async def test_5_speaker_updates_follow_the_loud_participant_and_stop_when_quiet(media_pod: MediaPodProcess) -> None:
    room = f"speakers-{secrets.token_hex(3)}"
    # 0.5 of full scale is far above the 30 dBov active level; 0.003 is
    # audible on a meter but never speech.
    loud_track, quiet_track = ToneTrack(0.5), ToneTrack(0.003)
    async with (
        await client.connect(media_pod.grpc_target, media_pod.token(room, "listener"), auto_subscribe=False) as listener,
        await client.connect(media_pod.grpc_target, media_pod.token(room, "loud")) as loud,
        await client.connect(media_pod.grpc_target, media_pod.token(room, "quiet")) as quiet,
    ):
        everyone = (listener, loud, quiet)
        await loud.publish(loud_track, name="mic", source=models_pb2.MICROPHONE)
        await quiet.publish(quiet_track, name="mic", source=models_pb2.MICROPHONE)

        # Loud: every participant, the speaker included, learns who speaks.
        for session in everyone:
            await session.wait_for(lambda s: is_speaking(s, loud.participant_sid), timeout=10)
        [entry] = listener.active_speakers
        assert entry.active and entry.level > 0.1, entry
        await asyncio.sleep(1.0)  # keep talking: time for the quiet one to show up if it wrongly would
        assert [s.sid for s in listener.active_speakers] == [loud.participant_sid]

        # Quiet: an update says the speaker stopped...
        loud_track.amplitude = 0.0
        for session in everyone:
            await session.wait_for(lambda s: not is_speaking(s, loud.participant_sid), timeout=5)
            last = speaker_updates(session)[-1]
            assert [(s.sid, s.active) for s in last.speakers] == [(loud.participant_sid, False)], last
        # ...and then nothing more, since nothing changes.
        settled = [len(speaker_updates(s)) for s in everyone]
        await asyncio.sleep(2.0)
        assert [len(speaker_updates(s)) for s in everyone] == settled

        for session in everyone:
            updates = speaker_updates(session)
            assert any(s.sid == loud.participant_sid and s.active for u in updates for s in u.speakers)
            assert not any(s.sid == quiet.participant_sid for u in updates for s in u.speakers), (
                "the quiet publisher was listed as a speaker"
            )
        assert media_pod.metric("switchboard_speaker_updates_total") >= sum(settled)
