"""The redis and routing sections of the media pod's config."""

from __future__ import annotations

import pytest

from mediapod.config import ConfigError, load_config


def test_without_a_redis_address_the_pod_runs_alone() -> None:
    config = load_config(["--dev"], env={})
    assert config.redis.address == ""


def test_redis_and_routing_settings_come_from_env_and_flags() -> None:
    env = {
        "SWITCHBOARD_REDIS__ADDRESS": "10.0.0.5:6379",
        "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "1",
        "SWITCHBOARD_ROUTING__STALE_TIMEOUT": "3.5",
        "SWITCHBOARD_ROUTING__SORT_BY": "rooms",
        "SWITCHBOARD_ROUTING__MAX_ROOMS": "7",
    }
    config = load_config(["--dev"], env=env)
    assert (config.redis.address, config.routing.heartbeat_interval, config.routing.stale_timeout) == ("10.0.0.5:6379", 1.0, 3.5)
    assert (config.routing.sort_by, config.routing.max_rooms) == ("rooms", 7)
    assert load_config(["--dev", "--redis-address", "127.0.0.1:7000"], env=env).redis.address == "127.0.0.1:7000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SWITCHBOARD_ROUTING__SORT_BY": "vibes"}, "sort_by"),
        ({"SWITCHBOARD_ROUTING__STALE_TIMEOUT": "1", "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "2"}, "stale_timeout"),
        ({"SWITCHBOARD_REDIS__ADDRESS": "no-port"}, "host:port"),
        ({"SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "soon"}, "expected a number"),
    ],
)
def test_unusable_routing_settings_are_refused_with_a_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(["--dev"], env=env)
    assert message in str(error.value)
