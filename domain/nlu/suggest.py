"""Examples of what the assistant can do, ranked by the words the user just used."""

from __future__ import annotations

from domain.accounts_index import fold
from domain.nlu.lexicon import PHRASE_CUES, SLANG, WORD_CUES, repair

# (intent, example) in the order shown when the words give no hint.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("account_health", "how's Acme doing?"),
    ("renewals_upcoming", "what renews in the next 60 days?"),
    ("portfolio_at_risk", "anything I should worry about?"),
    ("success_plan", "show the success plan for Globex"),
    ("milestones_overdue", "overdue milestones for Initech"),
    ("qbr_prep", "prep me for the Globex QBR"),
    ("account_changes", "what changed at Acme this week?"),
    ("my_accounts", "my accounts"),
    ("escalate", "escalate Acme sev1 SSO is down"),
    ("renewals_upcoming", "who's up for renewal next quarter?"),
    ("portfolio_at_risk", "show me red accounts"),
    ("account_health", "/health acme"),
    ("success_plan", "/plan globex"),
    ("renewals_upcoming", "/renewals 90"),
    ("my_accounts", "Dana's accounts"),
    ("help", "/csm help"),
)


def help_examples(text: str, *, limit: int = 4) -> list[str]:
    """Up to ``limit`` examples, those matching the words in ``text`` first ("renew" -> renewals)."""
    if limit <= 0:
        return []
    words = [repair(SLANG.get(w, w)) for w in fold(text or "").split()]
    weight: dict[str, float] = {}
    for word in words:
        cues = dict(WORD_CUES.get(word, {}))
        if not cues and len(word) >= 4:
            # "renew" in "renewing", "escal" in "escalating": a shared stem is a hint too.
            for cue_word, cue in WORD_CUES.items():
                if len(cue_word) >= 4 and (cue_word.startswith(word) or word.startswith(cue_word)):
                    for intent, w in cue.items():
                        cues[intent] = max(cues.get(intent, 0.0), w / 2)
        for intent, w in cues.items():
            weight[intent] = weight.get(intent, 0.0) + w
    joined = f" {' '.join(words)} "
    for phrase, cues in PHRASE_CUES.items():
        if f" {phrase} " in joined:
            for intent, w in cues.items():
                weight[intent] = weight.get(intent, 0.0) + w
    weight.pop("help", None)  # examples of "help" help nobody
    order = sorted(
        range(len(EXAMPLES)),
        key=lambda i: (-weight.get(EXAMPLES[i][0], 0.0), i),
    )
    out: list[str] = []
    for i in order:
        intent, example = EXAMPLES[i]
        if intent == "help":
            continue
        out.append(example)
        if len(out) >= limit:
            break
    return out
