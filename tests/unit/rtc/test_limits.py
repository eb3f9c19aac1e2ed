"""The limit checks the room model applies to claims, SDP text and AddTracks."""

from __future__ import annotations

import pytest

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.limits import check_announcement, check_participant, check_sdp

LIMITS = LimitsConfig(max_identity_length=4, max_name_length=4, max_metadata_size=4, max_attributes_size=4,
                      max_published_tracks=3, max_pending_tracks=2, max_sdp_size=64, max_sdp_media=2)


def refusal(call: object, *args: object) -> RequestError:
    with pytest.raises(RequestError) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value


def test_claims_at_their_limits_are_accepted() -> None:
    check_participant(LIMITS, "abcd", "abcd", "abcd", {"ab": "cd"})


@pytest.mark.parametrize(
    ("claims", "setting"),
    [
        (("abcde", "", "", {}), "max_identity_length"),
        (("a", "abcde", "", {}), "max_name_length"),
        (("a", "", "abcde", {}), "max_metadata_size"),
        (("a", "", "", {"ab": "cde"}), "max_attributes_size"),
    ],
)
def test_a_claim_over_its_limit_is_refused_naming_the_setting(claims: tuple, setting: str) -> None:
    error = refusal(check_participant, LIMITS, *claims)
    assert error.code == ErrorCode.INVALID_ARGUMENT
    assert f"limits.{setting}" in error.message


def test_claim_sizes_are_utf8_bytes_not_characters() -> None:
    error = refusal(check_participant, LIMITS, "ééé", "", "", {})  # 3 characters, 6 bytes
    assert "6 bytes" in error.message


def test_sdp_over_the_size_limit_is_refused_whatever_it_contains() -> None:
    error = refusal(check_sdp, LIMITS, "x" * 65, "the SDP offer")
    assert error.code == ErrorCode.INVALID_ARGUMENT and "65 bytes" in error.message and "limits.max_sdp_size" in error.message


def test_sdp_m_lines_are_counted_at_line_starts_with_any_line_ending() -> None:
    check_sdp(LIMITS, "v=0\r\nm=audio\r\nm=video\r\na=x:m=y", "the SDP offer")
    for text in ("m=a\nm=b\nm=c", "v=0\r\nm=a\r\nm=b\r\nm=c"):
        error = refusal(check_sdp, LIMITS, text, "the SDP answer")
        assert "3 m-lines" in error.message and error.message.startswith("the SDP answer")


def test_announcements_are_capped_by_published_plus_pending_then_by_pending() -> None:
    check_announcement(LIMITS, published=1, pending=1)
    assert "limits.max_published_tracks" in refusal(check_announcement, LIMITS, 2, 1).message
    error = refusal(check_announcement, LIMITS, 0, 2)
    assert error.code == ErrorCode.RESOURCE_EXHAUSTED and "limits.max_pending_tracks" in error.message
