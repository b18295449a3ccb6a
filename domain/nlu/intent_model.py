"""A small linear intent classifier over word, word-pair, character and entity features.

Trained offline (``train``: multinomial logistic regression, full-batch Adam with L2, numpy only
at training time) from paraphrases kept in ``tests/nlu/training/``; shipped as one binary file
next to this module and read in about a millisecond, with no numpy at run time.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

MODEL_FILE = "intent_model.bin"
_MAGIC = b"CSMINT1\n"


def features(tokens: Sequence[str], extras: Iterable[str] = ()) -> list[str]:
    """Feature names of one utterance: its (entity-masked, normalised) tokens and extra signals.

    Tokens in upper case are placeholders (ACCT, PERSON, NUM, MONEY): they count as words and in
    word pairs, but have no character n-grams.
    """
    out: list[str] = []
    add = out.append
    previous = "<s>"
    for token in tokens:
        add("w:" + token)
        add("b:" + previous + "_" + token)
        previous = token
        if not token.isupper() and len(token) > 2:
            padded = f"<{token}>"
            for n in (3, 4):
                for i in range(len(padded) - n + 1):
                    add("c:" + padded[i : i + n])
    add("b:" + previous + "_</s>")
    out.extend(extras)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class IntentModel:
    """Weights of a linear model: one row of ``len(classes)`` weights per known feature."""

    classes: tuple[str, ...]
    index: dict[str, int]
    weights: array  # float32, row-major: feature i's weights are [i*K, (i+1)*K)
    bias: tuple[float, ...]
    fingerprint: str  # hash of the training data it was built from

    def scores(self, feats: Iterable[str]) -> list[float]:
        k = len(self.classes)
        total = list(self.bias)
        weights = self.weights
        index = self.index
        for feat in feats:
            row = index.get(feat)
            if row is None:
                continue
            base = row * k
            for j in range(k):
                total[j] += weights[base + j]
        return total

    def probabilities(self, feats: Iterable[str]) -> dict[str, float]:
        """Softmax over the classes, as a dict intent -> probability."""
        raw = self.scores(feats)
        top = max(raw)
        exp = [math.exp(s - top) for s in raw]
        norm = sum(exp)
        return {c: e / norm for c, e in zip(self.classes, exp, strict=True)}

    # ------------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        names = list(self.index)
        header = json.dumps(
            {
                "classes": list(self.classes),
                "features": len(names),
                "bias": list(self.bias),
                "fingerprint": self.fingerprint,
            }
        ).encode()
        vocab = "\n".join(names).encode()
        weights = array("f", self.weights)
        if weights.itemsize != 4:  # pragma: no cover - every platform we run on
            raise RuntimeError("float32 arrays are needed for the model file")
        return (
            _MAGIC
            + struct.pack("<III", len(header), len(vocab), len(weights))
            + header
            + vocab
            + weights.tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> IntentModel:
        if not data.startswith(_MAGIC):
            raise ValueError("not an intent model file")
        offset = len(_MAGIC)
        n_header, n_vocab, n_weights = struct.unpack_from("<III", data, offset)
        offset += 12
        header = json.loads(data[offset : offset + n_header])
        offset += n_header
        names = data[offset : offset + n_vocab].decode().split("\n") if n_vocab else []
        offset += n_vocab
        weights = array("f")
        weights.frombytes(data[offset : offset + 4 * n_weights])
        classes = tuple(header["classes"])
        if len(weights) != len(names) * len(classes):
            raise ValueError("intent model file is truncated")
        return cls(
            classes=classes,
            index=dict(zip(names, range(len(names)), strict=True)),
            weights=weights,
            bias=tuple(float(b) for b in header["bias"]),
            fingerprint=str(header.get("fingerprint", "")),
        )

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.to_bytes())


@lru_cache(maxsize=1)
def default_model() -> IntentModel | None:
    """The model shipped with the package; None if the file is missing (rules decide alone)."""
    try:
        data = resources.files(__package__ or "domain.nlu").joinpath(MODEL_FILE).read_bytes()
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError, TypeError):
        path = Path(__file__).with_name(MODEL_FILE)
        if not path.exists():
            return None
        data = path.read_bytes()
    return IntentModel.from_bytes(data)


# Bump when features() or the parser's feature extras change: the shipped model must be retrained.
FEATURES_VERSION = 2


def fingerprint(utterances: Iterable[tuple[str, str]]) -> str:
    """A hash of the training utterances, their intents and the feature version (stale-model check)."""
    digest = hashlib.sha256(f"features={FEATURES_VERSION}".encode())
    for text, label in utterances:
        digest.update(label.encode())
        digest.update(b"\x00")
        digest.update(text.encode())
        digest.update(b"\x02")
    return digest.hexdigest()[:16]


def train(
    examples: Sequence[tuple[Sequence[str], str]],
    classes: Sequence[str],
    *,
    source: str = "",
    steps: int = 300,
    l2: float = 1e-4,
    learning_rate: float = 0.05,
    min_count: int = 1,
) -> IntentModel:
    """Multinomial logistic regression, full batch, Adam; deterministic for the same input.

    numpy is imported here only: the running assistant never trains.
    """
    import numpy as np  # heavy; training is an offline step

    counts: dict[str, int] = {}
    for feats, _ in examples:
        for feat in feats:
            counts[feat] = counts.get(feat, 0) + 1
    names = sorted(f for f, c in counts.items() if c >= min_count)
    index = {f: i for i, f in enumerate(names)}
    class_index = {c: i for i, c in enumerate(classes)}
    rows: list[int] = []
    cols: list[int] = []
    labels: list[int] = []
    for n, (feats, label) in enumerate(examples):
        for feat in feats:
            col = index.get(feat)
            if col is not None:
                rows.append(n)
                cols.append(col)
        labels.append(class_index[label])
    n_ex, n_feat, k = len(examples), len(names), len(classes)
    row_arr = np.asarray(rows, dtype=np.int64)
    col_arr = np.asarray(cols, dtype=np.int64)
    y = np.zeros((n_ex, k))
    y[np.arange(n_ex), np.asarray(labels)] = 1.0
    # Each class weighs the same in the loss, however many paraphrases it has.
    class_weight = n_ex / (k * np.maximum(y.sum(axis=0), 1.0))
    sample_weight = (y * class_weight).sum(axis=1, keepdims=True) / n_ex

    w = np.zeros((n_feat, k))
    b = np.zeros(k)
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        scores = np.zeros((n_ex, k))
        np.add.at(scores, row_arr, w[col_arr])
        scores += b
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - y) * sample_weight
        grad_w = np.zeros_like(w)
        np.add.at(grad_w, col_arr, g[row_arr])
        grad_w += l2 * w
        grad_b = g.sum(axis=0)
        for param, grad, m, v in ((w, grad_w, m_w, v_w), (b, grad_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            param -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)
    # Features whose weights all but vanished only cost load time.
    keep = np.abs(w).max(axis=1) >= 1e-3
    kept_names = [f for f, k_ in zip(names, keep, strict=True) if k_]
    weights = array("f", w[keep].astype(np.float32).ravel().tolist())
    return IntentModel(
        classes=tuple(classes),
        index={f: i for i, f in enumerate(kept_names)},
        weights=weights,
        bias=tuple(float(x) for x in b),
        fingerprint=source,
    )
