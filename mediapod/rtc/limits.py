"""The checks of LimitsConfig that the room model applies to what a participant sends.

Pure functions over raw values, so any signaling front end gets the same
refusals and they are tested without a pod. Every refusal names the limit and
its setting, so the person who hits it knows what to shorten or reconfigure.
"""

from __future__ import annotations

from collections.abc import Mapping

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError


def check_participant(
    limits: LimitsConfig, identity: str, name: str, metadata: str, attributes: Mapping[str, str]
) -> None:
    """Refuse a joining participant whose token claims are larger than the limits allow.

    Sizes are UTF-8 bytes, as LiveKit counts them: the bytes are what every
    other participant receives in each update.

    Raises:
        RequestError: INVALID_ARGUMENT naming the claim and the limit.
    """
    for claim, value, limit, setting in (
        ("identity", identity, limits.max_identity_length, "max_identity_length"),
        ("name", name, limits.max_name_length, "max_name_length"),
        ("metadata", metadata, limits.max_metadata_size, "max_metadata_size"),
    ):
        size = len(value.encode())
        if size > limit:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"participant {claim} is {size} bytes, over the limit of {limit} (limits.{setting})",
            )
    size = sum(len(key.encode()) + len(value.encode()) for key, value in attributes.items())
    if size > limits.max_attributes_size:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"participant attributes are {size} bytes (keys plus values), "
            f"over the limit of {limits.max_attributes_size} (limits.max_attributes_size)",
        )


def check_sdp(limits: LimitsConfig, text: str, what: str) -> None:
    """Refuse a session description too large to parse, judged on its raw text alone.

    Counting ``m=`` at line starts costs one pass of ``str.count``, so an
    oversized description is refused without the parse whose cost is the
    reason for the limit.

    Raises:
        RequestError: INVALID_ARGUMENT naming the size or m-line count and the limit.
    """
    size = len(text.encode())
    if size > limits.max_sdp_size:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT, f"{what} is {size} bytes, over the limit of {limits.max_sdp_size} (limits.max_sdp_size)"
        )
    media = text.count("\nm=") + text.startswith("m=")
    if media > limits.max_sdp_media:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"{what} has {media} m-lines, over the limit of {limits.max_sdp_media} (limits.max_sdp_media)",
        )


def check_announcement(limits: LimitsConfig, published: int, pending: int) -> None:
    """Refuse one more AddTrack when the participant publishes or awaits as many tracks as allowed.

    Raises:
        RequestError: RESOURCE_EXHAUSTED saying which cap was reached and how to make room.
    """
    if published + pending >= limits.max_published_tracks:
        raise RequestError(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"this participant already publishes or has announced {published + pending} tracks, the limit "
            f"(limits.max_published_tracks = {limits.max_published_tracks}); unpublish one first",
        )
    if pending >= limits.max_pending_tracks:
        raise RequestError(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"{pending} announced tracks are waiting for an offer, the limit "
            f"(limits.max_pending_tracks = {limits.max_pending_tracks}); send the offer that carries them first",
        )
