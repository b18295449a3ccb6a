"""Slack request signatures, checked on the raw bytes before anything parses them."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

# Slack's window: a request older (or newer) than this is a replay, whatever its signature.
MAX_AGE_SECONDS = 300
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def signed_by_slack(
    raw: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: Callable[[], float] = time.time,
) -> bool:
    """True when X-Slack-Signature is v0=HMAC-SHA256(secret, "v0:{timestamp}:{raw body}").

    A missing or non-numeric timestamp, one outside the 5-minute window, or a signature that is
    not 64 hex digits is refused before any hashing; the comparison takes constant time.
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
        return False
    if abs(now() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
    return hmac.compare_digest("v0=" + expected.hexdigest(), signature)
