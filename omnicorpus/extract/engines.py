"""Main-text engines: what the main text of a page is, as a tree of blocks that `layout.interleave` places.

The engine only decides the text. Images are placed afterwards from the page's DOM (`align.py`, `layout.py`),
by locating the engine's text in the page, so any text-only extractor whose output is page text can stand here.
Both engines return a `<body>` element whose children are blocks in trafilatura's output vocabulary (`head`,
`p`, `list`/`item`, `table`/`row`/`cell`, `lb` for a line break), or None when the page has no main text.

- `trafilatura` (the default): trafilatura's text-only extraction on the lxml tree the images were resolved in
  (one parse), with its regular-expression XPath tests guarded (`xpath_guards.py`: same output, less time).
  Headings, lists and tables keep their structure.
- `resiliparse`: resiliparse's `extract_plain_text(main_content=True)`, 2.6 ms a page against trafilatura's 10–11 ms
  in fast mode on the shared pages, with the page furniture its main-content pass keeps hidden from it first and
  headings left without a section dropped after (`boilerplate.py`, 1.3 ms more); the stage falls back to
  trafilatura where its text is under `extract.resiliparse_min_chars` (docs/extraction.md has both engines
  measured). It parses the lxml tree serialized again with its own parser (lexbor; cheaper than what it saves).
  Its output is plain text:
  blocks separated by a blank line, lines by a newline, table cells by two tabs; so headings are blocks like
  paragraphs, and list items are lines.
"""

from __future__ import annotations

import re

from lxml import etree

from omnicorpus.extract.boilerplate import boilerplate_elements, drop_orphan_headings
from omnicorpus.extract.xpath_guards import guard_trafilatura

ENGINES = ("trafilatura", "resiliparse")
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
# resiliparse separates the cells of a table row with two tabs.
_RESILIPARSE_CELL = "\t\t"


def trafilatura_body(tree, url: str, config):
    """trafilatura, text only, on `tree` (it works on its own copy: the tree is not changed)."""
    from trafilatura import bare_extraction

    guard_trafilatura()  # its regular-expression tests behind plain XPath guards: the same output, less time

    result = bare_extraction(
        tree,
        url=url,
        include_images=False,
        include_tables=config.include_tables,
        include_comments=config.include_comments,
        favor_precision=config.favor == "precision",
        favor_recall=config.favor == "recall",
        fast=config.fast,
        with_metadata=False,
        deduplicate=False,
    )
    return None if result is None else result.body


def resiliparse_body(tree, config):
    """resiliparse's main-content plain text as `<p>` blocks of lines (`<lb/>` between lines).

    resiliparse reads the page as lxml parsed it (serialized again: 0.5 ms for a 150 KB page), not the raw HTML.
    Its main-content pass takes time that grows with the square of the nesting depth, in one C call no timeout
    can interrupt (100,000 nested <div> took 260 CPU seconds), and libxml2 stops nesting at 256 levels; both
    views of the page also come from the same parse, so the extracted text is found in the page more often.
    """
    from resiliparse.extract.html2text import extract_plain_text

    # Hidden from resiliparse for this one serialization (it honours the attribute), then shown again.
    hidden = [element for element in boilerplate_elements(tree) if element.get("hidden") is None] \
        if config.resiliparse_boilerplate else []
    try:
        for element in hidden:
            element.set("hidden", "hidden")
        html = etree.tostring(tree, method="html", encoding="unicode")
    finally:
        for element in hidden:
            element.attrib.pop("hidden", None)
    text = extract_plain_text(
        html,
        preserve_formatting=True,
        main_content=True,
        # Nothing that is not page text, or the text could not be located in the page: no bullets or numbers
        # for list items, no alt texts (image context comes from the DOM), no link targets, no form values.
        list_bullets=False,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=config.include_comments,
        # No bylines and dates ("von · 22. Oktober 2019"): +0.002 text F1 on the shared pages (bench/fidelity.py).
        post_meta=False,
        skip_elements=None if config.include_tables else ["table"],
    )
    body = blocks_of(text)
    if body is not None and config.resiliparse_boilerplate:
        drop_orphan_headings(body, tree)
    return body if body is not None and len(body) else None


def blocks_of(text: str):
    """Plain text → `<body>` with one `<p>` per block (blank-line separated) and `<lb/>` between its lines; a
    line of tab-separated cells becomes `cell` elements of a `row`, so the slot rule renders " | " between them."""
    body = etree.Element("body")
    for block in _BLANK_LINE.split(text):
        lines = [line.strip(" \n\r\f\v") for line in block.split("\n")]
        lines = [line for line in lines if line.strip()]
        if not lines:
            continue
        paragraph = etree.SubElement(body, "p")
        for line in lines:
            if _RESILIPARSE_CELL in line:
                row = etree.SubElement(paragraph, "row")
                for cell_text in line.split(_RESILIPARSE_CELL):
                    if cell_text.strip():
                        etree.SubElement(row, "cell").text = cell_text.strip()
            elif len(paragraph) == 0 and paragraph.text is None:
                paragraph.text = line.strip()
            else:
                etree.SubElement(paragraph, "lb").tail = line.strip()
    return body if len(body) else None
