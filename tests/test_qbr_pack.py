"""`csm-bot qbr` writes a deck python-pptx reopens: the sections, charts as pictures, Acme's own figures."""

from __future__ import annotations

import re
from pathlib import Path

from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from bot.cli import app
from storage.models import Account, HealthSnapshot, Objective, Renewal, SuccessPlan

runner = CliRunner()
AS_OF = "2026-11-23"


def slides_of(path: Path) -> list[dict]:
    deck = Presentation(str(path))
    out = []
    for slide in deck.slides:
        texts = [
            p.text
            for shape in slide.shapes
            if shape.has_text_frame
            for p in shape.text_frame.paragraphs
        ]
        out.append(
            {
                "title": slide.shapes.title.text,
                "text": "\n".join(texts),
                "pictures": [
                    s.name for s in slide.shapes if s.shape_type == MSO_SHAPE_TYPE.PICTURE
                ],
                "notes": slide.notes_slide.notes_text_frame.text if slide.has_notes_slide else "",
            }
        )
    return out


def acme_facts(container) -> dict:  # type: ignore[no-untyped-def]
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        snapshot = session.exec(
            select(HealthSnapshot).where(
                HealthSnapshot.account_id == acme.id, HealthSnapshot.day == AS_OF
            )
        ).one()
        renewal = session.exec(
            select(Renewal).where(Renewal.account_id == acme.id, Renewal.status == "open")
        ).one()
        objectives = session.exec(
            select(Objective)
            .join(SuccessPlan, col(Objective.plan_id) == col(SuccessPlan.id))
            .where(SuccessPlan.account_id == acme.id)
        ).all()
    return {"snapshot": snapshot, "renewal": renewal, "objectives": objectives}


def test_executive_pack_has_every_section_charts_as_pictures_and_acmes_figures(
    demo_container, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "acme-qbr.pptx"
    result = runner.invoke(app, ["qbr", "acme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 charts" in result.output
    slides = slides_of(out)
    titles = [s["title"] for s in slides]
    assert titles == [
        "Acme Corp: Executive business review",
        "Why we are here: what's in it for each of us",
        "Suggested agenda",
        "Outcomes against the targets we agreed",
        "Health over time",
        "Leading and lagging indicators",
        "Milestones: done and next",
        "Risks and what we do about them",
        "Renewal: success criteria and timeline",
        "Expansion: where the team is outgrowing the plan",
        "What we deliberately leave out of this review",
    ]
    by_title = {s["title"]: s for s in slides}
    pictures = [p for s in slides for p in s["pictures"]]
    assert pictures == ["chart:milestone_plan", "chart:health_trend", "chart:indicators"]

    facts = acme_facts(demo_container)
    # The four-way value model: the organisation, its stakeholders, our company, the CSM.
    wiifm = by_title["Why we are here: what's in it for each of us"]["text"]
    for who in ("Acme Corp (the organisation)", "Decision Maker", "Our company", "(CSM)"):
        assert who in wiifm
    health = by_title["Health over time"]
    # One decimal, as every surface shows it; the change with a real minus sign.
    assert f"Health {facts['snapshot'].score}/100 (amber) on {AS_OF}" in health["text"]
    assert re.search(r"\n• [+−]\d+\.\d points in 30 days\n", health["text"]), health["text"]
    outcomes = by_title["Outcomes against the targets we agreed"]["text"]
    for objective in facts["objectives"]:
        assert f"{objective.kpi_current:g}" in outcomes and f"{objective.kpi_target:g}" in outcomes
    renewal = by_title["Renewal: success criteria and timeline"]["text"]
    assert facts["renewal"].renewal_date.isoformat() in renewal
    assert f"${facts['renewal'].arr:,.0f}" in renewal
    # Renewal and expansion are separate points; no price talk in the room.
    assert "Price and contract terms are not discussed here" in renewal
    risks = by_title["Risks and what we do about them"]["text"]
    assert "What we do:" in risks and "Open sev" in risks
    leave_out = by_title["What we deliberately leave out of this review"]["text"].lower()
    for topic in ("troubleshooting", "selling", "training", "negotiation"):
        assert topic in leave_out
    # Every slide with numbers names its source and date in the notes.
    for slide in slides[1:-1]:
        assert f"As of {AS_OF}" in slide["notes"], slide["title"]
    assert (
        f"renewal record #{facts['renewal'].id}"
        in by_title["Renewal: success criteria and timeline"]["notes"]
    )
    assert f"health snapshot of {AS_OF}" in health["notes"]


def test_operational_pack_is_about_adoption_and_each_plan(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ops.pptx"
    result = runner.invoke(app, ["qbr", "acme", "--out", str(out), "--variant", "operational"])
    assert result.exit_code == 0, result.output
    slides = slides_of(out)
    assert slides[0]["title"] == "Acme Corp: Operational review"
    assert slides[3]["title"] == "Adoption and the indicators behind health"
    objectives = acme_facts(demo_container)["objectives"]
    plan_slides = [s for s in slides if s["title"].startswith("Plan vs actual: ")]
    assert [s["title"] for s in plan_slides] == [f"Plan vs actual: {o.title}" for o in objectives]
    assert all(s["pictures"] == ["chart:milestone_plan"] for s in plan_slides)


def test_markdown_pack_is_the_same_outline_with_its_images(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "acme.md"
    result = runner.invoke(app, ["qbr", "acme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Acme Corp: Executive business review\n")
    assert "## 10. Expansion: where the team is outgrowing the plan" in text
    images = sorted((tmp_path / "acme_files").iterdir())
    assert [p.name for p in images] == [
        "04-milestone-plan.png",
        "05-health-trend.png",
        "06-indicators.png",
    ]
    for image in images:
        assert f"](acme_files/{image.name})" in text
        assert image.read_bytes().startswith(b"\x89PNG")


def test_bad_input_gets_one_line_and_writes_nothing(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "x.pptx"
    unknown = runner.invoke(app, ["qbr", "nosuchaccount", "--out", str(out)])
    assert unknown.exit_code == 1 and "couldn't find" in unknown.output
    variant = runner.invoke(app, ["qbr", "acme", "--out", str(out), "--variant", "sales"])
    assert variant.exit_code == 2 and "executive or operational" in variant.output
    fmt = runner.invoke(app, ["qbr", "acme", "--out", str(out), "--format", "pdf"])
    assert fmt.exit_code == 2 and "pptx or md" in fmt.output
    assert not out.exists()


def test_a_long_name_and_a_control_character_from_chat_still_make_a_deck(
    demo_container, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    long_name = "Acme " + "Consolidated Holdings " * 15  # 335 characters: PowerPoint's title is 255
    with demo_container.engine.begin() as conn:
        conn.execute(
            text("UPDATE account SET name = :n WHERE name = 'Acme Corp'"), {"n": long_name}
        )
        # Escalation titles are typed in chat, not imported: a pasted control character gets in.
        conn.execute(
            text(
                "UPDATE escalation SET title = :t WHERE "
                "account_id = (SELECT id FROM account WHERE name = :n)"
            ),
            {"n": long_name, "t": "Exports\x0bfailing\x01 since upgrade"},
        )
    out = tmp_path / "acme.pptx"
    result = runner.invoke(app, ["qbr", "acme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    slides = slides_of(out)
    assert slides[0]["title"] == f"{long_name}: Executive business review"
    risks = next(s for s in slides if s["title"] == "Risks and what we do about them")
    assert "Exports failing since upgrade" in risks["text"]
    deck = Presentation(str(out))
    assert deck.core_properties.title.startswith("Acme Consolidated")
    assert len(deck.core_properties.title) <= 255


def test_milestones_done_say_the_period_they_cover(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import date, timedelta

    from storage.models import Milestone

    today = date.fromisoformat(AS_OF)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    with Session(demo_container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        done = session.exec(
            select(Milestone).where(Milestone.account_id == acme.id, Milestone.status == "done")
        ).all()
    listed = [m for m in done if m.completed_on and m.completed_on >= today - timedelta(days=90)]
    # The deck lists one done before this calendar quarter began: "this quarter" would be false.
    assert any(m.completed_on < quarter_start for m in listed)
    out = tmp_path / "acme.pptx"
    assert runner.invoke(app, ["qbr", "acme", "--out", str(out)]).exit_code == 0
    milestones = next(s for s in slides_of(out) if s["title"] == "Milestones: done and next")
    assert "Done in the last 90 days:" in milestones["text"]
    assert "this quarter" not in milestones["text"]
    agenda = next(s for s in slides_of(out) if s["title"] == "Suggested agenda")
    assert "Value delivered in the last 90 days" in agenda["text"]


def test_one_of_a_unit_is_singular(demo_container) -> None:  # type: ignore[no-untyped-def]
    from handlers.context import Actor, ChatContext
    from handlers.qbr import qbr_prep
    from handlers.qbr_pack import _indicators_slide, _kpi_line

    with Session(demo_container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        ctx = ChatContext(
            platform="console",
            actor=Actor(csm_id=acme.owner_id, name="Dana", role="csm"),
            today=__import__("datetime").date.fromisoformat(AS_OF),
        )
        prep = qbr_prep(
            session, ctx=ctx, models=demo_container.health_models, account_id=acme.id
        ).context
    for indicator in prep["leading"] + prep["lagging"]:
        if indicator["unit"] in ("tickets", "days"):
            indicator["value"] = 1.0
    from types import SimpleNamespace

    slide = _indicators_slide(prep, SimpleNamespace(source="snapshot"), "executive", AS_OF)
    lines = [b.text for b in slide.bullets]
    assert "Open support tickets: 1 ticket (amber)" in lines
    assert "Days since executive touchpoint: 1 day (amber)" in lines
    assert not [line for line in lines if " 1 tickets" in line or " 1 days" in line]
    kpi = {**prep["kpis"][0], "baseline": 0.0, "current": 1.0, "target": 3.0, "unit": " reviews"}
    assert "0 reviews → 1 review (target 3 reviews)" in _kpi_line(kpi)


def test_the_agenda_has_every_discussion_point_the_deck_has(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Globex renews more than six months out; the deck still has its renewal slide.
    out = tmp_path / "globex.pptx"
    assert runner.invoke(app, ["qbr", "globex", "--out", str(out)]).exit_code == 0
    slides = slides_of(out)
    agenda = next(s for s in slides if s["title"] == "Suggested agenda")["text"]
    assert any(s["title"].startswith("Renewal:") for s in slides)
    assert "Renewal timeline and success criteria" in agenda
    assert "Growth: where the team is outgrowing the plan" in agenda


def test_an_output_path_that_cannot_be_written_is_one_line(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = runner.invoke(app, ["qbr", "acme", "--out", str(tmp_path)])
    assert folder.exit_code == 2 and "directory" in folder.output and "--out" in folder.output
    assert "Traceback" not in folder.output
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    inside = runner.invoke(app, ["qbr", "acme", "--out", str(blocked / "acme.pptx")])
    assert inside.exit_code == 1, inside.output
    assert inside.output.strip().startswith("Cannot write") and "Traceback" not in inside.output
    assert len(inside.output.strip().splitlines()) == 1


def test_a_renewal_date_that_has_passed_is_said_as_such(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    # The CRM never closed last month's renewal: the record is open with a date in the past.
    with demo_container.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE renewal SET renewal_date = '2026-10-25' WHERE status = 'open' AND "
                "account_id = (SELECT id FROM account WHERE name = 'Acme Corp')"
            )
        )
    out = tmp_path / "acme.pptx"
    assert runner.invoke(app, ["qbr", "acme", "--out", str(out)]).exit_code == 0
    slides = slides_of(out)
    everything = "\n".join(s["text"] for s in slides)
    assert "(-29 days)" not in everything and "-29" not in everything
    renewal = next(s for s in slides if s["title"].startswith("Renewal:"))
    assert "Renewal date 2026-10-25 passed 29 days ago" in renewal["text"]
    risks = next(s for s in slides if s["title"] == "Risks and what we do about them")
    assert (
        "Renewal date passed 29 days ago and the renewal is still open on record" in risks["text"]
    )
    wiifm = slides[1]["text"]
    assert "a renewal on 2026-10-25" not in wiifm


def test_a_new_account_with_nothing_yet_gets_true_sentences(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from storage.csv_import import import_records

    # Imported this morning: no owner, no success plan, no stakeholders, no readings.
    import_records(
        demo_container.engine,
        "accounts",
        ["external_id", "name", "arr", "renewal_date"],
        [["NEW-1", "Zephyr Freight", "40000", "2027-03-01"]],
    )
    out = tmp_path / "zephyr.pptx"
    result = runner.invoke(app, ["qbr", "zephyr", "--out", str(out), "--variant", "operational"])
    assert result.exit_code == 0, result.output
    slides = slides_of(out)
    everything = "\n".join(s["text"] for s in slides)
    assert "the CSM (CSM)" not in everything
    assert "(insufficient)" not in everything
    assert not re.search(r"\bNone\b(?! yet)|\bnan\b", everything)
    wiifm = slides[1]["text"]
    assert "the outcomes in the success plan" not in wiifm
    assert "no success plan yet" in wiifm
    agenda = next(s for s in slides if s["title"] == "Suggested agenda")["text"]
    assert "as a chart" not in agenda
    assert "Agree the goals and the KPIs that show them" in agenda


def test_markdown_images_resolve_when_the_file_name_has_spaces(
    demo_container, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "Acme QBR (draft).md"
    assert runner.invoke(app, ["qbr", "acme", "--out", str(out)]).exit_code == 0
    text = out.read_text()
    # A Markdown link target ends at the first space or unbalanced parenthesis.
    targets = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert len(targets) == 3, text
    for target in targets:
        from urllib.parse import unquote

        assert (tmp_path / unquote(target)).read_bytes().startswith(b"\x89PNG")


def test_numbers_on_slides_have_at_most_one_decimal(demo_container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # NPS computed from survey responses is a fraction (33.3333...): a slide shows 33.3.
    for variant in ("executive", "operational"):
        out = tmp_path / f"acme-{variant}.pptx"
        result = runner.invoke(app, ["qbr", "acme", "--out", str(out), "--variant", variant])
        assert result.exit_code == 0, result.output
        text = "\n".join(s["text"] for s in slides_of(out))
        assert re.findall(r"\d+\.\d{2,}", text) == [], variant
