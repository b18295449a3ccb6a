"""Fast account-name resolution (exact, alias, prefix, typo) among many thousands of accounts."""

from __future__ import annotations

import functools
import heapq
import re
import threading
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol, TypeVar

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA


def _words(text: str) -> frozenset[str]:
    """A word list written as one string, for readability."""
    return frozenset(text.split())


Status = Literal["exact", "alias", "fuzzy", "ambiguous", "none"]

# Legal-form and filler words: they never identify an account on their own ("corp" matches half the
# portfolio), so they neither start a mention nor count against a query that omits them.
GENERIC_WORDS: frozenset[str] = _words(
    """corp corporation inc incorporated co company companies ltd limited llc llp plc gmbh ag sa
    bv nv oy ab group holdings holding international intl the and of"""
)

# Words of everyday chat that are never an account mention by themselves. The parser passes its own,
# larger vocabulary; this default keeps find_in_text() sensible when used on its own.
COMMON_WORDS: frozenset[str] = _words(
    """a an the and or but if so to of in on at by for from with about into over under up down out
    off as is are was were be been being am do does did doing done have has had having i me my mine
    we us our you your he she it its they them their this that these those there here what whats
    which who whos whom when where why how hows can could would should will shall may might must
    not no yes yeah ok okay pls please thanks thank hi hello hey any anything all some each every
    show tell give get list find check see let need want look looking like just now then also
    more most much many very really still new old next last this week month quarter year day days
    weeks months today tomorrow soon account accounts customer customers client clients health
    plan plans renewal renewals renew overdue risk risks qbr help escalate changes changed"""
)


_POSSESSIVE_RE = re.compile(r"(\w)['’`]s\b")
_TOKEN_RE = re.compile(r"[0-9a-z]+")
# Scripts written without spaces between words (Chinese, Japanese kana and kanji): each character
# is a word, so "トヨタ自動車" is found inside "トヨタ自動車の状況は?" as a run of words.
_UNSPACED = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Any other letters and digits (Latin with accents removed, Cyrillic, Greek, Arabic, Hebrew,
# Hangul...) form words as in English.
_UNICODE_TOKEN_RE = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")
# Words of an utterance as written (an apostrophe may join them: "acme's"); unspaced characters
# one by one, so a name's span ends where the name does.
_WORD_RE = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+(?:['’`][^\\W_{_UNSPACED}]+)*")
_NEXT_WORD_RE = re.compile(r" ([^\W_]+)")
_ARTICLE_RE = re.compile(r"(?:^|\s)an?\s$", re.IGNORECASE)
_MIN_PREFIX = 3  # "glo" -> Globex in resolve(); shorter prefixes match too much to mean anything
_MIN_PREFIX_IN_TEXT = 4  # inside free text, short words are far more often English than names
_MIN_TYPO = 4  # a one-edit typo of a 3-letter word is just another word
_FUZZY_ACCEPT = 80.0  # per-token similarity (rapidfuzz ratio) a typo must reach
_TIE_MARGIN = 2.0  # candidates this close to the best are a genuine tie -> ask
# Two typos in the word before a name's ending word ("oenic airlines"): the ending, typed right,
# already narrows the choice to a few names, so a looser similarity is safe there.
_ANCHORED_ACCEPT = 70.0
_UNPREFERRED = 1 << 30  # rank of an id nobody prefers
# A name query is cut to this before matching: fuzzy scoring costs grow with word length (a
# 40,000-character word took seconds), and no real account name comes near either bound.
MAX_NAME_QUERY = 200
MAX_NAME_WORD = 40


def bounded_name(query: str) -> str:
    """A name query cut to MAX_NAME_QUERY characters and MAX_NAME_WORD per word."""
    if len(query) <= MAX_NAME_WORD:
        return query
    return " ".join(word[:MAX_NAME_WORD] for word in query[:MAX_NAME_QUERY].split())


@dataclass(frozen=True)
class AccountName:
    """One account as the index knows it: id, display name and alternative names."""

    id: int
    name: str
    aliases: tuple[str, ...] = ()
    owner_id: int | None = None


@dataclass(frozen=True)
class Candidate:
    """A possible account for a query, with a 0..100 score."""

    id: int
    name: str
    score: float


@dataclass(frozen=True)
class Resolution:
    """What a query resolved to; ``candidates`` are the choices (ambiguous) or suggestions (none)."""

    status: Status
    query: str
    account_id: int | None
    name: str | None
    candidates: tuple[Candidate, ...]

    @property
    def resolved(self) -> bool:
        return self.account_id is not None


@dataclass(frozen=True)
class Mention:
    """An account named in an utterance: what it resolved to, and where it was written.

    ``weak`` marks a mention that starts with a word only found inside names ("coffee" in
    "Fourth Coffee Outfitters"): it names the account only if the question is about one.
    """

    resolution: Resolution
    text: str
    start: int
    end: int
    weak: bool = False


class Prefer(Protocol):
    """A ranking of preferred account ids (recently discussed, the asker's own): lower first."""

    def get(self, key: int, default: int, /) -> int: ...


_NO_PREFERENCE: dict[int, int] = {}


class Preference:
    """Recently discussed accounts first (most recent first), then the asker's own accounts."""

    def __init__(self, recent: list[int], owned: frozenset[int] | set[int]) -> None:
        self._recent = {account_id: rank for rank, account_id in enumerate(recent)}
        self._owned = owned
        self._owned_rank = len(recent) + 1

    def get(self, key: int, default: int, /) -> int:
        rank = self._recent.get(key)
        if rank is not None:
            return rank
        return self._owned_rank if key in self._owned else default


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Run a public method of the index under its lock (see AccountIndex.apply)."""

    @functools.wraps(method)
    def wrapper(self: AccountIndex, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def fold(text: str) -> str:
    """Lower-case, strip accents and possessive 's, keep letters/digits: "Acme's Corp." -> "acme corp".

    Names in any script fold the same way on both sides of a lookup: "Café Müller" ->
    "cafe muller", "ＡＣＭＥ" -> "acme", "شركة الاتصالات" keeps its Arabic words (diacritics and
    tatweel dropped), and unspaced scripts become one word per character ("トヨタ" -> "ト ヨ タ").
    """
    if text.isascii():
        text = text.lower()
        if "'" in text or "`" in text:  # the only way _POSSESSIVE_RE can match
            text = _POSSESSIVE_RE.sub(r"\1", text)
        return " ".join(_TOKEN_RE.findall(text))
    # NFKC first folds full-width and half-width forms; NFKD then splits accents off letters.
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and ch != "\u0640")
    text = text.casefold()  # ß -> ss, like lower() but for every script
    if "'" in text or "’" in text or "`" in text:
        text = _POSSESSIVE_RE.sub(r"\1", text)
    return " ".join(_UNICODE_TOKEN_RE.findall(text))


# Words title case leaves in lower case ("Renewals for the Next Quarter").
_TITLE_SMALL = frozenset(
    ["a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "at", "by", "with", "vs", "per"]
)
_LETTER_WORD_RE = re.compile(r"[^\W\d_]+")


def is_title_case(text: str) -> bool:
    """Every word capitalised ("Escalate Acme Billing Failure", "HOW IS ACME"): capitals then
    say nothing about which words are names, so rules that read them stand aside."""
    capitalised = 0
    for match in _LETTER_WORD_RE.finditer(text):
        word = match.group(0)
        if len(word) > 1 and word.lower() not in _TITLE_SMALL:
            if not word[0].isupper():
                return False  # most messages stop at their first or second word
            capitalised += 1
    # Four or more: a short question is mostly names anyway ("NPS for Duff Beer?").
    return capitalised >= 4


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass
class _Token:
    """A word of an utterance with its place in the original text."""

    text: str
    start: int
    end: int
    possessive: bool
    capitalised: bool


class AccountIndex:
    """In-memory lookup structures over account names and aliases, built once, queried many times."""

    def __init__(self, accounts: Iterable[AccountName]) -> None:
        # Built here: what an exact or alias lookup needs (the common case, and the whole of a
        # one-shot `csm-bot ask "/health acme"`). Structures only prefix, typo and "did you
        # mean" searches use are built on first use (the cached properties below), so a process
        # answering one question on 10,000 accounts does not pay for all of them.
        self._accounts: dict[int, AccountName] = {}
        self._exact: dict[str, list[int]] = {}
        self._alias: dict[str, list[int]] = {}
        self._postings: dict[str, set[int]] = {}
        self._first: dict[str, set[int]] = {}
        self._forms: dict[int, list[list[str]]] = {}  # each name/alias as its token list
        self._name_len: dict[int, int] = {}
        self._squashed: dict[str, list[int]] = {}
        self._similar_cache: dict[tuple[str, int], list[tuple[str, float]]] = {}
        self._max_phrase = 1
        # Held by every public method and by apply(): questions never see half a change.
        self._lock = threading.RLock()
        for acc in accounts:
            self._index(acc, cow=False)

    def _index(self, acc: AccountName, *, cow: bool) -> None:
        """Add one account to the eager structures (``cow``: copy a list before changing it, since
        lookups hand lists on; the sets never leave the index, whose lock ``apply`` holds)."""
        acc_id = acc.id
        self._accounts[acc_id] = acc
        forms: list[list[str]] = []
        for i, raw in enumerate((acc.name, *acc.aliases)):
            key = fold(raw)
            if not key:
                continue
            _add_list(self._exact if i == 0 else self._alias, key, acc_id, cow)
            toks = key.split()
            if len(toks) > 1:
                self._max_phrase = max(self._max_phrase, len(toks))
                # "acmecorp", "piedpiper": names typed without their spaces.
                _add_list(self._squashed, "".join(toks), acc_id, cow)
            forms.append(toks)
            self._first.setdefault(toks[0], set()).add(acc_id)
            for tok in toks:
                self._postings.setdefault(tok, set()).add(acc_id)
        self._forms[acc_id] = forms
        self._name_len[acc_id] = len(acc.name)

    def _unindex(self, acc_id: int) -> None:
        """Take one account out of the eager structures (lists copied, sets changed in place)."""
        acc = self._accounts.pop(acc_id, None)
        if acc is None:
            return
        for toks in self._forms.pop(acc_id, []):
            key = " ".join(toks)
            _drop_list(self._exact, key, acc_id)
            _drop_list(self._alias, key, acc_id)
            if len(toks) > 1:
                _drop_list(self._squashed, "".join(toks), acc_id)
            _drop_set(self._first, toks[0], acc_id)
            for tok in toks:
                _drop_set(self._postings, tok, acc_id)
        self._name_len.pop(acc_id, None)

    def apply(self, changed: Iterable[AccountName], removed: Iterable[int] = ()) -> AccountIndex:
        """Add, rename or re-alias ``changed`` accounts and drop ``removed`` ones, in place.

        Only the entries a change touches are rewritten (a rename among 10,000 accounts costs
        microseconds, not a rebuild), including the structures built on first use. Every public
        method holds the index's lock, so a question being answered meanwhile sees the index
        before or after the change, never half of it.
        """
        changed = list(changed)
        with self._lock:
            built = [name for name in _LAZY if name in self.__dict__]
            gone = {i for i in removed if i in self._accounts}
            gone |= {a.id for a in changed if a.id in self._accounts}
            old_tokens = {tok for i in gone for toks in self._forms.get(i, []) for tok in toks}
            old_forms = {i: self._forms.get(i, []) for i in gone}
            for acc_id in gone:
                self._unindex(acc_id)
            for acc in changed:
                self._index(acc, cow=True)
            self._patch_lazy(built, old_forms, old_tokens, [a.id for a in changed])
            self._similar_cache = {}
            self.__dict__.pop("_owned_cache", None)
            self.__dict__.pop("_sorted_ids", None)
        return self

    def _patch_lazy(
        self,
        built: list[str],
        old_forms: dict[int, list[list[str]]],
        old_tokens: set[str],
        added: list[int],
    ) -> None:
        """Bring the structures already built on first use up to date with the eager ones."""
        new_tokens = {tok for i in added for toks in self._forms.get(i, []) for tok in toks}
        touched = old_tokens | new_tokens
        d = self.__dict__
        if "_by_words" in built:
            # Sets change in place (no method hands one out; apply holds the lock): some hold
            # thousands of ids, and copying one per change would cost more than the patch.
            by_words = d["_by_words"]
            for acc_id, forms in old_forms.items():
                for toks in forms:
                    _drop_set(by_words, len(toks), acc_id)
            for acc_id in added:
                for toks in self._forms[acc_id]:
                    by_words.setdefault(len(toks), set()).add(acc_id)
        if "_shape" in built or "_core_len" in built:
            for acc_id in old_forms:
                d.get("_shape", {}).pop(acc_id, None)
                d.get("_core_len", {}).pop(acc_id, None)
            for acc_id in added:
                shape = [
                    (toks[0], max(1, sum(len(t) for t in toks if t not in GENERIC_WORDS)))
                    for toks in self._forms[acc_id]
                ]
                if "_shape" in d:
                    d["_shape"][acc_id] = shape
                if "_core_len" in d:
                    d["_core_len"][acc_id] = min((total for _, total in shape), default=1)
        vanished = {t for t in old_tokens if t not in self._postings}
        fresh = {t for t in new_tokens if t not in old_tokens}
        for name, keep in (("_vocab", lambda t: True), ("_long_vocab", _is_long)):
            if name in built:
                vocab = d[name]
                for tok in vanished:
                    pos = bisect_left(vocab, tok)
                    if pos < len(vocab) and vocab[pos] == tok:
                        del vocab[pos]
                for tok in fresh:
                    pos = bisect_left(vocab, tok)
                    if keep(tok) and (pos == len(vocab) or vocab[pos] != tok):
                        vocab.insert(pos, tok)
        if "_weak" in built:
            for tok in touched:
                d["_weak"].discard(tok)
                ids = self._postings.get(tok)
                if ids and (
                    tok in GENERIC_WORDS
                    or tok.isdigit()
                    or (tok not in self._first and len(ids) >= 2)
                ):
                    d["_weak"].add(tok)
        if "_non_first" in built:
            non_first = d["_non_first"]
            for tok in touched:
                non_first.discard(tok)
                if tok in self._postings and tok not in self._first:
                    non_first.add(tok)
        if "_deletes" in built:
            for tok in vanished:
                if len(tok) >= _MIN_TYPO and not tok.isdigit():
                    for variant in (tok, *_deletions(tok)):
                        _drop_set(d["_deletes"], variant, tok)
            for tok in fresh:
                if len(tok) >= _MIN_TYPO and not tok.isdigit() and tok in self._postings:
                    for variant in (tok, *_deletions(tok)):
                        d["_deletes"].setdefault(variant, set()).add(tok)
        if "_trigrams" in built:
            for acc_id, forms in old_forms.items():
                for toks in forms:
                    for gram in _trigrams(" ".join(toks)):
                        _drop_set(d["_trigrams"], gram, acc_id)
            for acc_id in added:
                for toks in self._forms[acc_id]:
                    for gram in _trigrams(" ".join(toks)):
                        d["_trigrams"].setdefault(gram, set()).add(acc_id)

    @_locked
    def warm(self) -> AccountIndex:
        """Build every structure used on first need now (a server warms up before traffic)."""
        for name in _LAZY:
            getattr(self, name)
        return self

    # Built on first use from the structures __init__ fills; apply() patches them when built.

    @cached_property
    def _by_words(self) -> dict[int, set[int]]:
        """Number of words -> ids with a name or alias of that many words."""
        by_words: dict[int, set[int]] = {}
        for acc_id, forms in self._forms.items():
            for toks in forms:
                by_words.setdefault(len(toks), set()).add(acc_id)
        return by_words

    @cached_property
    def _shape(self) -> dict[int, list[tuple[str, int]]]:
        """(first word, letters in the non-generic words) per form, for prefix scores."""
        return {
            acc_id: [
                (toks[0], max(1, sum(len(t) for t in toks if t not in GENERIC_WORDS)))
                for toks in forms
            ]
            for acc_id, forms in self._forms.items()
        }

    @cached_property
    def _core_len(self) -> dict[int, int]:
        return {
            acc_id: min((total for _, total in shape), default=1)
            for acc_id, shape in self._shape.items()
        }

    @cached_property
    def _vocab(self) -> list[str]:
        return sorted(self._postings)

    @cached_property
    def _weak(self) -> set[str]:
        # A token that is never the first word of a name but ends several ("Labs", "Health",
        # "Systems", serial numbers) describes a kind of company, not a company: it may extend a
        # mention ("tailspin systems") but not start one.
        first_tokens = self._first
        return {
            tok
            for tok, ids in self._postings.items()
            if tok in GENERIC_WORDS or tok.isdigit() or (tok not in first_tokens and len(ids) >= 2)
        }

    @cached_property
    def _non_first(self) -> set[str]:
        # Words that never begin a name or alias ("coffee" in "Fourth Coffee Outfitters"): on
        # their own, in lower case, they are everyday words first and account names second.
        return {tok for tok in self._postings if tok not in self._first}

    @cached_property
    def _deletes(self) -> dict[str, set[str]]:
        # Symmetric-deletion map for one-edit typos: O(len(word)) dict lookups per query word,
        # independent of how many accounts there are.
        deletes: dict[str, set[str]] = {}
        for tok in self._vocab:
            if len(tok) >= _MIN_TYPO and not tok.isdigit():
                for variant in (tok, *_deletions(tok)):
                    deletes.setdefault(variant, set()).add(tok)
        return deletes

    @cached_property
    def _long_vocab(self) -> list[str]:
        return [t for t in self._vocab if len(t) >= 6 and not t.isdigit()]

    @cached_property
    def _trigrams(self) -> dict[str, set[int]]:
        trigrams: dict[str, set[int]] = {}
        for acc_id, forms in self._forms.items():
            for toks in forms:
                for gram in _trigrams(" ".join(toks)):
                    trigrams.setdefault(gram, set()).add(acc_id)
        return trigrams

    def __len__(self) -> int:
        return len(self._accounts)

    @_locked
    def ids(self) -> list[int]:
        """Every indexed account id."""
        return list(self._accounts)

    @_locked
    def sorted_ids(self) -> list[int]:
        """Every indexed account id, ascending (kept once per index)."""
        cached = self.__dict__.get("_sorted_ids")
        if cached is None:
            cached = self.__dict__["_sorted_ids"] = sorted(self._accounts)
        return cached

    @_locked
    def owned_by(self, owner_id: int) -> frozenset[int]:
        """Ids of the accounts this CSM owns (built once per owner, then cached)."""
        cache = self.__dict__.setdefault("_owned_cache", {})
        owned = cache.get(owner_id)
        if owned is None:
            owned = cache[owner_id] = frozenset(
                i for i, a in self._accounts.items() if a.owner_id == owner_id
            )
        return owned

    @_locked
    def get(self, account_id: int) -> AccountName | None:
        """The account with this id, if indexed."""
        return self._accounts.get(account_id)

    # ------------------------------------------------------------------ resolve

    @_locked
    def resolve(self, query: str, *, limit: int = 5, prefer: Prefer = _NO_PREFERENCE) -> Resolution:
        """Resolve a name as typed: exact, alias, unique prefix/token, typo; else ambiguous or none.

        ``prefer`` ranks ids offered first when the name is ambiguous (the asker's own accounts,
        the ones discussed lately): among 10,000 accounts a nickname fits a hundred of them.
        """
        query = bounded_name(query)
        key = fold(query)
        if not key:
            return Resolution("none", query, None, None, ())
        for status, bucket in (("exact", self._exact), ("alias", self._alias)):
            ids = bucket.get(key)
            if ids:
                if len(ids) == 1:
                    return self._one(status, query, ids[0], 100.0)
                return self._ambiguous(query, [(i, 100.0) for i in ids], limit, prefer)
        squashed = self._squashed.get(key.replace(" ", ""))
        if squashed and len(squashed) == 1:
            return self._one("fuzzy", query, squashed[0], 98.0)
        words = key.split()
        core = [w for w in words if w not in GENERIC_WORDS] or words
        # "acme inc" / "the globex": try again without the legal-form words.
        core_key = " ".join(core)
        if core_key != key:
            for status, bucket in (("exact", self._exact), ("alias", self._alias)):
                ids = bucket.get(core_key)
                if ids and len(ids) == 1:
                    return self._one("alias" if status == "alias" else "fuzzy", query, ids[0], 98.0)
        return self._resolve_words(
            query, core, limit, min_prefix=_MIN_PREFIX, prefer=prefer, full=words
        )

    def _resolve_words(
        self,
        query: str,
        words: list[str],
        limit: int,
        *,
        min_prefix: int,
        suggest: bool = True,
        prefer: Prefer = _NO_PREFERENCE,
        full: list[str] | None = None,
    ) -> Resolution:
        """Resolve name words (legal-form words left out); ``full`` are the words as typed, with
        them, to tell apart names that differ only there ("umbrela corporation")."""
        # 1. Every word is a name word or the start of one, in the name's order: "piper",
        #    "umbrella", "wayne enterprise" (but "health yarrow" is not "Yarrow Health").
        matched = _intersect([self._ids_for_prefix(w, min_prefix) for w in words])
        if matched and len(words) > 1:
            matched = {i for i in matched if self._in_order(words, i, min_prefix)}
        if matched:
            if len(matched) == 1:
                (only,) = matched
                return self._one("fuzzy", query, only, self._prefix_score(words, only))
            covered = self._covered(words, matched, min_prefix, typos=False)
            if len(covered) != 1 and full and full != words:
                covered = self._covered(full, matched, min_prefix, typos=True)
            if len(covered) == 1:
                return self._one("fuzzy", query, covered[0], self._prefix_score(words, covered[0]))
            # Many names share a word ("harbor" among 10,000): rank cheaply, score the few shown.
            top = heapq.nsmallest(
                max(limit, 2),
                matched,
                key=lambda i: (
                    prefer.get(i, _UNPREFERRED),
                    not self._starts_with(i, words[0]),
                    self._core_len[i],
                    self._name_len[i],
                    self._accounts[i].name,
                ),
            )
            return self._ambiguous(
                query, [(i, self._prefix_score(words, i)) for i in top], limit, prefer
            )
        # 2. Typos: per-word similarity to name words, averaged over the query's words.
        per_word: list[dict[int, float]] = []
        for word in words:
            per_id: dict[int, float] = {}
            for tok, sim in self._similar_tokens(word, min_prefix):
                for acc_id in self._postings[tok]:
                    if sim > per_id.get(acc_id, 0.0):
                        per_id[acc_id] = sim
            per_word.append(per_id)
        n = len(words)
        if n * (100.0 - _FUZZY_ACCEPT) < 100.0:
            # A name missing one of fewer than five words cannot reach the acceptance score, so
            # only names matching every word are scored: cheap even with 10,000 names.
            candidates = _intersect([set(p) for p in per_word])
        else:
            candidates = set().union(*per_word)
        good: list[tuple[int, float]] = []
        for acc_id in candidates:
            score = sum(p.get(acc_id, 0.0) for p in per_word) / n
            if score >= _FUZZY_ACCEPT:
                good.append((acc_id, round(score, 1)))
        if good:
            top = max(s for _, s in good)
            tied = [(i, s) for i, s in good if s >= top - _TIE_MARGIN]
            if len(tied) == 1:
                return self._one("fuzzy", query, tied[0][0], tied[0][1])
            covered = self._covered(words, {i for i, _ in tied}, min_prefix, typos=True)
            if len(covered) != 1 and full and full != words:
                covered = self._covered(full, {i for i, _ in tied}, min_prefix, typos=True)
            if len(covered) == 1:
                # Among tied names, the only one whose every word was typed wins ("wilow mtors"
                # is Willow Motors, not Willow Motors 1258).
                return self._one("fuzzy", query, covered[0], dict(tied)[covered[0]])
            return self._ambiguous(query, tied, limit, prefer)
        suggestions = self.suggest(query, limit=limit) if suggest else ()
        return Resolution("none", query, None, None, suggestions)

    def _covered(
        self, words: list[str], ids: set[int], min_prefix: int, *, typos: bool
    ) -> list[int]:
        """Names whose every word was typed (as is, as a prefix, or with a typo): the only such
        name among several matches is the one meant; several (or none) mean asking."""
        same_length = ids & self._by_words.get(len(words), set())
        return [i for i in same_length if self._covers(words, i, min_prefix, typos)]

    def _starts_with(self, acc_id: int, word: str) -> bool:
        return any(first.startswith(word) for first, _ in self._shape[acc_id])

    def _covers(self, words: list[str], acc_id: int, min_prefix: int, typos: bool) -> bool:
        for toks in self._forms[acc_id]:
            if len(toks) != len(words):
                continue
            if all(
                t == w
                or (len(w) >= min_prefix and t.startswith(w))
                or (typos and len(w) >= _MIN_TYPO and fuzz.ratio(w, t) >= _FUZZY_ACCEPT)
                for w, t in zip(words, toks, strict=True)
            ):
                return True
        return False

    def _in_order(self, words: list[str], acc_id: int, min_prefix: int) -> bool:
        for toks in self._forms[acc_id]:
            pos = 0
            for word in words:
                while pos < len(toks) and not (
                    toks[pos] == word or (len(word) >= min_prefix and toks[pos].startswith(word))
                ):
                    pos += 1
                if pos == len(toks):
                    break
                pos += 1
            else:
                return True
        return False

    @_locked
    def suggest(self, query: str, *, limit: int = 5, cutoff: float = 55.0) -> tuple[Candidate, ...]:
        """Closest names for a "did you mean" (character-trigram lookup, then rapidfuzz scoring)."""
        words = fold(bounded_name(query)).split()
        # "zzqxv corp" should not suggest every "... Corp": legal-form words carry no signal.
        key = " ".join(w for w in words if w not in GENERIC_WORDS) or " ".join(words)
        grams = _trigrams(key)
        if not grams:
            return ()
        counts: dict[int, int] = {}
        for gram in grams:
            for acc_id in self._trigrams.get(gram, ()):
                counts[acc_id] = counts.get(acc_id, 0) + 1
        # Only the names sharing the most trigrams are worth the slower scorer.
        shortlist = sorted(counts, key=lambda i: -counts[i])[:50]
        scored: list[tuple[int, float]] = []
        for acc_id in shortlist:
            score = max(fuzz.WRatio(key, " ".join(toks)) for toks in self._forms[acc_id])
            if score >= cutoff:
                scored.append((acc_id, round(score, 1)))
        scored.sort(key=lambda p: (-p[1], self._name_len[p[0]]))
        return tuple(Candidate(i, self._accounts[i].name, s) for i, s in scored[:limit])

    # ------------------------------------------------------------------ find in text

    @_locked
    def find_in_text(
        self,
        text: str,
        *,
        ignore: Callable[[str], bool] | None = None,
        prefer: Prefer = _NO_PREFERENCE,
    ) -> tuple[Resolution, str] | None:
        """Find an account mention in an utterance; (resolution, the span as written) or None.

        ``ignore(word)`` says which words are chat vocabulary rather than names (default: a
        built-in list); such words may still be part of a mention that starts with a name word.
        """
        is_chat = ignore or COMMON_WORDS.__contains__
        tokens = tokenize(text)
        if not tokens:
            return None
        found = self._find(text, tokens, is_chat, prefer, strict=False)
        return None if found is None else (found[0], found[1])

    @_locked
    def find_mentions(
        self,
        text: str,
        *,
        ignore: Callable[[str], bool] | None = None,
        prefer: Prefer = _NO_PREFERENCE,
        limit: int = 6,
    ) -> list[Mention]:
        """Every account mention in an utterance, in the order written ("acme vs globex").

        A mention that can only start with a word found inside names ("coffee") is found last
        and marked ``weak``.
        """
        is_chat = ignore or COMMON_WORDS.__contains__
        masked = text
        mentions: list[Mention] = []
        titled = is_title_case(text)
        for _ in range(limit):
            tokens = tokenize(masked)
            if not tokens:
                break
            weak = False
            found = self._find(masked, tokens, is_chat, prefer, strict=True, titled=titled)
            if found is None:
                found = self._find(masked, tokens, is_chat, prefer, strict=False, titled=titled)
                weak = True
            if found is None:
                break
            resolution, span, start = found
            end = start + len(span)
            masked_span = masked[start:end]
            unmasked = masked
            masked = masked[:start] + " " * (end - start) + masked[end:]
            if weak and not all(word in self._postings for word in fold(masked_span).split()):
                # Only a name word typed exactly may stand for an account on its own; a typo of
                # one ("tracking" for "Trading") is just another word.
                continue
            if self._inside_other_name(unmasked, start, end, is_chat, titled):
                continue
            mentions.append(Mention(resolution, text[start:end], start, end, weak))
        if any(not m.weak for m in mentions):
            # With an account named outright, a stray name word is an ordinary word.
            mentions = [m for m in mentions if not m.weak]
        if titled and any(m.resolution.account_id is not None for m in mentions):
            # In title case "Overall Health" looks like a company too: with an account named,
            # it is more likely words.
            mentions = [m for m in mentions if m.resolution.status != "none"]
        mentions.sort(key=lambda m: m.start)
        return mentions

    def _inside_other_name(
        self, text: str, start: int, end: int, is_chat: Callable[[str], bool], titled: bool
    ) -> bool:
        """One name word next to a capitalised word nobody knows: part of another name, or
        after "a"/"an" in lower case: a common noun.

        "Bruce Wayne", "Willy Wonka", "Wayne Gretzky": the alias is a surname here, not the
        account. A word opening the sentence is capitalised anyway, so it does not count.
        """
        if len(fold(text[start:end]).split()) != 1:
            return False
        if not text[start:end][:1].isupper() and _ARTICLE_RE.search(text[:start]):
            return True  # "an umbrella", "a delta flight": a thing, not a company
        if titled:
            return False
        before = _WORD_RE.findall(text[:start].rstrip()[-60:])
        if before and text[:start].endswith(" ") and not text[:start].endswith("  "):
            word = before[-1]
            head = text[:start].rstrip()[: -len(word)].rstrip()
            opens = not head or head[-1] in ".!?:;\"'("
            if not opens and self._foreign(word, is_chat):
                return True
        after = _NEXT_WORD_RE.match(text, end)
        return after is not None and self._foreign(after.group(1), is_chat)

    def _foreign(self, raw: str, is_chat: Callable[[str], bool]) -> bool:
        return raw[:1].isupper() and not raw.isupper() and self._unknown_word(fold(raw), is_chat)

    def _find(
        self,
        text: str,
        tokens: list[_Token],
        is_chat: Callable[[str], bool],
        prefer: Prefer,
        *,
        strict: bool,
        titled: bool = False,
    ) -> tuple[Resolution, str, int] | None:
        found = self._find_phrase(text, tokens, is_chat, prefer, strict)
        if found is not None:
            return found
        found = self._find_anchored(text, tokens, is_chat, titled)
        if found is not None:
            return found
        return self._find_fuzzy(text, tokens, is_chat, prefer, strict)

    def _find_anchored(
        self, text: str, tokens: list[_Token], is_chat: Callable[[str], bool], titled: bool
    ) -> tuple[Resolution, str, int] | None:
        """A word nobody knows before a word that only ends names ("Oenic Airlines", "Orion Bank").

        The ending word says a company is named; the word before it says which. Close enough to
        the word that comes before that ending in one name (two typos: "oenic" for "oceanic"), it
        is that account; otherwise, written as a name (capitalised), it is a company we do not
        know: "none", rather than whichever account happens to end the same way.
        """
        for k in range(1, len(tokens)):
            tok, prev = tokens[k], tokens[k - 1]
            word = tok.text
            if word not in self._non_first or word in GENERIC_WORDS or word.isdigit():
                continue
            if prev.possessive or not self._unknown_word(prev.text, is_chat):
                continue
            if text[prev.end : tok.start].strip():
                continue  # "Orion, Bank": not one name
            best = self._anchored_match(prev.text, word)
            if best is not None:
                start = prev.start
                span = text[start : tok.end]
                return self._one("fuzzy", span, best[0], best[1]), span, start
            if not (prev.capitalised and tok.capitalised):
                continue
            first = k - 1
            while (
                first > 0
                and tokens[first - 1].capitalised
                and not tokens[first - 1].possessive
                and not text[tokens[first - 1].end : tokens[first].start].strip()
                and self._unknown_word(tokens[first - 1].text, is_chat)
            ):
                first -= 1  # "Blue Yonder Airlines": the whole name as written
            start = tokens[first].start
            span = text[start : tok.end]
            return Resolution("none", span, None, None, self.suggest(span)), span, start
        return None

    def _unknown_word(self, word: str, is_chat: Callable[[str], bool]) -> bool:
        """A word that is neither chat vocabulary nor near any name word (could start a name)."""
        return (
            len(word) >= 3
            and word.isalpha()
            and word not in GENERIC_WORDS
            and word not in self._postings
            and not is_chat(word)
            and not self._similar_tokens(word, _MIN_PREFIX_IN_TEXT)
        )

    def _anchored_match(self, word: str, anchor: str) -> tuple[int, float] | None:
        """The one account whose word before ``anchor`` is within two typos of ``word``."""
        scored: dict[int, float] = {}
        for acc_id in self._postings.get(anchor, ()):
            for toks in self._forms[acc_id]:
                for pos in range(1, len(toks)):
                    if toks[pos] == anchor and len(toks[pos - 1]) >= _MIN_TYPO:
                        sim = fuzz.ratio(word, toks[pos - 1])
                        if sim > scored.get(acc_id, 0.0):
                            scored[acc_id] = sim
        ranked = sorted(scored.items(), key=lambda p: -p[1])
        if not ranked or ranked[0][1] < _ANCHORED_ACCEPT:
            return None
        if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - _TIE_MARGIN:
            return None
        return ranked[0][0], round(ranked[0][1], 1)

    def _find_phrase(
        self,
        text: str,
        tokens: list[_Token],
        is_chat: Callable[[str], bool],
        prefer: Prefer,
        strict: bool,
    ) -> tuple[Resolution, str, int] | None:
        """Longest run of words that is exactly a name or alias (the common, cheap case)."""
        n = len(tokens)
        for i in range(n):
            for length in range(min(self._max_phrase, n - i), 0, -1):
                window = tokens[i : i + length]
                # A possessive ends a name: "umbrella's health" is not "Umbrella Health".
                if any(t.possessive for t in window[:-1]):
                    continue
                key = " ".join(t.text for t in window)
                status: Status = "exact"
                ids = self._exact.get(key)
                if not ids:
                    status, ids = "alias", self._alias.get(key)
                if not ids and length == 1:
                    status, ids = "fuzzy", self._squashed.get(key)
                if not ids:
                    continue
                if length == 1 and not window[0].capitalised:
                    word = window[0].text
                    if word in self._weak or is_chat(word):
                        continue
                start = window[0].start
                span = text[start : window[-1].end]
                if len(ids) == 1:
                    return self._one(status, span, ids[0], 100.0), span, start
                return self._ambiguous(span, [(a, 100.0) for a in ids], 5, prefer), span, start
        return None

    def _find_fuzzy(
        self,
        text: str,
        tokens: list[_Token],
        is_chat: Callable[[str], bool],
        prefer: Prefer,
        strict: bool,
    ) -> tuple[Resolution, str, int] | None:
        """Runs of name-like words (prefixes, typos) resolved as a whole, trimming chat words."""
        # Classify: strong = could start a mention; ext = name word that may only extend one.
        kinds: list[str] = []
        non_first: set[str] | frozenset[str] = self._non_first if strict else frozenset()
        for tok in tokens:
            word = tok.text
            if is_chat(word) or word in GENERIC_WORDS or word.isdigit():
                # A chat word may still continue a name: "tailspin systems", "quarry healh".
                near = word in self._postings or (
                    not word.isdigit() and bool(self._similar_tokens(word, _MIN_PREFIX_IN_TEXT))
                )
                kinds.append("ext" if near else "stop")
            elif word in self._postings:
                weak = word in self._weak or (word in non_first and not tok.capitalised)
                kinds.append("ext" if weak else "strong")
            elif similar := self._similar_tokens(word, _MIN_PREFIX_IN_TEXT):
                # A word merely near (a typo or the start of) words that never begin a name
                # ("Paper" near "Piper", "Industires") is an ordinary word until a name word
                # leads it: it may extend a mention, not start one.
                leads = any(near in self._first for near, _ in similar)
                kinds.append("strong" if leads else "tail")
            else:
                kinds.append("stop")
        best: tuple[tuple[int, int], Resolution, str, int] | None = None
        i, n = 0, len(tokens)
        while i < n:
            if kinds[i] == "stop":
                i += 1
                continue
            j = i
            while j + 1 < n and kinds[j + 1] != "stop" and not tokens[j].possessive:
                j += 1
            strong = [k for k in range(i, j + 1) if kinds[k] in ("strong", "tail")]
            if any(kinds[k] == "strong" for k in strong):
                found = self._best_span(text, tokens, i, j, strong[0], strong[-1], prefer)
                if found is not None and (best is None or found[0] > best[0]):
                    best = found
            i = j + 1
        if best is None:
            return None
        return best[1], best[2], best[3]

    def _best_span(
        self,
        text: str,
        tokens: list[_Token],
        i: int,
        j: int,
        first: int,
        last: int,
        prefer: Prefer,
    ) -> tuple[tuple[int, int], Resolution, str, int] | None:
        rank = {"exact": 4, "alias": 4, "fuzzy": 3, "ambiguous": 2}
        best: tuple[tuple[int, int], Resolution, str, int] | None = None
        # Widest span first; the words only allowed to extend a mention are dropped when they
        # make it worse ("acme health" -> "acme").
        for a in range(i, first + 1):
            if a < first and tokens[a].text not in self._first:
                continue  # "health acme": a chat word only leads a mention if names start with it
            for b in range(j, last - 1, -1):
                words = [t.text for t in tokens[a : b + 1]]
                start = tokens[a].start
                span = text[start : tokens[b].end]
                key = " ".join(words)
                res = None
                for status, bucket in (("exact", self._exact), ("alias", self._alias)):
                    ids = bucket.get(key)
                    if ids and len(ids) == 1:
                        res = self._one(status, span, ids[0], 100.0)
                        break
                if res is None:
                    core = [w for w in words if w not in GENERIC_WORDS] or words
                    res = self._resolve_words(
                        span,
                        core,
                        5,
                        min_prefix=_MIN_PREFIX_IN_TEXT,
                        suggest=False,
                        prefer=prefer,
                        full=words,
                    )
                if res.status == "none":
                    continue
                score = (rank[res.status], b - a)
                if best is None or score > best[0]:
                    best = (score, res, span, start)
        return best

    # ------------------------------------------------------------------ helpers

    def _ids_for_prefix(self, word: str, min_prefix: int) -> set[int]:
        ids = set(self._postings.get(word, ()))
        if len(word) >= min_prefix and not word.isdigit():
            pos = bisect_left(self._vocab, word)
            while pos < len(self._vocab) and self._vocab[pos].startswith(word):
                ids |= self._postings[self._vocab[pos]]
                pos += 1
        return ids

    @_locked
    def ends_names(self, word: str) -> bool:
        """A (folded) word found in names but never first ("labs", "systems"): it ends a name."""
        return word in self._non_first

    @_locked
    def name_word_similarity(self, word: str) -> float:
        """How close a (folded) word is to some word of an account name, 0..100."""
        return max((sim for _, sim in self._similar_tokens(word, _MIN_PREFIX_IN_TEXT)), default=0.0)

    def _similar_tokens(self, word: str, min_prefix: int) -> list[tuple[str, float]]:
        """Name words close to ``word``: equal, extended by it (prefix), or one typo away."""
        key = (word, min_prefix)
        cached = self._similar_cache.get(key)
        if cached is None:
            if len(self._similar_cache) > 20_000:
                self._similar_cache.clear()  # bounded: chat vocabulary is small, typos are not
            cached = self._similar_cache[key] = self._compute_similar(word, min_prefix)
        return cached

    def _compute_similar(self, word: str, min_prefix: int) -> list[tuple[str, float]]:
        out: dict[str, float] = {}
        if word in self._postings:
            out[word] = 100.0
        if len(word) >= min_prefix and not word.isdigit():
            pos = bisect_left(self._vocab, word)
            while pos < len(self._vocab) and self._vocab[pos].startswith(word):
                out.setdefault(self._vocab[pos], 100.0)
                pos += 1
        if len(word) >= _MIN_TYPO and not word.isdigit():
            near: set[str] = set()
            for variant in (word, *_deletions(word)):
                near |= self._deletes.get(variant, set())
            for tok in near:
                if tok not in out and OSA.distance(word, tok) <= 1:
                    sim = fuzz.ratio(word, tok)
                    if sim >= _FUZZY_ACCEPT:
                        out[tok] = sim
            if not out and len(word) >= 7:
                # Two typos in a long word ("cyberdain"): rare, so a scan of long words is fine.
                hit = process.extractOne(
                    word, self._long_vocab, scorer=fuzz.ratio, score_cutoff=_FUZZY_ACCEPT
                )
                if hit is not None:
                    out[hit[0]] = float(hit[1])
        return list(out.items())

    def _prefix_score(self, words: list[str], acc_id: int) -> float:
        """How much of the name the words cover; starting at the first word counts extra."""
        covered = sum(len(w) for w in words)
        best = 0.0
        for first, total in self._shape[acc_id]:
            score = 80.0 + 15.0 * min(1.0, covered / total)
            if first.startswith(words[0]):
                score += 5.0
            best = max(best, min(score, 99.0))
        return round(best, 1)

    def _one(self, status: Status, query: str, acc_id: int, score: float) -> Resolution:
        name = self._accounts[acc_id].name
        return Resolution(status, query, acc_id, name, (Candidate(acc_id, name, score),))

    def _ambiguous(
        self,
        query: str,
        scored: list[tuple[int, float]],
        limit: int,
        prefer: Prefer = _NO_PREFERENCE,
    ) -> Resolution:
        scored = sorted(
            scored,
            key=lambda p: (
                prefer.get(p[0], _UNPREFERRED),
                -p[1],
                self._name_len[p[0]],
                self._accounts[p[0]].name,
            ),
        )
        cands = tuple(Candidate(i, self._accounts[i].name, s) for i, s in scored[: max(limit, 2)])
        return Resolution("ambiguous", query, None, None, cands)


def tokenize(text: str) -> list[_Token]:
    """Words of an utterance (folded), each with its span in the original text."""
    out: list[_Token] = []
    for match in _WORD_RE.finditer(text):
        raw = match.group(0)
        possessive = bool(re.search(r"['’`]s$", raw, re.IGNORECASE))
        folded = fold(raw)
        if not folded:
            continue
        parts = folded.split()
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            out.append(
                _Token(part, match.start(), match.end(), possessive and last, raw[:1].isupper())
            )
    return out


def _intersect(sets: list[set[int]]) -> set[int]:
    """Intersection, smallest set first (the common case is one small set among huge ones)."""
    if not sets:
        return set()
    ordered = sorted(sets, key=len)
    out = set(ordered[0])
    for other in ordered[1:]:
        if not out:
            break
        out &= other
    return out


def _trigrams(key: str) -> set[str]:
    padded = f"  {key} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


# The structures built on first use (apply() keeps the built ones up to date).
_LAZY = (
    "_by_words",
    "_shape",
    "_core_len",
    "_vocab",
    "_weak",
    "_non_first",
    "_deletes",
    "_long_vocab",
    "_trigrams",
)


def _is_long(tok: str) -> bool:
    return len(tok) >= 6 and not tok.isdigit()


def _add_list(bucket: dict[str, list[int]], key: str, acc_id: int, cow: bool) -> None:
    ids = bucket.get(key)
    if ids is None:
        bucket[key] = [acc_id]
    elif acc_id not in ids:
        bucket[key] = [*ids, acc_id] if cow else ids
        if not cow:
            ids.append(acc_id)


def _drop_list(bucket: dict[str, list[int]], key: str, acc_id: int) -> None:
    ids = bucket.get(key)
    if ids is not None and acc_id in ids:
        rest = [i for i in ids if i != acc_id]
        if rest:
            bucket[key] = rest
        else:
            del bucket[key]


def _drop_set(bucket: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    """Take ``value`` out of a set in place; a key left with nothing goes (lookups test keys)."""
    values = bucket.get(key)
    if values is not None and value in values:
        values.discard(value)
        if not values:
            del bucket[key]
