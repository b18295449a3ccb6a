"""Train the intent model from the paraphrases and write domain/nlu/intent_model.bin.

    .venv/bin/python -m tests.nlu.train_intents        # train, save, report tuning accuracy

The tuning set (tests/nlu/tuning.tsv) is never trained on; it is what the report measures.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import date
from pathlib import Path

from domain.nlu.intent_model import MODEL_FILE, IntentModel, fingerprint, train
from domain.nlu.parser import INTENTS, intent_features
from tests.nlu.conftest import PEOPLE, build_index
from tests.nlu.paraphrases import paraphrases

HERE = Path(__file__).resolve().parent
HANDWRITTEN = HERE / "training" / "handwritten.tsv"
MODEL_PATH = HERE.parents[1] / "domain" / "nlu" / MODEL_FILE
TODAY = date(2026, 11, 23)


def handwritten() -> list[tuple[str, str]]:
    """Extra (utterance, intent) pairs written by hand, one per line."""
    if not HANDWRITTEN.exists():
        return []
    rows: list[tuple[str, str]] = []
    with HANDWRITTEN.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 2 and row[0] and not row[0].startswith("#") and row[0] != "utterance":
                rows.append((row[0], row[1].strip()))
    return rows


EVALUATION_SETS = (HERE / "tuning.tsv", HERE / "dev.tsv", HERE / "tune3.tsv")


def _evaluation_utterances() -> set[str]:
    from domain.nlu.evaluate import read_eval_file

    return {
        q.utterance.strip().lower()
        for path in EVALUATION_SETS
        if path.exists()
        for q in read_eval_file(path).questions
    }


def training_utterances() -> list[tuple[str, str]]:
    """(utterance, intent) of every training example: the paraphrases and the hand-written ones.

    Anything that is word for word in an evaluation set is left out, so those sets measure what
    the model was not shown.
    """
    held_out = _evaluation_utterances()
    return [
        (text, intent)
        for text, intent in [*paraphrases(), *handwritten()]
        if text.strip().lower() not in held_out
    ]


def training_examples() -> list[tuple[list[str], str]]:
    """Features and label of every training utterance, read by the parser as at run time."""
    index = build_index(60)
    out: list[tuple[list[str], str]] = []
    for text, intent in training_utterances():
        if intent not in INTENTS:
            raise ValueError(f"unknown intent {intent!r} for {text!r}")
        feats = intent_features(text, index=index, today=TODAY, people=PEOPLE)
        if feats:
            out.append((feats, intent))
    return out


def build_model() -> IntentModel:
    return train(training_examples(), INTENTS, source=fingerprint(training_utterances()))


def main() -> int:
    started = time.perf_counter()
    examples = training_examples()
    model = train(examples, INTENTS, source=fingerprint(training_utterances()))
    model.save(MODEL_PATH)
    print(
        f"trained on {len(examples)} utterances, {len(model.index)} features, "
        f"{time.perf_counter() - started:.1f}s -> {MODEL_PATH} ({MODEL_PATH.stat().st_size:,} bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
