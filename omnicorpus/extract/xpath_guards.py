"""Cheaper equivalents of trafilatura's XPath expressions: its `re:test()` calls guarded by plain XPath tests.

trafilatura finds boilerplate and article containers with XPath expressions that call EXSLT's `re:test()` on
`@class`, `@id` and `@style`. lxml runs `re:test()` in Python, one call per element the step reaches, even for
an element that has none of the attributes tested; on the shared pages those callbacks are about half of
trafilatura's time (bench/extract_profile.py). Each call here is rewritten as

    re:test(@a|@b, 'pattern')  ->  ((@a or @b) and (contains(@a, 'frag') or ...) and re:test(@a|@b, 'pattern'))

where the first test is that an attribute exists at all and the second, used only when it takes a few
`contains()` calls, that it holds one of the literal fragments every match of the pattern must contain
(derived from Python's own parse of the pattern: lxml runs these tests with Python's `re`). Both are
necessary conditions of the regular expression matching (a pattern that matches the empty string gets no
guard), and XPath's `and` stops at the first false operand, so the guarded expression selects exactly the same
elements and the callback runs only where it can succeed. tests/test_xpath_guards.py checks that on the shared
pages and on generated attribute values; trafilatura's output is unchanged, 2.0–2.5 ms a page less (12.6 →
10.1–10.6 ms on the shared pages).

`guard_trafilatura()` compiles the guarded form of every such expression trafilatura's modules hold (lists are
changed in place, module attributes replaced in every module that imported them) and is idempotent;
`unguard_trafilatura()` puts the originals back, and `with unguarded():` runs a block without them (benchmarks
and tests compare both).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from re import _constants as sre_constants
from re import _parser as sre_parser

from lxml import etree

REGEXP_NS = "http://exslt.org/regular-expressions"
# re:test(<attribute paths joined by |>, '<pattern>' [, '<flags>']): the only form rewritten.
_REGEX_TEST = re.compile(r"re:test\(\s*((?:@[\w-]+\s*\|\s*)*@[\w-]+)\s*,\s*'([^']*)'\s*(?:,\s*'([^']*)'\s*)?\)")
# Namespace prefixes an expression uses (`self::div` is an axis, not a prefix), outside string literals.
_PREFIX = re.compile(r"(?<![\w:-])([A-Za-z_][\w.-]*):(?!:)")
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
# More `contains()` calls than this per test cost more than the callback they save (measured on the shared
# pages: a 60-fragment guard doubled the time of trafilatura's discard expression; 8 or 16 were no better than 4).
MAX_FRAGMENT_TESTS = 4
# Fragments shorter than this select almost everything: not worth a test.
MIN_FRAGMENT_CHARS = 2



class _Guards:
    """What `guard_trafilatura` changed, so that it can be undone."""

    def __init__(self):
        # (module or list that held an original expression, attribute name or index, original, guarded)
        self.places: list[tuple[object, str | int, etree.XPath, etree.XPath]] = []
        self.installed = False
        self.suspended = 0  # depth of `unguarded()` blocks
        self.lock = threading.Lock()  # threads extracting at once guard once

    def guarded_ids(self) -> set[int]:
        return {id(guarded) for _, _, _, guarded in self.places}


_STATE = _Guards()


def required_fragments(pattern: str, flags: str = "") -> list[str] | None:
    """Literal strings at least one of which every match of `pattern` contains, or None when there is no such
    set (case-insensitive patterns, unsupported syntax, a pattern that can match the empty string)."""
    if "i" in flags:
        return None
    try:
        parsed = sre_parser.parse(pattern)
    except (re.error, RecursionError):
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    fragments = _required(list(parsed))
    if fragments is None or any("'" in f and '"' in f for f in fragments):
        return None
    return sorted(fragments)


def _required(items: list) -> set[str] | None:
    """For a parsed sequence: the most selective set of literals one of which every match must contain."""
    options: list[set[str]] = []
    run = ""
    for op, argument in items:
        if op is sre_constants.LITERAL:
            run += chr(argument)
            continue
        if run:
            options.append({run})
            run = ""
        if op is sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, sub = argument
            if not add_flags and not del_flags:
                inner = _required(list(sub))
                if inner:
                    options.append(inner)
        elif op is sre_constants.BRANCH:
            branches = [_required(list(branch)) for branch in argument[1]]
            if all(branches):
                options.append(set().union(*branches))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and argument[0] >= 1:
            inner = _required(list(argument[2]))
            if inner:
                options.append(inner)
        # Anything else (classes, anchors, look-arounds, categories) only ends the literal run.
    if run:
        options.append({run})
    options = [option for option in options if min(map(len, option)) >= MIN_FRAGMENT_CHARS]
    if not options:
        return None
    best = max(options, key=lambda option: (min(map(len, option)), -len(option)))
    # A fragment holding another is implied by it: only the shorter one needs a test ("-comments", "omment").
    return {fragment for fragment in best if not any(other != fragment and other in fragment for other in best)}


def _literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'


def _guarded_test(match: re.Match) -> str:
    attributes = [name.strip() for name in match.group(1).split("|")]
    pattern, flags = match.group(2), match.group(3) or ""
    try:
        if re.search(pattern, "", re.IGNORECASE if "i" in flags else 0):
            return match.group(0)  # matches an element without the attributes too: no guard is necessary
    except re.error:
        return match.group(0)
    guards = [" or ".join(attributes)]
    fragments = required_fragments(pattern, flags)
    if fragments is not None and len(fragments) * len(attributes) <= MAX_FRAGMENT_TESTS:
        guards.append(" or ".join(f"contains({a}, {_literal(f)})" for a in attributes for f in fragments))
    return "(" + " and ".join(f"({guard})" for guard in guards) + f" and {match.group(0)})"


def guard_regex_tests(source: str) -> str:
    """`source` with each `re:test()` on attributes behind the guards described in the module docstring."""
    return _REGEX_TEST.sub(_guarded_test, source)


def guarded_xpath(expression: etree.XPath) -> etree.XPath | None:
    """The guarded equivalent of a compiled expression, or None when there is nothing to guard or the
    expression uses a namespace prefix other than `re` (its namespaces cannot be read back from the object)."""
    source = expression.path
    if "re:test" not in source:
        return None
    if set(_PREFIX.findall(_STRING_LITERAL.sub("''", source))) - {"re"}:
        return None
    guarded = guard_regex_tests(source)
    if guarded == source:
        return None
    return etree.XPath(guarded, namespaces={"re": REGEXP_NS})


def guard_trafilatura() -> int:
    """Guard every `re:test()` expression of the loaded trafilatura modules; returns how many were replaced
    (0 when they already are: the first call does the work, about 10 ms)."""
    if _STATE.installed or _STATE.suspended:
        return 0
    import trafilatura  # noqa: F401  (its modules must be loaded to be guarded)

    with _STATE.lock:
        if _STATE.installed or _STATE.suspended:
            return 0
        _STATE.installed = True
        return _guard_modules()


def _guard_modules() -> int:
    already = _STATE.guarded_ids()
    guarded: dict[int, etree.XPath | None] = {}  # by id of the original: one object shared stays shared

    def replacement(expression: etree.XPath) -> etree.XPath | None:
        if id(expression) in already:
            return None  # guarded already (a list shared by two modules is met twice)
        if id(expression) not in guarded:
            guarded[id(expression)] = new = guarded_xpath(expression)
            if new is not None:
                already.add(id(new))
        return guarded[id(expression)]

    for holder, key, original in _trafilatura_expressions():
        new = replacement(original)
        if new is not None:
            _STATE.places.append((holder, key, original, new))
            _put(holder, key, new)
    return sum(1 for new in guarded.values() if new is not None)


def _trafilatura_expressions():
    """(module or list, attribute or index, compiled expression) for every XPath object trafilatura's loaded
    modules hold, directly or in a module-level list."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "trafilatura" or name.startswith("trafilatura.")):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, etree.XPath):
                yield module, attribute, value
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, etree.XPath):
                        yield value, index, item


def unguard_trafilatura() -> None:
    """Put trafilatura's original expressions back where `guard_trafilatura` replaced them."""
    with _STATE.lock:
        for holder, key, original, _guarded in reversed(_STATE.places):
            _put(holder, key, original)
        _STATE.places.clear()
        _STATE.installed = False


@contextlib.contextmanager
def unguarded():
    """trafilatura's own expressions inside the block (`guard_trafilatura` does nothing there), the guards
    back after it if they were in place before."""
    was_guarded = _STATE.installed
    unguard_trafilatura()
    _STATE.suspended += 1
    try:
        yield
    finally:
        _STATE.suspended -= 1
        if was_guarded:
            guard_trafilatura()


def _put(holder, key, expression) -> None:
    if isinstance(holder, list):
        holder[key] = expression
    else:
        setattr(holder, key, expression)
