"""The Authorization header of a webhook post, as LiveKit signs it.

The receiver (livekit-api's WebhookReceiver, or LiveKit's Go ``webhook``
package) verifies an HS256 JWT issued by an API key it knows, then compares
the token's ``sha256`` claim with the body's digest: the token proves who
sent it, the claim binds it to exactly this body.
"""

from __future__ import annotations

import base64
import hashlib
import time
import warnings

import jwt
from jwt.warnings import InsecureKeyLengthWarning

# Long enough for a retried post to verify; short enough that a captured one soon stops.
TOKEN_TTL = 300


def body_digest(body: bytes) -> str:
    """The ``sha256`` claim: the body's SHA-256, standard base64."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def authorization(body: bytes, api_key: str, api_secret: str, now: float | None = None) -> str:
    """The header's value: a token for ``body`` signed with the API secret (no ``Bearer`` prefix, as LiveKit sends it)."""
    issued = int(time.time() if now is None else now)
    claims = {"iss": api_key, "nbf": issued, "exp": issued + TOKEN_TTL, "sha256": body_digest(body), "video": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # weak secrets are reported once, at start
        return jwt.encode(claims, api_secret, algorithm="HS256")
