// mediasoup 3.8 as a bench target (bench/fanout/mediasoup.py drives it): one
// worker, one router, WebRTC transports on demand. Requests and replies are
// JSON lines on stdin / stdout: {"id", "method", "params"} -> {"id", "result"}
// or {"id", "error"}.
//
//   node mediasoup_server.js <directory holding node_modules/mediasoup>
//
// Consumers get no header extensions and no transport-cc/REMB: the bench's
// subscribers send no feedback, and our pod and Janus forward the same bare
// streams, so all three do the same work per packet.
'use strict';

const path = require('path');
const readline = require('readline');

const mediasoup = require(path.join(process.argv[2], 'node_modules', 'mediasoup'));

const mediaCodecs = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];
const feedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }];

let worker;
let router;
let listenIp;
const transports = new Map();

const methods = {
  async start({ ip }) {
    listenIp = ip;
    worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 20000, rtcMaxPort: 59999 });
    worker.on('died', () => process.exit(1));
    router = await worker.createRouter({ mediaCodecs });
    return { workerPid: worker.pid };
  },

  async transport() {
    const transport = await router.createWebRtcTransport({
      listenIps: [{ ip: listenIp }], enableUdp: true, enableTcp: false, preferUdp: true,
    });
    transports.set(transport.id, transport);
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
  },

  async connect({ transportId, fingerprint }) {
    // The bench's endpoint is the DTLS client; mediasoup the server.
    await transports.get(transportId).connect({
      dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: fingerprint }] },
    });
    return {};
  },

  async produce({ transportId, kind, ssrc, payloadType }) {
    const codec = mediaCodecs.find((c) => c.kind === kind);
    const producer = await transports.get(transportId).produce({
      kind,
      rtpParameters: {
        codecs: [{ ...codec, payloadType, rtcpFeedback: kind === 'video' ? feedback : [] }],
        headerExtensions: [],
        encodings: [{ ssrc }],
        rtcp: { cname: `bench-${ssrc}`, reducedSize: true, mux: true },
      },
    });
    return { id: producer.id };
  },

  async consume({ transportId, producerId }) {
    const rtpCapabilities = {
      codecs: router.rtpCapabilities.codecs
        .filter((c) => c.mimeType.toLowerCase() !== `${c.kind}/rtx`)
        .map((c) => ({ ...c, rtcpFeedback: c.kind === 'video' ? feedback : [] })),
      headerExtensions: [],
    };
    const consumer = await transports.get(transportId).consume({ producerId, rtpCapabilities });
    return { ssrc: consumer.rtpParameters.encodings[0].ssrc, payloadType: consumer.rtpParameters.codecs[0].payloadType };
  },
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, method, params } = JSON.parse(line);
  try {
    const result = await methods[method](params || {});
    process.stdout.write(`${JSON.stringify({ id, result })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ id, error: String(error) })}\n`);
  }
}).on('close', () => {
  if (worker) worker.close();
  process.exit(0);
});
