// The dev-mode demo page: join a room with a dev token, publish camera and
// microphone, and show one tile per participant's camera. Everything WebRTC is
// livekit-client's (the global LivekitClient, bundled from npm by `npm run build`).
'use strict';

const { Room, RoomEvent, Track } = LivekitClient;
const form = document.getElementById('join');
const leaveButton = document.getElementById('leave');
const statusLine = document.getElementById('status');
const tiles = document.getElementById('tiles');
let room = null;

form.identity.value ||= `guest-${Math.floor(Math.random() * 10000)}`;

const findTile = (identity) => tiles.querySelector(`[data-identity="${CSS.escape(identity)}"]`);

// One tile per participant: a <figure> holding their camera's <video>, named by identity.
function tileFor(identity, isLocal) {
  let tile = findTile(identity);
  if (!tile) {
    tile = document.createElement('figure');
    tile.className = 'tile';
    tile.dataset.identity = identity;
    tile.dataset.local = String(isLocal);
    const caption = document.createElement('figcaption');
    caption.textContent = isLocal ? `${identity} (you)` : identity;
    tile.append(caption);
    tiles.append(tile);
  }
  return tile;
}

// Cameras go into their owner's tile; other people's microphones play from a hidden
// <audio> there too. Our own microphone is never attached: we would hear ourselves.
function showTrack(track, identity, isLocal) {
  if (track.kind === Track.Kind.Video) {
    tileFor(identity, isLocal).prepend(track.attach());
  } else if (!isLocal) {
    const audio = track.attach();
    audio.hidden = true;
    tileFor(identity, isLocal).append(audio);
  }
}

async function join(event) {
  event.preventDefault();
  const roomName = form.room.value.trim();
  const identity = form.identity.value.trim();
  statusLine.textContent = 'Connecting…';
  form.querySelector('button').disabled = true;
  const query = new URLSearchParams({ room: roomName, identity });
  const response = await fetch(`/dev/token?${query}`);
  if (!response.ok) {
    statusLine.textContent = `No token: ${await response.text()}`;
    form.querySelector('button').disabled = false;
    return;
  }
  const { token } = await response.json();
  room = new Room({ adaptiveStream: true, dynacast: true });
  room
    .on(RoomEvent.TrackSubscribed, (track, publication, participant) => showTrack(track, participant.identity, false))
    .on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((element) => element.remove()))
    .on(RoomEvent.ParticipantDisconnected, (participant) => findTile(participant.identity)?.remove())
    .on(RoomEvent.LocalTrackPublished, (publication) => showTrack(publication.track, identity, true))
    .on(RoomEvent.Disconnected, (reason) => {
      statusLine.textContent = `Disconnected (${reason ?? 'left'}).`;
      tiles.replaceChildren();
      form.querySelector('button').disabled = false;
      leaveButton.hidden = true;
    });
  try {
    await room.connect(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`, token);
    statusLine.textContent = `In room "${room.name}" as ${identity}.`;
    leaveButton.hidden = false;
    await room.localParticipant.enableCameraAndMicrophone();
  } catch (error) {
    statusLine.textContent = `Could not join: ${error.message}`;
    form.querySelector('button').disabled = room.state !== 'disconnected';
  }
}

form.addEventListener('submit', join);
leaveButton.addEventListener('click', () => room?.disconnect());
