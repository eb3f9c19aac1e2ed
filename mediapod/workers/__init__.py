"""One worker process per core: a pod with ``workers > 1`` is a supervisor and N media processes.

The rule: the kernel hands a signaling connection (HTTP/WebSocket or gRPC,
whose ports every worker shares with SO_REUSEPORT) to any worker; a room
lives in exactly one worker, the one ``room_node_map`` names, and a session
that lands elsewhere is relayed to it over Redis exactly as between pods, as
mediasoup pins a router to one worker. Each worker is therefore a node of the
routing layer in its own right (id ``<node_id>-w<i>``, UDP port
``rtc.udp_port + i``), and its ``nodes`` entry names its pod so the
selector, the operator and ``sbctl`` can see a pod's workers together.

Modules: placement.py (each worker's config, the shared ports checked once),
supervisor.py (spawn, signals, restart), gone.py (telling the cluster a
worker died), metrics_proxy.py (the pod's one /metrics), backoff.py.
"""
