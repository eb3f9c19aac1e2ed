"""``sbctl token create`` prints a token the media pod's verifier accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from mediapod.auth import TokenVerifier, VideoGrant
from mediapod.cli import DEV_API_KEY, DEV_API_SECRET, main

API_KEY = "APIcli"
API_SECRET = "cli-secret-long-enough-for-hs256-012345"
CREDENTIALS = ["--api-key", API_KEY, "--api-secret", API_SECRET]
SBCTL = Path(sys.executable).with_name("sbctl")


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own SWITCHBOARD_* variables must not change what tests see."""
    monkeypatch.delenv("SWITCHBOARD_API_KEY", raising=False)
    monkeypatch.delenv("SWITCHBOARD_API_SECRET", raising=False)


def _create(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", "create", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "stdout must hold only the token"
    return out.strip()


def test_token_create_prints_a_verifiable_join_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = _create(
        capsys, *CREDENTIALS, "--room", "standup", "--identity", "alice", "--name", "Alice", "--metadata", "m"
    )

    claims = TokenVerifier({API_KEY: API_SECRET}).verify(token)

    assert (claims.identity, claims.name, claims.metadata, claims.api_key) == ("alice", "Alice", "m", API_KEY)
    assert claims.video == VideoGrant(room_join=True, room="standup")
    assert claims.nbf is not None and claims.exp - claims.nbf == timedelta(hours=6)


def test_token_create_flags_set_grants(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--no-publish", "--no-subscribe", "--admin", "--create", "--list", "--hidden"]
    token = _create(capsys, *CREDENTIALS, "--room", "r", "--identity", "bot", *flags)

    grant = TokenVerifier({API_KEY: API_SECRET}).verify(token).video

    assert grant == VideoGrant(
        room_join=True,
        room="r",
        can_publish=False,
        can_subscribe=False,
        room_admin=True,
        room_create=True,
        room_list=True,
        hidden=True,
    )


@pytest.mark.parametrize(
    ("valid_for", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("3600", timedelta(hours=1)),
    ],
)
def test_valid_for_sets_token_lifetime(
    capsys: pytest.CaptureFixture[str], valid_for: str, expected: timedelta
) -> None:
    token = _create(capsys, *CREDENTIALS, "--room", "r", "--identity", "a", "--valid-for", valid_for)
    claims = TokenVerifier({API_KEY: API_SECRET}).verify(token)
    assert claims.nbf is not None and claims.exp - claims.nbf == expected


@pytest.mark.parametrize("valid_for", ["5x", "h", "-1h", "1.5h", "0", "0s", "6 h", ""])
def test_bad_valid_for_is_a_usage_error(capsys: pytest.CaptureFixture[str], valid_for: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "create", "--room", "r", "--identity", "a", f"--valid-for={valid_for}"])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--valid-for" in err and "invalid duration" in err


def test_credentials_default_to_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_API_KEY", API_KEY)
    monkeypatch.setenv("SWITCHBOARD_API_SECRET", API_SECRET)

    token = _create(capsys, "--room", "r", "--identity", "a")

    assert TokenVerifier({API_KEY: API_SECRET}).verify(token).api_key == API_KEY


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_credentials_default_to_dev_mode_pair(capsys: pytest.CaptureFixture[str]) -> None:
    token = _create(capsys, "--room", "r", "--identity", "a")
    assert TokenVerifier({DEV_API_KEY: DEV_API_SECRET}).verify(token).api_key == "devkey"


def test_empty_identity_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "create", *CREDENTIALS, "--room", "r", "--identity", ""])
    assert exit_info.value.code == 2
    assert "needs an identity" in capsys.readouterr().err


def test_missing_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_installed_console_script_prints_a_token() -> None:
    assert SBCTL.exists(), f"{SBCTL} is missing; run `pip install -e .`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}

    result = subprocess.run(
        [str(SBCTL), "token", "create", *CREDENTIALS, "--room", "r", "--identity", "alice"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert TokenVerifier({API_KEY: API_SECRET}).verify(result.stdout.strip()).identity == "alice"
