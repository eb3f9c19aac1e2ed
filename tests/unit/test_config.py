"""The media pod's config: defaults < YAML file < environment < flags, and bad values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mediapod import config
from mediapod.config import DEV_API_KEY, ConfigError, load_config


def test_dev_mode_embeds_a_dev_key_and_loopback_addresses() -> None:
    config = load_config(["--dev"], env={})
    assert config.keys == {DEV_API_KEY: "secret"}
    assert config.rtc.advertised_ip == "127.0.0.1"
    assert config.dev


def test_outside_dev_mode_api_keys_are_required() -> None:
    with pytest.raises(ConfigError, match="API keys"):
        load_config([], env={})


def test_yaml_then_environment_then_flags_each_override_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "media.yaml"
    path.write_text(
        "keys: {prodkey: a-long-enough-secret-for-hs256-000000}\n"
        "grpc_port: 1000\n"
        "metrics_port: 1001\n"
        "rtc: {udp_port: 1002, advertised_ip: 10.0.0.1}\n"
        "room: {empty_timeout: 30}\n"
    )
    env = {"SWITCHBOARD_METRICS_PORT": "2001", "SWITCHBOARD_RTC__UDP_PORT": "2002"}
    config = load_config(["--config", str(path), "--udp-port", "3002"], env=env)
    assert config.grpc_port == 1000  # YAML only
    assert config.metrics_port == 2001  # environment beats YAML
    assert config.rtc.udp_port == 3002  # flag beats environment
    assert config.rtc.advertised_ip == "10.0.0.1"
    assert config.room.empty_timeout == 30
    assert config.keys == {"prodkey": "a-long-enough-secret-for-hs256-000000"}


def test_config_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "media.yaml"
    path.write_text("node_id: from-file\n")
    assert load_config(["--dev"], env={"SWITCHBOARD_CONFIG": str(path)}).node_id == "from-file"


def test_keys_come_from_the_environment_as_pairs() -> None:
    config = load_config([], env={"SWITCHBOARD_KEYS": "k1: s1, k2: s2"})
    assert config.keys == {"k1": "s1", "k2": "s2"}


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("grpc_port: lots\n", "expected an integer"),
        ("no_such_setting: 1\n", "unknown setting"),
        ("rtc: 5\n", "must be a mapping"),
        ("- a list\n", "top level must be a mapping"),
        ("rtc: {udp_port: 70000}\n", "port number"),
        ("room: {auto_create: maybe}\n", "expected a boolean"),
        ("grpc_port: [unclosed\n", "cannot read config file"),
    ],
)
def test_bad_config_files_are_refused_with_a_reason(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(["--dev", "--config", str(path)], env={})


def test_missing_config_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(["--dev", "--config", str(tmp_path / "nope.yaml")], env={})


def test_limits_come_from_the_environment_and_must_be_positive() -> None:
    config = load_config(["--dev"], env={"SWITCHBOARD_LIMITS__MAX_METADATA_SIZE": "1000", "SWITCHBOARD_LIMITS__SIGNAL_WRITE_TIMEOUT": "2.5"})
    assert (config.limits.max_metadata_size, config.limits.signal_write_timeout) == (1000, 2.5)
    with pytest.raises(ConfigError, match="limits.max_sdp_media must be positive"):
        load_config(["--dev"], env={"SWITCHBOARD_LIMITS__MAX_SDP_MEDIA": "0"})


def test_webhook_urls_come_from_a_yaml_list_or_a_comma_separated_variable(tmp_path: Path) -> None:
    path = tmp_path / "media.yaml"
    path.write_text("webhook: {urls: [http://a/hooks, https://b/hooks], api_key: devkey}\n")
    assert load_config(["--dev", "--config", str(path)], env={}).webhook.urls == ["http://a/hooks", "https://b/hooks"]
    env = {"SWITCHBOARD_WEBHOOK__URLS": "http://a/hooks, http://c/hooks", "SWITCHBOARD_WEBHOOK__RETRY_WINDOW": "5"}
    config = load_config(["--dev"], env=env)
    assert config.webhook.urls == ["http://a/hooks", "http://c/hooks"] and config.webhook.retry_window == 5.0
    assert load_config(["--dev"], env={}).webhook.urls == []


def test_webhook_settings_that_could_never_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        load_config(["--dev"], env={"SWITCHBOARD_WEBHOOK__URLS": "ftp://a/hooks"})
    with pytest.raises(ConfigError, match="webhook.api_key 'nokey'"):
        load_config(["--dev"], env={"SWITCHBOARD_WEBHOOK__API_KEY": "nokey"})
    with pytest.raises(ConfigError, match="positive"):
        load_config(["--dev"], env={"SWITCHBOARD_WEBHOOK__QUEUE_SIZE": "0"})


KEYS = {"SWITCHBOARD_KEYS": "prodkey: a-long-enough-secret-for-hs256-000000"}


def test_workers_default_to_one_per_core_in_a_cluster_and_one_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mediapod.config.usable_cores", lambda: 4)
    assert load_config(["--redis-address", "127.0.0.1:6379"], env=KEYS).workers == 4
    assert load_config([], env=KEYS).workers == 1
    assert load_config(["--dev", "--redis-address", "127.0.0.1:6379"], env={}).workers == 1
    assert load_config(["--dev", "--redis-address", "127.0.0.1:6379", "--workers", "3"], env={}).workers == 3
    assert load_config([], env={**KEYS, "SWITCHBOARD_REDIS__ADDRESS": "r:1", "SWITCHBOARD_WORKERS": "2"}).workers == 2


def test_more_than_one_worker_without_redis_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="workers = 2 needs redis.address"):
        load_config(["--dev", "--workers", "2"], env={})
    with pytest.raises(ConfigError, match="workers must be 0"):
        load_config(["--dev", "--workers", "-1"], env={})


def test_workers_udp_ports_must_fit_below_65536() -> None:
    with pytest.raises(ConfigError, match="UDP ports up to 65536"):
        load_config(["--dev", "--redis-address", "r:1", "--workers", "2", "--udp-port", "65535"], env={})


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),          # cgroup v2: a 2-CPU limit
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),           # v2, no limit
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),    # v1, no limit
        ({"cpu.max": "garbage"}, None),
        ({}, None),                                     # no cgroup files at all
    ],
)
def test_cgroup_cpu_quota_reads_v2_and_v1_limits(tmp_path: Path, files: dict[str, str], quota: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert config.cgroup_cpu_quota(tmp_path) == quota


def test_usable_cores_is_at_most_the_cpu_limit_rounded_up(tmp_path: Path) -> None:
    """A pod limited to 1.5 CPUs runs 2 workers, whatever the host has; without a limit, its affinity counts."""
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert config.usable_cores(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert config.usable_cores(tmp_path) == len(os.sched_getaffinity(0))
