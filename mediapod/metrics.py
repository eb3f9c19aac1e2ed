"""Every Prometheus metric the media pod exports, named in one place.

Per-packet events are counted in plain integer slots on ``MediaCounters``
(an attribute increment, no lock, no label lookup) and turned into Prometheus
counters only when scraped, by ``MediaCollector``. Labels never carry
unbounded values: node id (label `switchboard_node`), packet kind, drop reason.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

T = TypeVar("T")

# The node id label on every series. Not `node`: Kubernetes service discovery
# adds a `node` label (the Kubernetes node) to scraped pods, and Prometheus
# would rename ours to `exported_node` (or overwrite it, with honor_labels).
NODE_LABEL = "switchboard_node"

# Why a datagram or packet was dropped: the only values of the `reason` label.
DROP_REASONS: tuple[str, ...] = (
    "unknown_first_byte",  # not STUN, DTLS or RTP/RTCP per RFC 7983
    "stun_malformed",
    "stun_unknown_ufrag",
    "stun_unauthorized",
    "dtls_unknown_peer",   # DTLS from an address no ICE check validated
    "srtp_unknown_peer",
    "srtp_not_ready",      # SRTP before the DTLS handshake finished
    "srtp_auth_failed",
    "rtp_malformed",
    "rtcp_malformed",
    "rtp_unknown_ssrc",    # RTP on an SSRC nobody announced: dropped before decryption
    "rtcp_ssrc_limit",     # SRTCP from one sender SSRC too many for one PeerConnection
)

# Why a data-channel message (or the SCTP packet carrying it) was dropped: the
# only values of the `reason` label of switchboard_data_packets_dropped.
DATA_DROP_REASONS: tuple[str, ...] = (
    "no_association",        # DTLS application data on a PeerConnection that negotiated no data channels
    "sctp_malformed",        # an SCTP packet the association could not process
    "sctp_queue_full",       # SCTP packets arriving faster than the association takes them
    "sctp_window_exceeded",  # the peer overran our receive window: its association is aborted
    "dcep_malformed",        # a DCEP message that is not a well-formed OPEN or ACK (RFC 8832)
    "dcep_unexpected",       # an OPEN for an open stream, an ACK for none
    "unknown_channel",       # a channel label we do not serve, or a message on no open channel
    "unknown_payload_type",  # an SCTP payload protocol that is neither string nor binary
    "too_large",             # over the message size limit
    "malformed_packet",      # a message its front end cannot decode
    "not_permitted",         # the sender's token does not grant canPublishData
    "rate_limited",          # over the sender's message or byte rate
    "channel_not_open",      # a recipient whose data channel is not (yet) open
    "buffer_full",           # a recipient too slow to take what is queued for it
)

# Congestion feedback (RTCP) by kind and direction: the only values of the
# `kind` and `direction` labels of switchboard_congestion_feedback.
CONGESTION_FEEDBACK_KINDS: tuple[str, ...] = ("twcc", "remb")
FEEDBACK_DIRECTIONS: tuple[str, ...] = ("received", "sent")

# Simulcast layer switches: the only values of the `direction` and `reason`
# labels of switchboard_layer_switches (a subscriber's wish, or its bandwidth).
SWITCH_DIRECTIONS: tuple[str, ...] = ("up", "down")
SWITCH_REASONS: tuple[str, ...] = ("subscriber", "bandwidth")
# Upper bounds (bit/s) of the buckets of switchboard_bwe_estimate_bps.
BWE_ESTIMATE_BOUNDS: tuple[float, ...] = (
    100_000.0, 250_000.0, 500_000.0, 1_000_000.0, 2_000_000.0, 4_000_000.0, 8_000_000.0, 16_000_000.0, float("inf")
)

# Signaling front ends that count bad input, and why: the only values of the
# `frontend` and `reason` labels of switchboard_signal_errors.
SIGNAL_FRONTENDS: tuple[str, ...] = ("livekit",)
SIGNAL_ERROR_REASONS: tuple[str, ...] = (
    "unauthorized",         # a connect or /rtc/validate whose token did not verify or allow the room
    "malformed_message",    # a binary frame that is no SignalRequest
    "text_frame",           # signaling is binary protobuf; text frames are refused
    "frame_too_large",      # over the front end's frame size limit
    "unsupported_request",  # a well-formed request this server does not act on (dropped)
    "request_refused",      # a request the session refused with an error response
)

# What became of each webhook post: the only values of the `result` label of
# switchboard_webhooks (delivered, failed and to be tried again, given up).
WEBHOOK_RESULTS: tuple[str, ...] = ("sent", "retried", "dropped")


class MediaCounters:
    """Monotonic counters bumped on the hot path; read only at scrape time."""

    __slots__ = (
        "rtp_packets_in",
        "rtp_bytes_in",
        "rtp_packets_out",
        "rtp_bytes_out",
        "rtcp_packets_in",
        "rtcp_packets_out",
        "plis_sent",
        "plis_received",
        "firs_received",
        "nacks_received",
        "nacks_sent",
        "nack_misses",
        "retransmitted_packets",
        "retransmitted_bytes",
        "packets_lost",
        "layer_switches",
        "dtls_handshakes",
        "dtls_failures",
        "consent_expiries",
        "transport_connect_timeouts",
        "speaker_updates",
        "drops",
        "leaves",
        "twirp_calls",
        "signal_errors",
        "webhooks",
        "data_packets_received",
        "data_packets_forwarded",
        "data_bytes_forwarded",
        "data_drops",
        "congestion_feedback",
        "probe_bytes",
        "bwe_estimate_bounds",
        "bwe_estimate_buckets",
        "bwe_estimate_count",
        "bwe_estimate_sum",
    )

    def __init__(self) -> None:
        self.rtp_packets_in = 0
        self.rtp_bytes_in = 0
        self.rtp_packets_out = 0
        self.rtp_bytes_out = 0
        self.rtcp_packets_in = 0
        self.rtcp_packets_out = 0
        self.plis_sent = 0
        self.plis_received = 0
        self.firs_received = 0
        self.nacks_received = 0
        self.nacks_sent = 0
        self.nack_misses = 0
        self.retransmitted_packets = 0
        self.retransmitted_bytes = 0
        self.packets_lost = 0
        # Simulcast layer switches by (direction, reason).
        self.layer_switches: dict[tuple[str, str], int] = {
            (direction, reason): 0 for direction in SWITCH_DIRECTIONS for reason in SWITCH_REASONS
        }
        self.dtls_handshakes = 0
        self.dtls_failures = 0
        self.consent_expiries = 0
        self.transport_connect_timeouts = 0
        self.speaker_updates = 0
        self.drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        # Participants that left, by LeaveReason value (a closed set: the enum's).
        self.leaves: collections.Counter[str] = collections.Counter()
        # Twirp RoomService calls by (method, result): a RoomService method name
        # or "unknown", and "ok" or a Twirp error code (both closed sets).
        self.twirp_calls: collections.Counter[tuple[str, str]] = collections.Counter()
        # Bad signaling input, by (frontend, reason).
        self.signal_errors: dict[tuple[str, str], int] = {
            (frontend, reason): 0 for frontend in SIGNAL_FRONTENDS for reason in SIGNAL_ERROR_REASONS
        }
        # Webhook posts by result (WEBHOOK_RESULTS).
        self.webhooks: dict[str, int] = dict.fromkeys(WEBHOOK_RESULTS, 0)
        # Data-channel messages: received from senders, delivered to each recipient, dropped by reason.
        self.data_packets_received = 0
        self.data_packets_forwarded = 0
        self.data_bytes_forwarded = 0
        self.data_drops: dict[str, int] = dict.fromkeys(DATA_DROP_REASONS, 0)
        # TWCC feedback we send publishers and read from subscribers (REMB from subscribers), by (kind, direction).
        self.congestion_feedback: dict[tuple[str, str], int] = {
            (kind, direction): 0 for kind in CONGESTION_FEEDBACK_KINDS for direction in FEEDBACK_DIRECTIONS
        }
        # Padding bytes sent to probe subscribers' links.
        self.probe_bytes = 0
        # Every bandwidth estimate an allocator acted on: a histogram (non-cumulative bucket counts).
        self.bwe_estimate_bounds = BWE_ESTIMATE_BOUNDS
        self.bwe_estimate_buckets = [0] * len(BWE_ESTIMATE_BOUNDS)
        self.bwe_estimate_count = 0
        self.bwe_estimate_sum = 0.0


@dataclass(frozen=True, slots=True)
class RoomGauges:
    """Point-in-time sizes of what the node hosts."""

    rooms: int
    participants: int
    published_tracks: int
    subscribed_tracks: int
    # Largest interarrival jitter (RFC 3550 A.8) among received streams, seconds.
    max_jitter_seconds: float = 0.0
    # Subscriber PeerConnections by StreamAllocator state, and what their allocators decided.
    allocators_stable: int = 0
    allocators_deficient: int = 0
    paused_tracks: int = 0
    target_bitrate_bps: float = 0.0
    sent_bitrate_bps: float = 0.0


class MediaCollector(Collector):
    """Exposes MediaCounters and the node's room gauges as switchboard_* metrics."""

    def __init__(self, node_id: str, counters: MediaCounters, gauges: Callable[[], RoomGauges]) -> None:
        self._node = node_id
        self._counters = counters
        self._gauges = gauges

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c, node = self._counters, self._node

        def counter(name: str, doc: str, value: int) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=[NODE_LABEL])
            family.add_metric([node], value)
            return family

        yield counter("switchboard_rtp_packets_received", "RTP packets received from publishers", c.rtp_packets_in)
        yield counter("switchboard_rtp_bytes_received", "RTP bytes received from publishers", c.rtp_bytes_in)
        yield counter("switchboard_rtp_packets_forwarded", "RTP packets sent to subscribers", c.rtp_packets_out)
        yield counter("switchboard_rtp_bytes_forwarded", "RTP bytes sent to subscribers", c.rtp_bytes_out)
        yield counter("switchboard_rtcp_packets_received", "RTCP compound packets received", c.rtcp_packets_in)
        yield counter("switchboard_rtcp_packets_sent", "RTCP compound packets sent", c.rtcp_packets_out)
        yield counter("switchboard_plis_sent", "Picture loss indications sent to publishers", c.plis_sent)
        yield counter("switchboard_plis_received", "Picture loss indications from subscribers", c.plis_received)
        yield counter("switchboard_firs_received", "Full intra requests from subscribers", c.firs_received)
        yield counter("switchboard_nacks_received", "Generic NACK packets from subscribers", c.nacks_received)
        yield counter("switchboard_nacks_sent", "Generic NACK packets sent to publishers", c.nacks_sent)
        yield counter("switchboard_nack_misses", "NACKed packets no longer in the buffer", c.nack_misses)
        yield counter("switchboard_retransmitted_packets", "Packets retransmitted to subscribers", c.retransmitted_packets)
        yield counter("switchboard_retransmitted_bytes", "Bytes retransmitted to subscribers", c.retransmitted_bytes)
        switches = CounterMetricFamily(
            "switchboard_layer_switches",
            "Simulcast layer switches made by DownTracks, by direction and reason (subscriber wish or bandwidth)",
            labels=[NODE_LABEL, "direction", "reason"],
        )
        for (direction, reason), value in c.layer_switches.items():
            switches.add_metric([node, direction, reason], value)
        yield switches
        yield counter("switchboard_probe_bytes", "Padding bytes sent to probe subscribers' bandwidth", c.probe_bytes)
        estimates = HistogramMetricFamily(
            "switchboard_bwe_estimate_bps",
            "Per-subscriber bandwidth estimates, one observation each time an allocator decides",
            labels=[NODE_LABEL],
        )
        cumulative, buckets = 0, []
        for bound, count in zip(c.bwe_estimate_bounds, c.bwe_estimate_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        estimates.add_metric([node], buckets, c.bwe_estimate_sum)
        yield estimates
        yield counter("switchboard_packets_lost", "Publisher packets never recovered by NACK", c.packets_lost)
        yield counter("switchboard_dtls_handshakes", "Completed DTLS-SRTP handshakes", c.dtls_handshakes)
        yield counter("switchboard_dtls_failures", "Failed DTLS-SRTP handshakes", c.dtls_failures)
        yield counter(
            "switchboard_consent_expiries", "Connected PeerConnections whose peer stopped ICE consent checks", c.consent_expiries
        )
        yield counter(
            "switchboard_transport_connect_timeouts",
            "Negotiated PeerConnections that never connected within the connect timeout",
            c.transport_connect_timeouts,
        )
        yield counter("switchboard_speaker_updates", "Active speaker updates sent to participants", c.speaker_updates)
        yield counter("switchboard_data_packets_received", "Data-channel messages received from participants", c.data_packets_received)
        yield counter("switchboard_data_packets_forwarded", "Data-channel messages delivered to recipients", c.data_packets_forwarded)
        yield counter("switchboard_data_bytes_forwarded", "Data-channel bytes delivered to recipients", c.data_bytes_forwarded)
        data_drops = CounterMetricFamily(
            "switchboard_data_packets_dropped", "Data-channel messages and SCTP packets dropped, by reason", labels=[NODE_LABEL, "reason"]
        )
        for reason, value in c.data_drops.items():
            data_drops.add_metric([node, reason], value)
        yield data_drops
        drops = CounterMetricFamily(
            "switchboard_packets_dropped", "Datagrams and packets dropped, by reason", labels=[NODE_LABEL, "reason"]
        )
        for reason, value in c.drops.items():
            drops.add_metric([node, reason], value)
        yield drops
        signal_errors = CounterMetricFamily(
            "switchboard_signal_errors",
            "Bad input on a signaling front end: refused, dropped or ended the session, by front end and reason",
            labels=[NODE_LABEL, "frontend", "reason"],
        )
        for (frontend, reason), value in c.signal_errors.items():
            signal_errors.add_metric([node, frontend, reason], value)
        yield signal_errors
        leaves = CounterMetricFamily(
            "switchboard_participants_left", "Participants that left a room, by reason", labels=[NODE_LABEL, "reason"]
        )
        for reason, value in sorted(c.leaves.items()):
            leaves.add_metric([node, reason], value)
        yield leaves
        twirp = CounterMetricFamily(
            "switchboard_twirp_calls", "Twirp RoomService calls, by method and result code", labels=[NODE_LABEL, "method", "code"]
        )
        for (method, code), value in sorted(c.twirp_calls.items()):
            twirp.add_metric([node, method, code], value)
        yield twirp
        webhooks = CounterMetricFamily(
            "switchboard_webhooks", "Webhook posts: sent, failed and retried, dropped after the retry window", labels=[NODE_LABEL, "result"]
        )
        for result, value in c.webhooks.items():
            webhooks.add_metric([node, result], value)
        yield webhooks

        feedback = CounterMetricFamily(
            "switchboard_congestion_feedback",
            "RTCP congestion feedback packets: TWCC sent to publishers, TWCC and REMB received from subscribers",
            labels=[NODE_LABEL, "kind", "direction"],
        )
        for (kind, direction), value in c.congestion_feedback.items():
            feedback.add_metric([node, kind, direction], value)
        yield feedback

        g = self._gauges()
        for name, doc, value in (
            ("switchboard_rooms", "Rooms hosted on this node", g.rooms),
            ("switchboard_participants", "Participants connected to this node", g.participants),
            ("switchboard_published_tracks", "Tracks published on this node", g.published_tracks),
            ("switchboard_max_receive_jitter_seconds", "Largest jitter among streams received from publishers", g.max_jitter_seconds),
            ("switchboard_subscribed_tracks", "DownTracks forwarding on this node", g.subscribed_tracks),
            ("switchboard_paused_tracks", "Subscribed video tracks the StreamAllocator paused for lack of bandwidth", g.paused_tracks),
            ("switchboard_target_bitrate_bps", "Bitrate the StreamAllocators allocated to subscribers", g.target_bitrate_bps),
            ("switchboard_sent_bitrate_bps", "Bitrate sent to subscribers over the last second", g.sent_bitrate_bps),
        ):
            family = GaugeMetricFamily(name, doc, labels=[NODE_LABEL])
            family.add_metric([node], value)
            yield family
        allocators = GaugeMetricFamily(
            "switchboard_allocator_subscribers", "Subscriber PeerConnections by StreamAllocator state", labels=[NODE_LABEL, "state"]
        )
        allocators.add_metric([node, "STABLE"], g.allocators_stable)
        allocators.add_metric([node, "DEFICIENT"], g.allocators_deficient)
        yield allocators


def computed_on_loop(loop: asyncio.AbstractEventLoop, compute: Callable[[], T], timeout: float = 2.0) -> Callable[[], T]:
    """Wrap compute so that calling it from another thread runs it on the event loop.

    Scrapes are served from prometheus-client's HTTP thread, while rooms and
    participants change on the event loop; walking them from the HTTP thread
    could see a dict change size mid-iteration.
    """

    def run() -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def fill() -> None:
            try:
                future.set_result(compute())
            except Exception as exc:  # noqa: BLE001 - handed to the scraping thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(fill)
        return future.result(timeout)

    return run


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> int:
    """Start the /metrics HTTP endpoint in a background thread; returns the bound port."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
