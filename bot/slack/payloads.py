"""The shape of a Slack payload, checked before bolt routes it: a signed body that is not one is a 400.

bolt (and our listeners) read ids and nested parts of a payload without checking their types;
Slack always sends these fields with the types below, so anything else is refused here rather
than failing somewhere inside routing. Only the fields something reads are checked.
"""

from __future__ import annotations

from typing import Any

# Top-level fields that must be strings when present.
_TEXT = (
    "type",
    "command",
    "text",
    "user_id",
    "channel_id",
    "team_id",
    "enterprise_id",
    "trigger_id",
    "response_url",
    "api_app_id",
    "callback_id",
    "event_id",
    "token",
    "challenge",
    "thread_ts",
    "function_execution_id",
)
# Parts that may be a string id or an object with a string "id".
_ID_OR_OBJECT = ("team", "enterprise", "user", "channel")
# Parts that must be objects when present, and the fields in them that must be strings.
_OBJECTS: dict[str, tuple[str, ...]] = {
    "event": (
        "type",
        "subtype",
        "channel_type",
        "text",
        "ts",
        "thread_ts",
        "user_team",
        "bot_id",
        "tab",
        "function_execution_id",
    ),
    "view": (
        "id",
        "callback_id",
        "private_metadata",
        "team_id",
        "app_installed_team_id",
        "type",
    ),
    "container": ("type", "channel_id", "message_ts", "thread_ts"),
    "message": ("ts", "thread_ts", "user", "text"),
    "previous_message": ("ts", "thread_ts", "user"),
    "item": ("channel",),
    "assistant_thread": ("channel_id", "thread_ts"),
    "function_data": ("execution_id",),
    "state": (),
}
# Parts that must be lists of objects, and the fields in each that must be strings.
_LISTS: dict[str, tuple[str, ...]] = {
    "actions": ("action_id", "block_id", "value", "type"),
    "authorizations": ("team_id", "enterprise_id", "user_id"),
    "response_urls": ("response_url", "block_id", "action_id", "channel_id"),
}


def _texts(part: dict[str, Any], fields: tuple[str, ...], where: str) -> str | None:
    for name in fields:
        value = part.get(name)
        if value is not None and not isinstance(value, str):
            return f"{where}{name} is not a string"
    return None


def _id_or_object(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return None
    if not isinstance(value, dict):
        return f"{where} is neither an id nor an object"
    return _texts(value, ("id", "team_id", "enterprise_id", "name"), f"{where}.")


# What each kind of payload cannot do without (bolt's routing reads them unguarded).
_REQUIRED: dict[str, tuple[str, type]] = {
    "event_callback": ("event", dict),
    "block_actions": ("actions", list),
    "view_submission": ("view", dict),
    "view_closed": ("view", dict),
    "shortcut": ("callback_id", str),
    "message_action": ("callback_id", str),
    "block_suggestion": ("action_id", str),
}


def malformed_payload(body: Any) -> str | None:
    """Why ``body`` (as bolt parsed it) is not a Slack payload, or None when it may be one."""
    if not isinstance(body, dict):
        return "not an object"
    kind = body.get("type")
    if isinstance(kind, str) and kind in _REQUIRED:
        name, expected = _REQUIRED[kind]
        if not isinstance(body.get(name), expected) or not body[name]:
            return f"a {kind} without its {name}"
    # The keys bolt matches listeners on, read without a default.
    if kind == "block_actions" and not all(
        isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in body["actions"]
    ):
        return "an action without its action_id"
    if kind in ("view_submission", "view_closed") and not isinstance(
        body["view"].get("callback_id"), str
    ):
        return "a view without its callback_id"
    if kind == "event_callback" and not isinstance(body["event"].get("type"), str):
        return "an event without its type"
    problem = _texts(body, _TEXT, "")
    for name in _ID_OR_OBJECT:
        problem = problem or _id_or_object(body.get(name), name)
        if name in ("user", "channel", "team") and isinstance(body.get("event"), dict):
            problem = problem or _id_or_object(body["event"].get(name), f"event.{name}")
    for name, fields in _OBJECTS.items():
        part = body.get(name)
        if part is None:
            continue
        if not isinstance(part, dict):
            return f"{name} is not an object"
        problem = problem or _texts(part, fields, f"{name}.")
    for name, fields in _LISTS.items():
        items = body.get(name)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return f"{name} is not a list of objects"
        for item in items:
            problem = problem or _texts(item, fields, f"{name}[].")
    for name in ("is_ext_shared_channel", "is_enterprise_install"):
        value = body.get(name)
        if value is not None and not isinstance(value, bool | str):
            return f"{name} is not a flag"
    return problem
