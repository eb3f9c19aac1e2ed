"""LiveKit's signaling protocol at the pod's edge, so LiveKit's client SDKs join unmodified.

A WebSocket at /rtc becomes a SignalTransport for the SignalGateway: the
join comes from the URL, LiveKit's SignalRequests are translated into ours
and our SignalResponses into LiveKit's. Rooms, participants and tracks never
see a LiveKit message; limits, hardening and the Redis relay apply as they
do to gRPC clients. Messages come from the ``livekit-protocol`` package.
"""
