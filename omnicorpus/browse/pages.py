"""The browser's HTML pages. Every value from a document or a run goes through `markup.html()` (escaped).

Pages carry no script: charts are inline SVG, forms are plain GET/POST, and the server's CSP forbids script
altogether, so even a missed escape could not run code.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote, urlencode

from omnicorpus.browse.charts import KEPT_REJECTED, Series, bar_chart
from omnicorpus.browse.data import NO_VALUE, PAGE_SIZE, Overview, Run, SamplePage, SampleQuery
from omnicorpus.browse.labels import KEPT, LABELS, Label, ReasonRow
from omnicorpus.browse.markup import Markup, html, join, safe_link

PASSED_DROPPED = (Series("passed", "kept"), Series("dropped", "rejected"))
DROPPED = (Series("dropped", "rejected"),)
TOP_LANGUAGES = 20  # rows of the language chart


def page(title: str, body: Markup, runs: list[Run], current: Run | None = None) -> bytes:
    links = [html('<a href="/">runs</a>')]
    if current is not None:
        links += [html('<a href="{}">overview</a>', run_url(current)),
                  html('<a href="{}">samples</a>', run_url(current, "samples"))]
    if len(runs) > 1:
        links.append(html('<a href="/compare">compare</a>'))
    links.append(html('<a href="/labels">labels</a>'))
    where = html('<span class="run-name">{}</span>', current.name) if current is not None else ""
    document = html(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{} · omnicorpus browse</title><link rel="stylesheet" href="/static/style.css"></head>'
        '<body><header><span class="brand">omnicorpus browse</span>{}<nav>{}</nav></header>'
        '<main>{}</main></body></html>',
        title, where, join(links, " "), body)
    return document.encode("utf-8")


def run_url(run: Run, *parts: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """`/run/N/` for the overview, `/run/N/part/...` below it; every part percent-encoded."""
    path = "/run/" + "/".join([str(run.index), *(quote(part, safe="") for part in parts)])
    if not parts:
        path += "/"
    query = urlencode(list(params))
    return path + "?" + query if query else path


def document_url(run: Run, document_id: str) -> str:
    return run_url(run, "doc", document_id)


def samples_url(run: Run, **filters: str) -> str:
    return run_url(run, "samples", params=[(key, value) for key, value in filters.items() if value])


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], css_class: str = "") -> Markup:
    header = list(header)
    head = join(html("<th>{}</th>", cell) for cell in header)
    body = join(html("<tr>{}</tr>", join(html("<td>{}</td>", cell if isinstance(cell, Markup) else _number(cell))
                                         for cell in row)) for row in rows)
    body = body or html('<tr><td colspan="{}" class="empty">none</td></tr>', len(header))
    return html('<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', css_class, head, body)


# ---------------------------------------------------------------------------------------------------------
# Index: the opened runs, and how they compare.


def index_page(runs: list[Run], overviews: list[Overview]) -> Markup:
    rows = []
    for run, overview in zip(runs, overviews):
        rows.append([run.index, html('<a href="{}">{}</a>', run_url(run), run.name), str(run.root),
                     overview.counts["kept"], overview.counts["rejected"],
                     "complete" if run.complete else "no _SUCCESS (unfinished?)",
                     html('<a href="{}">samples</a>', run_url(run, "samples"))])
    body = [html("<h1>Opened runs</h1>"),
            _table(["#", "run", "folder", "kept", "rejected", "state", ""], rows, "runs")]
    if len(runs) > 1:
        body.append(_comparison_tables(runs, overviews))
    return join(body)


def _comparison_tables(runs: list[Run], overviews: list[Overview]) -> Markup:
    header = ["", *(f"#{run.index} {run.name}" for run in runs)]
    stages = list(dict.fromkeys(name for run in runs for name in ((run.stats or {}).get("stages") or {})))
    stage_rows = [["documents in", *(((run.stats or {}).get("funnel") or {}).get("input", "") for run in runs)]]
    for stage in stages:
        stage_rows.append([f"after {stage}", *(((run.stats or {}).get("stages") or {}).get(stage, {}).get("kept", "")
                                               for run in runs)])
    stage_rows.append(["kept (files)", *(overview.counts["kept"] for overview in overviews)])
    counts = [dict(overview.drop_reasons) for overview in overviews]
    reasons = sorted({reason for one in counts for reason in one})
    reason_rows = [[reason, *(one.get(reason, 0) for one in counts)] for reason in reasons]
    pairs = join(html('<li><a href="/compare?a={}&amp;b={}">#{} {} → #{} {}</a></li>', a.index, b.index, a.index,
                      a.name, b.index, b.name) for a in runs for b in runs if a.index < b.index)
    return html('<h2>Comparison</h2><div class="columns"><section><h3>Funnel</h3>{}</section>'
                '<section><h3>Drop reasons</h3>{}</section></div>'
                '<h3>Document by document</h3><ul>{}</ul>',
                _table(header, stage_rows, "numbers"), _table(header, reason_rows, "numbers"), pairs)


def compare_page(first: Run, second: Run, transitions: list[tuple], changed: list[tuple], runs: list[Run]) -> Markup:
    choose = html('<form method="get" action="/compare" class="filters">{} → {} <button>compare</button></form>',
                  _run_select("a", runs, first), _run_select("b", runs, second))
    rows = [[fate_a, fate_b, count] for fate_a, fate_b, count in transitions]
    changed_rows = []
    for document_id, url, fate_a, fate_b in changed:
        changed_rows.append([
            html('<a href="{}">{}</a>', document_url(first, document_id), fate_a) if fate_a != "absent" else fate_a,
            html('<a href="{}">{}</a>', document_url(second, document_id), fate_b) if fate_b != "absent" else fate_b,
            safe_link(url)])
    return html('<h1>#{} {} → #{} {}</h1>{}<p>Each document id with its fate in both runs: <em>kept</em>, its drop '
                'reason, or <em>absent</em> when that run did not read it.</p><h2>Transitions</h2>{}'
                '<h2>Documents whose fate changed</h2><p>A seeded sample of at most 50.</p>{}',
                first.index, first.name, second.index, second.name, choose,
                _table([f"#{first.index} {first.name}", f"#{second.index} {second.name}", "documents"], rows,
                       "counts"),
                _table([f"#{first.index}", f"#{second.index}", "url"], changed_rows))


def _run_select(name: str, runs: list[Run], chosen: Run) -> Markup:
    options = join(html('<option value="{}"{}>#{} {}</option>', run.index,
                        Markup(" selected") if run.index == chosen.index else "", run.index, run.name) for run in runs)
    return html('<select name="{}">{}</select>', name, options)


# ---------------------------------------------------------------------------------------------------------
# Overview of one run.


def overview_page(run: Run, overview: Overview, unit_stats: list[dict[str, Any]]) -> Markup:
    stats = run.stats or {}
    funnel = stats.get("funnel") or {}
    stages = stats.get("stages") or {}
    kept, rejected = overview.counts["kept"], overview.counts["rejected"]
    summary = html('<p class="summary"><b>{}</b> documents in, <b>{}</b> kept, <b>{}</b> rejected{}</p>',
                   _number(funnel.get("input", kept + rejected)), _number(kept), _number(rejected),
                   "" if run.complete else html(' — <span class="warning">no _SUCCESS: the run may be unfinished'
                                                '</span>'))
    funnel_rows = [("documents in", [funnel.get("input", kept + rejected), 0])]
    funnel_rows += [(name, [stage["kept"], stage["input"] - stage["kept"]]) for name, stage in stages.items()]
    reason_rows = overview.drop_reasons
    charts = [
        bar_chart("Funnel: documents passing each stage", funnel_rows, PASSED_DROPPED,
                  lambda values: f"{values[0]:,} of {sum(values):,}" if values[1] else f"{values[0]:,}"),
        bar_chart("Drop reasons", [(reason, [count]) for reason, count in reason_rows], DROPPED),
        bar_chart("Languages", overview.languages[:TOP_LANGUAGES], KEPT_REJECTED),
        bar_chart(f"Domains (top {len(overview.domains)} of {overview.distinct_domains:,})", overview.domains),
        bar_chart("Images per document", overview.images_per_document),
        bar_chart("Text length (characters)", overview.text_chars),
    ]
    reason_table = _table(["drop reason", "documents", ""], [
        [reason, count, html('<a href="{}">samples</a>', samples_url(run, reason=reason))]
        for reason, count in reason_rows], "numbers")
    removed = [[stage, reason, count] for stage, data in stages.items()
               for reason, count in (data.get("removed_elements") or {}).items()]
    body = [html('<h1>{}</h1><p class="path">{}</p>', run.name, str(run.root)), summary,
            html('<div class="charts">{}</div>', join(charts)),
            html('<h2>Drop reasons</h2>{}', reason_table)]
    if removed:
        body.append(html("<h2>Elements removed from documents</h2>{}",
                         _table(["stage", "reason", "elements"], removed, "numbers")))
    if stats.get("image_status"):
        body.append(html("<h2>Image status</h2>{}",
                         _table(["status", "images"], stats["image_status"].items(), "numbers")))
    if unit_stats:
        rows = [_unit_row(unit) for unit in unit_stats]
        body.append(html("<h2>Per input unit</h2>{}",
                         _table(["unit", "input", "documents", "kept", "dropped"], rows, "numbers")))
    body.append(_config_section(run))
    return join(body)


def _unit_row(unit: dict[str, Any]) -> list[Any]:
    """One line of stats/<unit>.json: documents into the first stage, out of the last, drops on the way."""
    stages = list((unit.get("stages") or {}).values())
    dropped = ", ".join(f"{reason} {count}" for stage in stages
                        for reason, count in (stage.get("dropped") or {}).items())
    return [unit.get("unit"), unit.get("input"), stages[0].get("input") if stages else "",
            stages[-1].get("kept") if stages else "", dropped or "-"]


def _config_section(run: Run) -> Markup:
    info = run.run_info or {}
    files = [name for name in ("run.json", "stats.json") if (run.root / name).is_file()]
    links = join(html('<a href="{}">{}</a> ', run_url(run, "file", name), name) for name in files)
    facts = [[key, info.get(key)] for key in ("config_source", "config_hash", "schema_version", "omnicorpus_version",
                                              "runner", "code_revision", "started", "finished") if key in info]
    inputs = info.get("inputs") or []
    return html('<h2>Configuration</h2><p>Files: {}</p>{}<h3>Inputs ({})</h3><pre>{}</pre>'
                '<h3>Resolved config</h3><pre class="config">{}</pre>',
                links or "none", _table(["", ""], facts, "facts"), len(inputs), "\n".join(map(str, inputs[:200])),
                json.dumps(info.get("config"), indent=2, ensure_ascii=False) if info else "no run.json")


# ---------------------------------------------------------------------------------------------------------
# Samples: filters, kept and rejected side by side.


def samples_page(run: Run, overview: Overview, query: SampleQuery, pages: list[SamplePage]) -> Markup:
    permalink = run_url(run, "samples", params=query.to_params())
    pager = _pager(run, query, max(page.total for page in pages))
    columns = join(_sample_column(run, sample_page) for sample_page in pages)
    return html('<h1>Samples</h1>{}<p class="permalink">Seed {}: <a href="{}">link to this sample</a> · '
                '<a href="{}">new random sample</a></p>{}<div class="columns samples">{}</div>{}',
                _filter_form(run, overview, query), query.seed, permalink,
                run_url(run, "samples", params=[(k, v) for k, v in query.to_params() if k not in ("seed", "page")]),
                pager, columns, pager)


def _filter_form(run: Run, overview: Overview, query: SampleQuery) -> Markup:
    def text_input(name: str, label: str, value: str, datalist: str = "", placeholder: str = "") -> Markup:
        return html('<label>{} <input type="text" name="{}" value="{}" list="{}" placeholder="{}"></label>',
                    label, name, value, datalist, placeholder)

    def number_input(name: str, value: Any, placeholder: Any = "") -> Markup:
        return html('<input type="number" step="any" name="{}" value="{}" placeholder="{}">',
                    name, "" if value is None else f"{value:g}", _number(placeholder))

    languages = join(html('<option value="{}">', value) for value, _ in overview.languages)
    domains = join(html('<option value="{}">', value) for value, _ in overview.domains)
    reasons = join(html('<option value="{}"{}>{}</option>', reason,
                        Markup(" selected") if reason == query.reason else "", reason)
                   for reason, _ in overview.drop_reasons)
    signal_values = {name: (low, high) for name, low, high in query.signal_ranges}
    signal_inputs = []
    for name in run.numeric_signals:
        low, high = signal_values.get(name, (None, None))
        seen = overview.signal_ranges.get(name, (None, None))
        inputs = (number_input(f"min.{name}", low, seen[0]), number_input(f"max.{name}", high, seen[1]))
        signal_inputs.append(html('<label class="range">{} {} – {}</label>', name, *inputs))
    return html(
        '<form method="get" action="{}" class="filters" id="filters">'
        '<input type="hidden" name="seed" value="{}">'
        '{} {} {} {}'
        '<label>drop reason (rejected column) <select name="reason"><option value="">any</option>{}</select></label>'
        '<label class="range">images {} – {}</label>{}'
        '<button type="submit">apply</button> <a href="{}">clear</a>'
        '<datalist id="languages">{}</datalist><datalist id="domains">{}</datalist></form>',
        run_url(run, "samples"), query.seed,
        text_input("language", "language", query.language, "languages", NO_VALUE),
        text_input("domain", "domain", query.domain, "domains"),
        text_input("url", "URL contains", query.url),
        text_input("q", "text contains", query.text, placeholder="all words"),
        reasons, number_input("min_images", query.min_images, 0), number_input("max_images", query.max_images),
        join(signal_inputs), run_url(run, "samples", params=[("seed", str(query.seed))]), languages, domains)


def _pager(run: Run, query: SampleQuery, largest_total: int) -> Markup:
    pages = max((largest_total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    links = []
    if query.page > 0:
        links.append(html('<a href="{}" rel="prev">← previous</a>',
                          run_url(run, "samples", params=query.with_page(query.page - 1).to_params())))
    links.append(html("<span>page {} of {}</span>", query.page + 1, pages))
    if query.page + 1 < pages:
        links.append(html('<a href="{}" rel="next">next →</a>',
                          run_url(run, "samples", params=query.with_page(query.page + 1).to_params())))
    return html('<p class="pager">{}</p>', join(links, " "))


def _sample_column(run: Run, sample_page: SamplePage) -> Markup:
    cards = []
    for card in sample_page.cards:
        reason = html('<span class="reason">{}</span>', card.drop_reason) if card.drop_reason else ""
        cards.append(html(
            '<article class="card {}" data-id="{}"><h3><a href="{}">{}</a></h3>'
            '<p class="meta">{} · {} · {} · {} images · {} chars {}</p>'
            '<p class="url">{}</p><p class="snippet">{}</p>'
            '</article>',
            card.status, card.id, document_url(run, card.id), card.title or card.url or card.id,
            card.domain or NO_VALUE,
            card.language or NO_VALUE, card.id, card.image_count, _number(card.text_chars), reason,
            card.url or "", card.snippet))
    empty = html('<p class="empty">no {} document matches</p>', sample_page.status) if not cards else ""
    return html('<section class="column {}" id="{}"><h2>{} <span class="count">{}</span></h2>{}{}</section>',
                sample_page.status, sample_page.status, sample_page.status, _number(sample_page.total), join(cards),
                empty)


# ---------------------------------------------------------------------------------------------------------
# One document in reading order.


def reading_order(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Slots in page order, with removed elements put back where they stood.

    `removed[k].position` is the slot index just before removal k, so undoing the removals last-first puts
    each one back. Removing an image between two texts also merged those texts into one slot; the merged
    block cannot be split again, so undoing such a removal adds an empty "continued" item after the image to
    keep later positions right. Whether a text followed the image is not recorded: an image removed right
    after a text is assumed to have been followed by one (the common case of an image between paragraphs).
    Items: ("slot", index), ("removed", element) and ("continued", None), which renders as nothing.
    """
    texts = document["texts"]

    def is_text(item: tuple[str, Any]) -> bool:
        kind, value = item
        return (kind == "continued" or (kind == "slot" and texts[value] is not None)
                or (kind == "removed" and value.get("kind") == "text"))

    items: list[tuple[str, Any]] = [("slot", index) for index in range(len(texts))]
    for element in reversed(document["removed"]):
        position = element.get("position")
        position = len(items) if position is None else min(max(position, 0), len(items))
        items.insert(position, ("removed", element))
        merged = (element.get("kind") == "image" and position > 0 and is_text(items[position - 1])
                  and (position + 1 == len(items) or not is_text(items[position + 1])))
        if merged:
            items.insert(position + 1, ("continued", None))
    return items


def document_page(run: Run, document: dict[str, Any], label: Label | None, token: str, reasons: list[str]) -> Markup:
    status = (html('<span class="badge kept">kept</span>') if document["status"] == "kept" else
              html('<span class="badge rejected">dropped: <a href="{}">{}</a></span>',
                   samples_url(run, reason=document["drop_reason"] or ""), document["drop_reason"]))
    error = html('<pre class="error">{}</pre>', document["error"]) if document.get("error") else ""
    body = join(_reading_item(run, document, kind, value) for kind, value in reading_order(document))
    return html('<h1>{}</h1><p>{} {}</p>{}<div class="document-layout"><article class="document" id="content">{}'
                '</article><aside>{}{}{}</aside></div>',
                document.get("title") or document.get("url") or document["id"], status, safe_link(document.get("url")),
                error, body or html('<p class="empty">no slots</p>'), _label_form(run, document, label, token, reasons),
                _provenance(run, document), _signals(document))


def _reading_item(run: Run, document: dict[str, Any], kind: str, value: Any) -> Markup:
    if kind == "continued":
        return Markup("")
    if kind == "removed":
        what = value.get("text") if value.get("kind") == "text" else value.get("image_url")
        return html('<div class="removed" data-position="{}"><span class="reason">removed: {}</span> <del>{}</del>'
                    '</div>', value.get("position"), value.get("reason"), what or "")
    slot = value
    text = document["texts"][slot]
    if text is not None:
        blocks = (join((html("{}", line) for line in block.split("\n")), "<br>") for block in text.split("\n\n"))
        return html('<div class="text" data-slot="{}">{}</div>', slot, join(html("<p>{}</p>", b) for b in blocks))
    return _image(run, document, slot)


def _image(run: Run, document: dict[str, Any], slot: int) -> Markup:
    url = document["images"][slot]
    info = document["image_info"][slot] or {}
    facts = [f"{info['width']}×{info['height']}" if info.get("width") else "",
             info.get("format") or "", f"{info['byte_size']:,} B" if info.get("byte_size") else "",
             f"status {info.get('status')}" if info.get("status") else ""]
    caption = html('<figcaption>{} <span class="facts">{}</span>{}</figcaption>', safe_link(url),
                   " · ".join(fact for fact in facts if fact),
                   html('<br><span class="alt">alt: {}</span>', info["alt"]) if info.get("alt") else "")
    if document["status"] == "kept" and info.get("status") == "ok":
        source = run_url(run, "image", document["id"], str(slot))
        picture = html('<img src="{}" alt="{}" data-slot="{}"{}>', source, info.get("alt") or "", slot,
                       html(' width="{}" height="{}"', info["width"], info["height"]) if info.get("width") else "")
    else:
        why = "not stored: rejects are written without image bytes" if document["status"] != "kept" else \
            f"not stored ({info.get('status') or 'no status'})"
        picture = html('<div class="no-image" data-slot="{}">{}</div>', slot, why)
    return html('<figure class="image" data-slot="{}">{}{}</figure>', slot, picture, caption)


def _label_form(run: Run, document: dict[str, Any], label: Label | None, token: str, reasons: list[str]) -> Markup:
    if label is None:
        current = html('<p class="current-label">not labelled</p>')
    else:
        current = html('<p class="current-label">labelled <b class="label-{}">{}</b> {}{}</p>', label.label,
                       label.label, html("· rule {} ", label.rule) if label.rule else "",
                       html("· {}", label.note) if label.note else "")
    buttons = join(html('<button type="submit" name="label" value="{}" class="label-{}">{}</button>', value, value,
                        value) for value in (*LABELS, "clear"))
    rules = join(html('<option value="{}">', reason) for reason in reasons)
    return html('<section class="labels"><h2>Label</h2>{}<form method="post" action="{}">'
                '<input type="hidden" name="token" value="{}">'
                '<label>note <input type="text" name="note" value="{}"></label>'
                '<label>rule <input type="text" name="rule" value="{}" list="rules"></label>'
                '<datalist id="rules">{}</datalist><p>{}</p></form></section>',
                current, run_url(run, "doc", document["id"], "label"), token, label.note if label else "",
                label.rule if label else "", rules, buttons)


def _provenance(run: Run, document: dict[str, Any]) -> Markup:
    filename = document.get("filename") or ""
    try:
        filename = str(Path(filename).relative_to(run.root))
    except ValueError:
        pass
    score = document.get("language_score")
    rows = [
        ["id", document["id"]],
        ["source", safe_link(document.get("url"))],
        ["domain", document.get("domain")],
        ["language", f"{document.get('language') or NO_VALUE}" + (f" ({score:.3f})" if score is not None else "")],
        ["crawl", document.get("crawl")],
        ["fetched", document.get("fetch_time")],
        ["WARC file", document.get("warc_file")],
        ["WARC offset", document.get("warc_offset")],
        ["WARC length", document.get("warc_length")],
        ["WARC record", document.get("warc_record_id")],
        ["stored in", f"{filename} row {document.get('file_row_number')}"],
    ]
    return html('<section class="provenance"><h2>Provenance</h2>{}</section>', _table(["", ""], rows, "facts"))


def _signals(document: dict[str, Any]) -> Markup:
    rows = sorted(document["signals"].items())
    return html('<section class="signals"><h2>Signals</h2>{}</section>',
                _table(["signal", "value"], rows, "facts") if rows else html("<p>none</p>"))


# ---------------------------------------------------------------------------------------------------------
# Labels.


def labels_page(labels: list[tuple[Label, Run | None]], reasons: list[ReasonRow]) -> Markup:
    reason_rows = []
    for row in reasons:
        rate = "" if row.false_positive_rate is None else f"{row.false_positive_rate:.0%}"
        reason_rows.append([row.reason, row.labelled, row.good, row.bad, rate])
    kept = next((row for row in reasons if row.reason == KEPT), None)
    missed = (html("<p>Kept documents labelled bad (missed by the filters): <b>{}</b> of {}.</p>", kept.bad,
                   kept.labelled) if kept else "")
    label_rows = []
    for label, run in labels:
        target = html('<a href="{}">{}</a>', document_url(run, label.id), label.id) if run else label.id
        label_rows.append([html('<span class="label-{}">{}</span>', label.label, label.label), target,
                           label.drop_reason or KEPT, label.rule, label.note, safe_link(label.url), label.labelled_at,
                           label.run])
    return html(
        '<h1>Labels</h1><p class="exports">Export the labelled set: <a href="/labels/export.jsonl">JSONL</a> · '
        '<a href="/labels/export.parquet">Parquet</a> · false positives as <a href="/labels/false-positives.csv">CSV'
        '</a></p><h2>False positives by drop reason</h2><p>Dropped documents an auditor labelled good, over all '
        'labelled documents with that reason.</p>{}{}<h2>All labels ({})</h2>{}',
        _table(["drop reason", "labelled", "good", "bad", "false-positive rate"], reason_rows, "numbers fp"), missed,
        len(labels), _table(["label", "document", "drop reason", "rule", "note", "url", "labelled at", "run"],
                            label_rows, "label-list"))


def error_page(status: int, message: str) -> Markup:
    return html('<h1>{}</h1><p class="error">{}</p><p><a href="/">back to the runs</a></p>', status, message)
