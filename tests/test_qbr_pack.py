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
