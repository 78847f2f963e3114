"""trafilatura's regular-expression XPath tests behind plain XPath guards select exactly what they did."""

import random
import re
import sys

import pytest
from lxml import etree

from omnicorpus.config import load_config
from omnicorpus.extract import xpath_guards
from omnicorpus.extract.decode import decode_html
from omnicorpus.extract.engines import trafilatura_body
from omnicorpus.extract.html import parse_html
from omnicorpus.extract.xpath_guards import (guard_regex_tests, guard_trafilatura, guarded_xpath,
                                             required_fragments, unguard_trafilatura, unguarded)
from omnicorpus.io.warc import RawPage, WarcReader
from tests.conftest import FIXTURES, WARCS


@pytest.fixture
def originals():
    """trafilatura's own expressions for the test (its modules loaded), the guards put back after it."""
    import trafilatura  # noqa: F401

    unguard_trafilatura()
    yield
    guard_trafilatura()


@pytest.mark.parametrize("pattern, flags, fragments", [
    ("cookie", "", ["cookie"]),
    ("^[Cc]omment(?!ary)|(?:article|post)-comments", "", ["omment"]),  # "-comments" holds "omment"
    ("post-body|post|entry", "", ["entry", "post"]),
    ("mvp-post-add-(?:box|wrap)|infinite-?scroll", "", ["infinite", "mvp-post-add-"]),
    ("(^|\\s)bottom|bottom(\\s|$)", "", ["bottom"]),
    ("(?:^| )ad-|dfp[Aa]d", "", ["ad-", "dfp"]),
    ("fulltext", "i", None),  # case-insensitive: a literal would not be necessary
    ("(?i)fulltext", "", None),
    ("a*", "", None),  # matches the empty string
    ("x|.*", "", None),  # one branch has no literal
    ("[", "", None),  # not a pattern
])
def test_required_fragments_are_what_every_match_contains(pattern, flags, fragments):
    assert required_fragments(pattern, flags) == fragments


def test_every_match_contains_a_required_fragment():
    rng = random.Random(7)
    patterns = ["^shar|social|bread-?crumb|(?:^| )ad-|dfp[Aa]d|^(?:nav|post-nav)", "^[Cc]omment(?!ary)|comol",
                "post[-_]text|post-?entry|(?:entry|page)-content|article(?:-|__)?body", "(^|\\s)link(\\s|$)"]
    alphabet = "abcdeilmnoprstuyACN-_ "
    for pattern in patterns:
        fragments = required_fragments(pattern)
        matched = 0
        for _ in range(20000):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            value = rng.choice(["", value]) + rng.choice(["", "social", "bread-crumb", "comment", "post_text",
                                                         "page-content", "articlebody", "dfpAd", " ad-x",
                                                         "link", "Commentary", "nav"]) + rng.choice(["", value])
            if re.search(pattern, value):
                matched += 1
                assert any(fragment in value for fragment in fragments), (pattern, value)
        assert matched > 500  # both outcomes exercised


def test_patterns_matching_nothing_in_particular_get_no_guard():
    assert guard_regex_tests("//*[re:test(@class, '^')]") == "//*[re:test(@class, '^')]"
    assert guard_regex_tests("//*[re:test(string(.), 'x')]") == "//*[re:test(string(.), 'x')]"  # not attributes
    assert guard_regex_tests("//*[re:test(@id|@class, 'cookie')]") == (
        "//*[((@id or @class) and (contains(@id, 'cookie') or contains(@class, 'cookie')) and "
        "re:test(@id|@class, 'cookie'))]")
    # Many fragments cost more as contains() calls than the callback: the attribute test alone.
    assert guard_regex_tests("//*[re:test(@class, 'a1|b2|c3|d4|e5')]") == (
        "//*[((@class) and re:test(@class, 'a1|b2|c3|d4|e5'))]")


def test_expressions_with_other_prefixes_are_left_alone():
    expression = etree.XPath("//*[x:f(@class) or re:test(@class, 'menu')]",
                             namespaces={"x": "urn:x", "re": xpath_guards.REGEXP_NS})
    assert guarded_xpath(expression) is None
    assert guarded_xpath(etree.XPath("//div[@class='menu']")) is None  # no regular expression
    axis = etree.XPath("//*[self::div][re:test(@class, 'menu')]", namespaces={"re": xpath_guards.REGEXP_NS})
    assert "contains(@class, 'menu')" in guarded_xpath(axis).path


def _trafilatura_expressions() -> list[tuple[str, etree.XPath]]:
    """trafilatura's own expressions that call re:test(), each once, named for the messages."""
    with unguarded():
        found = {id(expression): (f"{getattr(holder, '__name__', 'list')}.{key}", expression)
                 for holder, key, expression in xpath_guards._trafilatura_expressions()
                 if "re:test" in expression.path}
    return list(found.values())


def _attribute_values(source: str, rng: random.Random) -> list[str]:
    """Values built from the literals of the expression's patterns, cut, glued and case-changed."""
    words = set()
    for pattern in re.findall(r"re:test\([^,]+,\s*'([^']*)'", source):
        pieces = [piece for piece in re.split(r"[^\w-]+", pattern) if piece]
        words.update(pieces + [first + second for first, second in zip(pieces, pieces[1:])])
    words = sorted(words) + ["commentary", "Comment", "ad-slot", "x ad y", "hidden", "display:none", "hide-me"]
    values = ["", " "]
    for _ in range(400):
        value = rng.choice(words)
        value = rng.choice([value, value.upper(), value.capitalize(), value[1:], value[:-1]])
        values.append(rng.choice(["", rng.choice(words) + rng.choice([" ", "-", "_", ""])]) + value
                      + rng.choice(["", " " + rng.choice(words), "-x"]))
    return values


def test_each_guarded_trafilatura_expression_selects_the_same_elements():
    import trafilatura  # noqa: F401

    expressions = _trafilatura_expressions()
    assert len(expressions) >= 15  # the body, discard, comment and cleaning rules
    rng = random.Random(11)
    exercised = 0
    for name, expression in expressions:
        guarded = guarded_xpath(expression)
        assert guarded is not None, name
        tags = sorted(set(re.findall(r"self::(\w+)", expression.path)) | {"div", "span", "p", "section", "a"})
        values = _attribute_values(expression.path, rng)
        root = etree.Element("body")
        elements = [root]
        for _ in range(600):
            element = etree.SubElement(rng.choice(elements[-20:]), rng.choice(tags))
            for attribute in ("id", "class", "style", "role", "href"):
                if rng.random() < 0.6:
                    element.set(attribute, rng.choice(values))
            elements.append(element)
        selected = expression(root)
        assert guarded(root) == selected, name
        exercised += 0 < len(selected) < len(elements)
    assert exercised >= 0.8 * len(expressions)  # the generated pages exercised both outcomes


def _fixture_pages() -> list[tuple[str, str]]:
    pages = [(f"https://example.org/{name}", (FIXTURES / "html" / name / "source.html").read_text(encoding="utf-8"))
             for name in ("ehow-1", "hukumusume")]
    config = load_config("commoncrawl", {}).read
    for item in WarcReader(str(WARCS / "CC-MAIN-2020-34-excerpt-part-a.warc.gz"), config).read():
        if isinstance(item, RawPage) and item.payload:
            pages.append((item.url, decode_html(item.payload, item.content_type)[0]))
    return pages


def test_trafilatura_text_is_the_same_with_the_guards():
    config = load_config("commoncrawl", {}).extract
    pages = _fixture_pages()
    assert len(pages) >= 10

    def bodies():
        texts = []
        for url, html in pages:
            tree = parse_html(html)
            body = None if tree is None else trafilatura_body(tree, url, config)
            texts.append(None if body is None else etree.tostring(body, encoding="unicode"))
        return texts

    guard_trafilatura()
    with unguarded():  # trafilatura_body guards on first use, except in here
        plain = bodies()
        assert "(@id or @class)" not in sys.modules["trafilatura.xpaths"].OVERALL_DISCARD_XPATH[0].path
    assert guard_trafilatura() == 0  # the block put the guards back
    assert bodies() == plain
    assert sum(text is not None for text in plain) >= 8


def test_guarding_is_idempotent_and_undone(originals):
    overall = sys.modules["trafilatura.xpaths"].OVERALL_DISCARD_XPATH
    cleaning = sys.modules["trafilatura.settings"].BASIC_CLEAN_XPATH
    original = list(overall)
    assert guard_trafilatura() >= 15
    assert guard_trafilatura() == 0
    assert overall[0] is not original[0] and "(@id or @class)" in overall[0].path
    assert overall[0].path.count("(@id or @class)") == original[0].path.count("re:test(@id|@class")  # once each
    # A module attribute is replaced in every module that imported it.
    guarded_cleaning = sys.modules["trafilatura.settings"].BASIC_CLEAN_XPATH
    assert guarded_cleaning is not cleaning and sys.modules["trafilatura.baseline"].BASIC_CLEAN_XPATH is guarded_cleaning
    unguard_trafilatura()
    assert overall == original and sys.modules["trafilatura.baseline"].BASIC_CLEAN_XPATH is cleaning


def test_threads_guard_once(originals):
    from concurrent.futures import ThreadPoolExecutor

    unguard_trafilatura()
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: guard_trafilatura(), range(16)))
    assert sorted(counts)[-1] >= 15 and counts.count(0) == 15  # one thread did the work
    overall = sys.modules["trafilatura.xpaths"].OVERALL_DISCARD_XPATH[0].path
    assert overall.count("(@id or @class)") == 1
