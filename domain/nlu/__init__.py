"""Understanding what CSMs ask: intents, account mentions, time windows, owners, follow-ups."""

from domain.nlu.followup import apply_followup
from domain.nlu.parser import INTENTS, ParseResult, parse
from domain.nlu.suggest import help_examples
from domain.nlu.timewindow import TimeWindow

__all__ = ["INTENTS", "ParseResult", "TimeWindow", "apply_followup", "help_examples", "parse"]
