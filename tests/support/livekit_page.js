// Test-page helpers around livekit-client (the global LivekitClient from web/dist):
// join a room, publish the fake camera and microphone, play what arrives in
// <video>/<audio> elements, and report what the browser itself measured (getStats,
// the elements' own sizes). Loaded by tests/support/livekit_browser.py.
'use strict';

window.lk = (() => {
  const { Room, RoomEvent, Track } = LivekitClient;
  const received = new Map(); // "identity/kind" -> {track, element}
  const inbox = []; // data packets as the room's DataReceived reported them
  let room = null;

  function play(track, participant) {
    const element = track.attach();
    element.muted = track.kind === Track.Kind.Video;
    if (track.kind === Track.Kind.Video) {
      element.style.width = '640px';
      element.style.height = '360px';
    }
    document.body.append(element);
    received.set(`${participant.identity}/${track.kind}`, { track, element });
  }

  async function join(url, token, options) {
    room = new Room(options);
    room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => play(track, participant));
    room.on(RoomEvent.DataReceived, (payload, participant, kind, topic) => inbox.push({
      payload: new TextDecoder().decode(payload), sender: participant?.identity ?? '', reliable: kind === 0, topic: topic ?? '',
    }));
    room.localParticipant.registerRpcMethod('greet', async (call) => `hello ${call.callerIdentity}: ${call.payload}`);
    await room.connect(url, token);
    return { sid: room.localParticipant.sid, signalUrl: room.engine?.url };
  }

  async function publish(resolution) {
    await room.localParticipant.setMicrophoneEnabled(true);
    await room.localParticipant.setCameraEnabled(true, { resolution }, { simulcast: true });
    const [camera] = room.localParticipant.videoTrackPublications.values();
    const sender = camera.track.sender;
    return sender.getParameters().encodings.map((e) => e.rid);
  }

  function receivedKinds() {
    return [...received.keys()].sort();
  }

  // The inbound-rtp report of one received track, as the browser counted it.
  async function inbound(identity, kind) {
    const entry = received.get(`${identity}/${kind}`);
    if (!entry) return null;
    const report = await entry.track.receiver.getStats();
    for (const stat of report.values()) {
      if (stat.type === 'inbound-rtp') {
        return {
          framesDecoded: stat.framesDecoded ?? 0,
          keyFramesDecoded: stat.keyFramesDecoded ?? 0,
          frameWidth: stat.frameWidth ?? 0,
          frameHeight: stat.frameHeight ?? 0,
          pliCount: stat.pliCount ?? 0,
          firCount: stat.firCount ?? 0,
          totalAudioEnergy: stat.totalAudioEnergy ?? 0,
          totalSamplesDuration: stat.totalSamplesDuration ?? 0,
          videoWidth: entry.element.videoWidth ?? 0,
        };
      }
    }
    return null;
  }

  // Resize the element a received video plays in; adaptive stream asks the server for a layer that fits.
  function resize(identity, width, height) {
    const { element } = received.get(`${identity}/video`);
    element.style.width = `${width}px`;
    element.style.height = `${height}px`;
  }

  async function publishData(text, options) {
    await room.localParticipant.publishData(new TextEncoder().encode(text), options);
  }

  function performRpc(destinationIdentity, method, payload) {
    return room.localParticipant.performRpc({ destinationIdentity, method, payload, responseTimeout: 5000 });
  }

  async function leave() {
    await room?.disconnect();
  }

  return { join, publish, receivedKinds, inbound, resize, publishData, inbox, performRpc, leave };
})();
