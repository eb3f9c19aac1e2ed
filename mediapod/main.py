"""`switchboard-media`: run one media pod (``--dev`` for a laptop, no cluster), or its worker processes.

Only configuration is imported here: a pod of several workers runs a
supervisor that serves no media (workers/), and what serving needs
(pod.py: grpc, aiohttp, OpenSSL, LiveKit's protocol) is imported by the
process that serves.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection

from mediapod.config import ConfigError, MediaConfig, load_config
from mediapod.ports import PortInUse

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"switchboard-media: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    try:
        if config.workers > 1:
            # Only a pod of several workers needs them; its supervisor serves no media.
            from mediapod.workers.supervisor import WorkerFailed, supervise

            try:
                asyncio.run(supervise(config, run_worker))
            except WorkerFailed as exc:
                print(f"switchboard-media: {exc}", file=sys.stderr)
                return 1
        else:
            from mediapod.pod import serve

            asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    except PortInUse as exc:
        print(f"switchboard-media: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def run_worker(config: MediaConfig, report: Connection) -> None:
    """A worker process of a pod (workers/supervisor.py spawns it): serve, and send the ports on report once up."""
    from mediapod.pod import serve
    from mediapod.workers.supervisor import die_with_parent

    die_with_parent()
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT.replace("%(name)s", f"[{config.node_id}] %(name)s"))
    try:
        asyncio.run(serve(config, on_ready=report.send))
    except KeyboardInterrupt:
        pass
    except PortInUse as exc:
        print(f"switchboard-media: worker {config.node_id}: {exc.strerror}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
