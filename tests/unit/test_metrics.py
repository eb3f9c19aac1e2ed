"""Metrics plumbing: values computed on the event loop for a scraping thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mediapod.metrics import computed_on_loop


async def test_scrape_thread_gets_values_computed_on_the_event_loop() -> None:
    loop = asyncio.get_running_loop()
    seen: list[threading.Thread] = []

    def compute() -> int:
        seen.append(threading.current_thread())
        return 42

    result = await asyncio.to_thread(computed_on_loop(loop, compute))
    assert result == 42
    assert seen == [threading.main_thread()]


async def test_errors_computing_on_the_loop_reach_the_scrape_thread() -> None:
    def broken() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.to_thread(computed_on_loop(asyncio.get_running_loop(), broken))


def test_every_series_names_its_node_switchboard_node_never_node() -> None:
    # Kubernetes service discovery adds `node`; ours must not collide with it.
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from mediapod.metrics import NODE_LABEL, MediaCollector, MediaCounters, RoomGauges

    registry = CollectorRegistry()
    registry.register(MediaCollector("pod-a", MediaCounters(), lambda: RoomGauges(1, 2, 3, 4)))
    samples = [s for family in text_string_to_metric_families(generate_latest(registry).decode()) for s in family.samples]
    assert NODE_LABEL == "switchboard_node" and samples
    for sample in samples:
        assert sample.labels.get("switchboard_node") == "pod-a" and "node" not in sample.labels, sample
