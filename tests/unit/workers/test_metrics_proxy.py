"""Merging the workers' expositions: one HELP and TYPE per family, every sample labelled with its worker."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mediapod.workers.metrics_proxy import label_sample, merge_expositions


def _exposition(node: str, rooms: int, cpu: float) -> str:
    return (
        "# HELP switchboard_rooms Rooms hosted.\n"
        "# TYPE switchboard_rooms gauge\n"
        f'switchboard_rooms{{switchboard_node="{node}"}} {rooms}.0\n'
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu}\n"
    )


def test_families_appear_once_with_every_workers_samples_and_the_result_parses() -> None:
    merged = merge_expositions([("pod-w0", _exposition("pod-w0", 1, 0.5)), ("pod-w1", _exposition("pod-w1", 2, 0.7))])
    assert merged.count("# TYPE switchboard_rooms gauge") == 1
    assert merged.count("# HELP process_cpu_seconds_total") == 1
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    rooms = {s.labels["switchboard_node"]: s.value for s in families["switchboard_rooms"].samples}
    assert rooms == {"pod-w0": 1.0, "pod-w1": 2.0}
    # The process collector's samples had no worker label: they get one, so the two do not collide.
    cpu = {s.labels["switchboard_node"]: s.value for s in families["process_cpu_seconds"].samples}
    assert cpu == {"pod-w0": 0.5, "pod-w1": 0.7}


def test_a_sample_keeps_its_own_worker_label_and_gains_one_beside_other_labels() -> None:
    assert label_sample('x{switchboard_node="a",kind="v"} 1', "b") == 'x{switchboard_node="a",kind="v"} 1'
    assert label_sample('x{kind="v",switchboard_node="a"} 1', "b") == 'x{kind="v",switchboard_node="a"} 1'
    assert label_sample('x{kind="a b"} 1', "w") == 'x{switchboard_node="w",kind="a b"} 1'
    assert label_sample("x{} 1", "w") == 'x{switchboard_node="w"} 1'
    assert label_sample("x 1 123", "w") == 'x{switchboard_node="w"} 1 123'


def test_no_worker_answering_gives_an_empty_exposition() -> None:
    assert merge_expositions([]) == ""
