"""What the assistant can do, with examples that fit the words the user used."""

from __future__ import annotations

from domain.nlu.suggest import help_examples
from handlers.context import ChatContext
from handlers.reply import Reply

COMMANDS = (
    ("health <account>", "Health card: score, band, trend, drivers, forecast, renewal, owner"),
    ("health <account> chart", "The card, then charts: health over time and its indicators"),
    ("health map", "Your book (or team) as health against ARR: fix, watch, protect, grow"),
    ("plan <account>", "Success plan with milestones you can move"),
    ("overdue [account]", "Milestones past their due date"),
    ("renewals [days]", "Renewals coming up (default: next 90 days)"),
    ("risks", "Accounts at risk, worst first"),
    ("my accounts", "Your portfolio with health"),
    ("changes <account>", "What changed for an account this week"),
    ("qbr <account> [operational]", "QBR prep, then a draft deck (executive or operational)"),
    ("escalate <account> sev1|sev2|sev3 <title>", "Open an escalation thread"),
    ("settings", "Your digest time, working hours and what interrupts you"),
)


def help_reply(text: str = "", *, unknown: bool = False) -> Reply:
    """Help; when ``unknown``, say we did not understand and lead with examples close to ``text``."""
    examples = help_examples(text, limit=4)
    lead = "I didn't catch that. " if unknown else ""
    fallback = lead + "Try: " + " · ".join(f"“{e}”" for e in examples)
    return Reply(
        template="help",
        context={
            "unknown": unknown,
            "text": text,
            "examples": examples,
            "commands": [{"usage": u, "description": d} for u, d in COMMANDS],
        },
        text=fallback,
    )


def unknown_reply(text: str = "") -> Reply:
    """Out of scope: say so plainly, offer two things it can do, show no account data."""
    examples = help_examples(text, limit=2)
    line = "I can't help with that. I answer questions about your accounts, for example: " + (
        " or ".join(f"“{e}”" for e in examples)
    )
    return Reply(
        template="unknown",
        context={"text": text, "examples": examples, "understood": line, "not_applied": []},
        text=line,
    )


def welcome_reply(ctx: ChatContext) -> Reply:
    """The first message after an install: who I am, what to try, and whether I know the reader yet."""
    first = ctx.actor.name.split()[0] if ctx.actor.name else None
    known = ctx.actor.csm_id is not None
    lead = f"Hi {first}! " if first else "Hi! "
    if known:
        text = (
            lead + "I'm CSM Assistant: ask me about an account's health, its success plan, "
            "renewals or risks, and open escalations. Try “health acme”."
        )
    else:
        text = (
            lead + "I'm CSM Assistant. I don't know you yet, so I can't show account data: "
            "ask an admin to add your email (csm-bot people add)."
        )
    return Reply(
        template="welcome",
        context={
            "name": first,
            "known": known,
            "examples": help_examples("", limit=3),
            "commands": [{"usage": u, "description": d} for u, d in COMMANDS],
        },
        text=text,
    )
