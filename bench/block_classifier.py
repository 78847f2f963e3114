"""Would a learned block classifier close the resiliparse engine's snippet gap? A probe, not a product feature.

    python bench/block_classifier.py [--samples ../shared/samples]

The resiliparse engine (with its boilerplate rules) is 0.014 under trafilatura's snippet F1 on trafilatura's own
evaluation pages, all of it precision (docs/extraction.md). This script asks whether a logistic regression over
cheap block features (length, punctuation, heading level, link text, digits, case, position relative to the long
blocks, neighbours) can remove the boilerplate blocks that are left. It trains on the readability pages only
(a block is content when its tokens are found in `expected.html`'s text), picks the threshold by 5-fold
cross-validation over those pages, and scores the held-out trafilatura pages with the snippet test of
`omnicorpus.extract.fidelity`. Blocks are scored on their own text joined by newlines, so the baseline row differs
a little from bench/fidelity.py's pipeline figure (0.950 here, 0.953 there).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fidelity import ground_truth  # noqa: E402
from bench.pages_warc import DEFAULT_SAMPLES, sample_pages  # noqa: E402
from omnicorpus.config import load_config  # noqa: E402
from omnicorpus.extract import engines  # noqa: E402
from omnicorpus.extract.align import text_key  # noqa: E402
from omnicorpus.extract.decode import decode_html  # noqa: E402
from omnicorpus.extract.fidelity import Scores, snippet_scores, token_f1, tokens  # noqa: E402
from omnicorpus.extract.html import _key_chars, parse_html  # noqa: E402

_HEADINGS = etree.XPath("//h1|//h2|//h3|//h4|//h5|//h6")
_LINKS = etree.XPath("//a[@href]")
_ENDS_SENTENCE = re.compile(r'[.!?;:"“”»)]\s*$')


def page_blocks(html: str, config) -> list[tuple[str, list[float]]] | None:
    """The resiliparse engine's blocks of one page with their features; None where the engine falls back."""
    tree = parse_html(html)
    body = engines.resiliparse_body(tree, config)
    if body is None or _key_chars(body) < config.resiliparse_min_chars:
        return None
    headings: dict[str, int] = {}
    for heading in _HEADINGS(tree):
        if key := text_key(heading.text_content()):
            headings.setdefault(key, int(heading.tag[1]))
    links = {text_key(link.text_content()) for link in _LINKS(tree)} - {""}
    blocks = list(body)
    texts = [" ".join(" ".join(block.itertext()).split()) for block in blocks]
    lines = [[key for key in (text_key(t) for t in [block.text or ""] + [c.tail or "" for c in block]) if key]
             for block in blocks]
    words = [len(text.split()) for text in texts]
    long_blocks = [i for i, count in enumerate(words) if count >= 20]
    last = len(blocks) - 1
    result = []
    for i, text in enumerate(texts):
        key = text_key(text)
        line_chars = sum(len(line) for line in lines[i]) or 1
        result.append((text, [
            math.log1p(words[i]), math.log1p(len(key)), float(bool(_ENDS_SENTENCE.search(text))),
            float(key in headings), headings.get(key, 0) / 6, float(key in links),
            sum(len(line) for line in lines[i] if line in links) / line_chars,
            sum(c.isdigit() for c in key) / max(1, len(key)), i / max(1, last), float(i == last), float(i == 0),
            float(bool(long_blocks) and i > long_blocks[-1]), float(bool(long_blocks) and i < long_blocks[0]),
            math.log1p(min((abs(i - j) for j in long_blocks), default=len(blocks))),
            math.log1p(words[i - 1]) if i > 0 else 0.0, math.log1p(words[i + 1]) if i < last else 0.0,
            sum(c.isupper() for c in key) / max(1, len(key)), math.log1p(len(lines[i])),
        ]))
    return result


def is_content(text: str, reference: str) -> int:
    block = tokens(text)
    joined = " ".join(block)
    if len(block) <= 3:
        return int(f" {joined} " in f" {reference} ")
    if joined in reference:
        return 1
    return int(sum(f" {word} " in f" {reference} " for word in block) / len(block) >= 0.8)


def fit(features: np.ndarray, labels: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Class-balanced, L2-regularised logistic regression by Newton steps."""
    x = np.c_[features, np.ones(len(features))]
    weights = np.where(labels == 1, 1.0, labels.sum() / max(1, len(labels) - labels.sum()))
    w = np.zeros(x.shape[1])
    ridge = l2 * np.diag(np.r_[np.ones(x.shape[1] - 1), 0]) / len(labels)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ ((p - labels) * weights) / len(labels) + ridge @ w
        hessian = (x * (p * (1 - p) * weights)[:, None]).T @ x / len(labels) + ridge + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def probabilities(w: np.ndarray, features: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(np.c_[features, np.ones(len(features))] @ w)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    args = parser.parse_args()
    pages = sample_pages(args.samples)
    truths = ground_truth(pages, args.samples)
    evaldata = json.loads((args.samples / "html" / "trafilatura" / "evaldata.json").read_text())
    config = replace(load_config("extract-only").extract, engine="resiliparse")

    rows = []  # (page, source, text, features, label or None)
    for page, truth in zip(pages, truths):
        blocks = page_blocks(decode_html(page.path.read_bytes(), "text/html")[0], config)
        reference = " ".join(tokens(truth.text)) if page.source == "readability" else None
        for text, features in blocks or []:
            rows.append((page, text, features, None if reference is None else is_content(text, reference)))
    features = np.array([row[2] for row in rows])
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    labelled = np.array([i for i, row in enumerate(rows) if row[3] is not None])
    held_out = np.array([i for i, row in enumerate(rows) if row[3] is None])
    labels = np.array([rows[i][3] for i in labelled], dtype=float)
    print(f"readability blocks: {len(labelled)} ({int(len(labels) - labels.sum())} boilerplate); "
          f"trafilatura-page blocks held out: {len(held_out)}")

    page_names = sorted({rows[i][0].name for i in labelled})
    fold_of = {name: k % 5 for k, name in enumerate(page_names)}
    cross_validated = np.zeros(len(rows))
    for fold in range(5):
        train = np.array([i for i in labelled if fold_of[rows[i][0].name] != fold])
        test = np.array([i for i in labelled if fold_of[rows[i][0].name] == fold])
        cross_validated[test] = probabilities(fit(features[train], np.array([rows[i][3] for i in train], float)),
                                              features[test])
    held_out_p = probabilities(fit(features[labelled], labels), features[held_out])

    def by_page(indices, scores, threshold):
        texts: dict = {}
        for i, score in zip(indices, scores):
            texts.setdefault(rows[i][0], []).append(rows[i][1] if score >= threshold else "")
        return {page: "\n".join(t for t in kept if t) for page, kept in texts.items()}

    truth_of = {page.name: truth for page, truth in zip(pages, truths)}
    print("threshold | readability F1 (5-fold CV) | snippet F1 held out (P / R)")
    chosen = None
    for threshold in np.arange(0.0, 0.16, 0.01):
        readability = np.mean([token_f1(text, truth_of[page.name].text).f1
                               for page, text in by_page(labelled, cross_validated[labelled], threshold).items()])
        snippets = Scores(0, 0, 0)
        for page, text in by_page(held_out, held_out_p, threshold).items():
            entry = evaldata[page.url]
            snippets = snippets + snippet_scores(text, entry.get("with", []), entry.get("without", []))
        print(f"{threshold:.2f} | {readability:.4f} | {snippets.f1:.4f} ({snippets.precision:.3f} / "
              f"{snippets.recall:.3f})")
        if chosen is None or readability > chosen[1] + 1e-9:
            chosen = (threshold, readability, snippets.f1)
    print(f"threshold chosen on readability alone: {chosen[0]:.2f} -> held-out snippet F1 {chosen[2]:.4f}")


if __name__ == "__main__":
    main()
