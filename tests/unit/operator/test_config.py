"""The operator's settings: flags over the media pods' own environment variables, checked at start."""

from __future__ import annotations

import pytest

from sfu_operator.config import ConfigError, load_config

ENV = {"SWITCHBOARD_REDIS__ADDRESS": "10.0.0.5:6379", "SWITCHBOARD_API_KEY": "key", "SWITCHBOARD_API_SECRET": "s" * 32}


def test_redis_and_keys_come_from_the_media_pods_variables() -> None:
    config = load_config([], env={**ENV, "POD_NAMESPACE": "sfu", "POD_NAME": "operator-0"})
    assert (config.redis_address, config.api_key, config.namespace, config.identity) == ("10.0.0.5:6379", "key", "sfu", "operator-0")
    assert config.policy.limits.stale_timeout == 10.0


def test_flags_win_over_the_environment() -> None:
    config = load_config(["--redis-address", "r:1", "--stale-timeout", "3", "--sort-by", "rooms", "--max-rooms", "4"], env=ENV)
    assert (config.redis_address, config.policy.limits.stale_timeout, config.policy.sort_by) == ("r:1", 3.0, "rooms")
    assert config.policy.limits.max_rooms == 4


def test_identity_defaults_to_host_and_pid() -> None:
    assert load_config([], env=ENV).identity


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "must be host:port"),
        ([], {"SWITCHBOARD_REDIS__ADDRESS": "r:1"}, "--api-key and --api-secret"),
        (["--sort-by", "vibes"], ENV, "--sort-by must be one of"),
        (["--stale-timeout", "0.1", "--sync-interval", "0.5"], ENV, "--stale-timeout must exceed"),
        (["--lease-duration", "1"], ENV, "at least 2 s"),
    ],
)
def test_settings_the_operator_cannot_run_with_are_refused_with_a_reason(args: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(args, env=env)
