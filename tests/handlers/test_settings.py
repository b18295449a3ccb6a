"""A person's settings: validated field by field, audited, and said back in words."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.render import render_json, render_text
from handlers.context import Actor, ChatContext
from handlers.errors import ValidationFailed
from handlers.settings import update_settings, user_settings
from storage.models import CSM, AuditLog
from tests.conftest import DEMO_TODAY


def _ctx(session) -> ChatContext:  # type: ignore[no-untyped-def]
    dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    return ChatContext("console", Actor(dana.id, dana.name, dana.email), DEMO_TODAY)


def test_the_defaults_are_said_in_words_on_every_platform(demo_container) -> None:  # type: ignore[no-untyped-def]
    with demo_container.session() as s:
        reply = user_settings(s, ctx=_ctx(s))
    assert reply.context["csm"]["interrupts"] == ["red", "sev1", "renewal_detractor"]
    assert [c["key"] for c in reply.context["classes"] if c["on"]] == reply.context["csm"][
        "interrupts"
    ]
    assert "09:00–18:00" in reply.text and "at most one message an hour" in reply.text
    assert "Working hours 09:00–18:00" in render_text(reply)
    assert "Health turned red" in str(render_json("slack", reply.template, reply.context))
    # The Teams form: working hours and the interrupting kinds beside the digest's fields.
    teams = render_json("teams", reply.template, reply.context)
    inputs = {i["id"]: i for i in teams["body"] if "id" in i}
    assert (inputs["work_start"]["value"], inputs["work_end"]["value"]) == ("09:00", "18:00")
    assert len(inputs["interrupts"]["choices"]) == 9
    assert inputs["interrupts"]["value"] == "red,sev1,renewal_detractor"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"work_start": "25:00"}, "work_start"),
        ({"work_end": "soon"}, "work_end"),
        ({"work_start": "18:00"}, "work_end"),  # the same as the end: no hours at all
        ({"interrupts": ["red", "everything"]}, "interrupts"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_input_says_which_field_and_changes_nothing(demo_container, change, field) -> None:  # type: ignore[no-untyped-def]
    with demo_container.session() as s:
        ctx = _ctx(s)
        with pytest.raises(ValidationFailed) as raised:
            update_settings(s, ctx=ctx, digest_time="07:00", **change)
        assert list(raised.value.errors) == [field]
    with demo_container.session() as s:
        dana = s.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        assert (dana.digest_time, dana.work_start, dana.work_end, dana.interrupts) == (
            "08:30",
            "09:00",
            "18:00",
            None,
        )
        assert s.exec(select(AuditLog).where(AuditLog.action == "settings.update")).all() == []


def test_a_change_is_saved_audited_and_described(demo_container) -> None:  # type: ignore[no-untyped-def]
    with demo_container.session() as s:
        reply = update_settings(
            s, ctx=_ctx(s), work_start="7:30", work_end="16:00", interrupts=["amber", "red"]
        )
    assert reply.context["csm"]["interrupts"] == ["red", "amber"]
    assert "07:30–16:00" in reply.text and "health turned amber" in reply.text
    with demo_container.session() as s:
        (entry,) = s.exec(select(AuditLog).where(AuditLog.action == "settings.update")).all()
        assert entry.before["work_start"] == "09:00" and entry.after["work_start"] == "07:30"
        reply = update_settings(s, ctx=_ctx(s), interrupts=[])
    assert "Nothing interrupts you" in reply.text
