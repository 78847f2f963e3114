"""Text measurements shared by the filters: words, lines, paragraphs, sentences, repetition, stop words.

Words are runs of letters and digits (an apostrophe, hyphen or dot between two runs keeps them one word, as in
"don't", "well-known", "3.14"); punctuation is never a word. Chinese and Japanese have no spaces between words,
so each Han or kana character counts as one word: the word-count thresholds then count characters for those
scripts (OmniCorpus segmented Chinese with jieba; one word per character is the dependency-free stand-in).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from omnicorpus.document import TEXT_BLOCK_SEPARATOR

# Han (CJK unified ideographs + extension A + compatibility), hiragana, katakana, half-width katakana.
CJK_CHARACTERS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_WORD = re.compile(rf"[{CJK_CHARACTERS}]|[^\W{CJK_CHARACTERS}]+(?:['’.\-][^\W{CJK_CHARACTERS}]+)*")
_CJK = re.compile(rf"[{CJK_CHARACTERS}]")
# A sentence ends at . ! ? (followed by a space, a closing quote or bracket, or the end) or at 。！？ anywhere.
_SENTENCE_END = re.compile(r"[.!?]+(?=[\s\"'”’)\]]|$)|[。！？]+")
_LINE_BREAKS = re.compile(r"\n+")

# Stop words per language for the "at least N stop words" rules (Gopher: "the, be, to, of, and, that, have,
# with"; OmniCorpus run.py adds "is, are, am"). Chinese and German lists are ours: the commonest function
# words, so that the rule means the same thing there (a page of names and numbers has none of them).
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the be is are am to of and that have with".split()),
    "zh": frozenset("的 了 是 在 和 有 我 不 这 也 就 都 而 与 着 或 一个 没有 我们 你 他 她 它 们 中 上 为".split()),
    "de": frozenset("der die das und ist nicht zu den von mit sich des auf für im dem ein eine".split()),
    "fr": frozenset("le la les et est de des un une que qui dans pour pas sur".split()),
    "es": frozenset("el la los las y es de que en un una por con para no".split()),
}

# A broader English list for stop-word *ratios* (OBELICS measures the share of stop words among all words, with
# a list of this kind; the Gopher list above is too short for a ratio).
ENGLISH_RATIO_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def cjk_share(tokens: list[str]) -> float:
    """Share of the words that are single Han or kana characters."""
    if not tokens:
        return 0.0
    # `words` makes every Han or kana character a word of its own and puts none in other words, so counting
    # those characters in the joined words counts those words (in C, not a Python loop over the words).
    return len(_CJK.findall("".join(tokens))) / len(tokens)


def alpha_word_count(tokens: list[str]) -> int:
    """Words with at least one alphabetic character (Gopher); most words are letters only, tested in C."""
    return sum(1 for token in tokens if token.isalpha() or any(map(str.isalpha, token)))


def is_cjk(tokens: list[str]) -> bool:
    """Mostly Chinese or Japanese: word-length rules do not apply (every such word is one character)."""
    return cjk_share(tokens) > 0.5


def lines(text: str) -> list[str]:
    return [line for line in _LINE_BREAKS.split(text.strip()) if line.strip()]


def paragraphs(text: str) -> list[str]:
    return [block for block in text.split(TEXT_BLOCK_SEPARATOR) if block.strip()]


def sentence_count(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


def stop_words_for(language: str | None, tokens: list[str]) -> frozenset[str] | None:
    """The stop-word list for a document's language (None when there is none for it)."""
    if language in STOP_WORDS:
        return STOP_WORDS[language]
    if language is None:
        return STOP_WORDS["zh"] if is_cjk(tokens) else STOP_WORDS["en"]
    return None


def stop_word_count(language: str | None, tokens: list[str]) -> int | None:
    """Distinct stop words of the document's language among its words; None when the language has no list."""
    stop_words = stop_words_for(language, tokens)
    return None if stop_words is None else distinct_stop_words(tokens, stop_words)


def distinct_stop_words(tokens: list[str], stop_words: frozenset[str]) -> int:
    """Distinct stop words among the tokens; Chinese entries of two characters match adjacent characters."""
    found = set(stop_words.intersection(map(str.lower, tokens)))
    pairs = [word for word in stop_words if len(word) == 2 and _CJK.match(word)]
    if pairs:
        joined = "".join(tokens)
        found.update(word for word in pairs if word in joined)
    return len(found)


def english_stop_word_ratio(tokens: list[str]) -> float:
    if not tokens:
        return 0.0
    return sum(1 for token in tokens if token.lower() in ENGLISH_RATIO_STOP_WORDS) / len(tokens)


# ---------------------------------------------------------------------------------------------------------
# Repetition (Gopher, Rae et al. 2021, Table A1; the same definitions as datatrove's GopherRepetitionFilter)


def duplicates(elements: Iterable[str]) -> tuple[int, int]:
    """(number of elements seen before, characters in them)."""
    seen: set[str] = set()
    count = chars = 0
    for element in elements:
        if element in seen:
            count += 1
            chars += len(element)
        else:
            seen.add(element)
    return count, chars


def top_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (its length times its count)."""
    if len(tokens) < n:
        return 0
    counts = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    gram, count = counts.most_common(1)[0]
    return len(gram) * count


def duplicated_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters in word n-grams that repeat an earlier n-gram (a repeat skips its n words)."""
    seen: set[str] = set()
    chars = index = 0
    while index < len(tokens) - n + 1:
        gram = "".join(tokens[index : index + n])
        if gram in seen:
            chars += len(gram)
            index += n
        else:
            seen.add(gram)
            index += 1
    return chars


def character_repetition_ratio(text: str, n: int) -> float:
    """OBELICS/BigScience character repetition: the occurrences of the sqrt(k) most frequent character n-grams
    (k distinct n-grams; only repeated ones count) over all n-gram occurrences."""
    if len(text) < n:
        return 0.0
    counts = sorted(Counter(text[i : i + n] for i in range(len(text) - n + 1)).values(), reverse=True)
    repeated = sum(1 for count in counts if count > 1)
    top = min(int(math.sqrt(len(counts))), repeated)
    return sum(counts[:top]) / sum(counts)


def word_repetition_ratio(tokens: list[str], n: int) -> float:
    """OBELICS/BigScience word repetition: occurrences of word n-grams seen more than once over all of them."""
    if len(tokens) < n:
        return 0.0
    counts = Counter(" ".join(tokens[i : i + n]).lower() for i in range(len(tokens) - n + 1)).values()
    return sum(count for count in counts if count > 1) / sum(counts)
