"""An echo agent written with unmodified livekit-agents: it hears the caller's audio and says it back.

Run by the acceptance tests as a worker process in its own virtualenv
(.venv-agents: livekit-agents pins its own `livekit` rtc SDK), pointed at a
pod by LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET, as any LiveKit
deployment runs one: ``python echo_agent.py start``. ECHO_AGENT_NAME set
makes it a named agent (explicit dispatch only). No AI service: the "voice"
is the caller's own audio, frame by frame.
"""

from __future__ import annotations

import asyncio
import os

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, cli

SAMPLE_RATE = 48000

# Port 0: several workers run side by side. A fixed load of 0: the test machine's
# CPU is shared with the pods, and the default (CPU) load would mark a busy worker
# full; the server then balances by job count.
server = AgentServer(num_idle_processes=2, port=0, load_fnc=lambda: 0.0)


@server.rtc_session(agent_name=os.environ.get("ECHO_AGENT_NAME", ""))
async def echo(ctx: JobContext) -> None:
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    await ctx.room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("echo", source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    tasks: set[asyncio.Task[None]] = set()

    async def repeat(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
            await source.capture_frame(event.frame)

    def on_track(track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            task = asyncio.create_task(repeat(track))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    ctx.room.on("track_subscribed", on_track)
    for participant in ctx.room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.track is not None:
                on_track(publication.track, publication, participant)  # type: ignore[arg-type]


if __name__ == "__main__":
    cli.run_app(server)
