import pyarrow as pa
import pytest

from omnicorpus import schema
from omnicorpus.document import Document, from_table, to_table
from omnicorpus.pipeline import run_schema, stage_classes
from omnicorpus.config import PipelineConfig
from tests.builders import make_document

DESIGN_COLUMNS = [
    "id", "url", "domain", "title", "crawl", "fetch_time", "warc_file", "warc_record_id", "warc_offset",
    "warc_length", "texts", "images", "image_info", "image_bytes", "language", "language_score", "signals",
    "removed", "drop_reason", "error",
]


def test_schema_declares_the_design_columns_in_order():
    assert schema.column_names() == DESIGN_COLUMNS
    arrow = schema.document_schema({"word_count": "int64"})
    assert arrow.field("texts").type == pa.list_(pa.string())
    assert arrow.field("image_bytes").type == pa.list_(pa.binary())
    assert arrow.field("fetch_time").type == pa.timestamp("ms", tz="UTC")
    assert arrow.field("language_score").type == pa.float32()
    assert arrow.field("signals").type == pa.struct([pa.field("word_count", pa.int64())])
    info = arrow.field("image_info").type.value_type
    for name in ("alt", "width", "height", "format", "byte_size", "sha256", "phash", "dhash", "source", "status",
                 "dup_count"):
        assert info.get_field_index(name) >= 0, name
    assert not arrow.field("id").nullable and arrow.field("title").nullable


@pytest.mark.parametrize("text, expected", [
    ("list<struct<a: int32, b: list<string>>>", pa.list_(pa.struct([("a", pa.int32()), ("b", pa.list_(pa.string()))]))),
    ("timestamp[us, UTC]", pa.timestamp("us", tz="UTC")),
    ("float64", pa.float64()),
])
def test_type_strings_parse(text, expected):
    assert schema.parse_type(text) == expected


def test_unknown_type_string_is_an_error():
    with pytest.raises(ValueError, match="unknown type"):
        schema.parse_type("decimal<3>")


def test_every_stage_reason_is_declared():
    for stage in stage_classes(PipelineConfig()):
        stage.check_declared()
        for rule in stage.reasons:
            assert schema.is_declared_reason(f"{stage.name}.{rule}")


def test_undeclared_reasons_are_caught():
    assert schema.is_declared_reason("extract.no_text")
    assert schema.is_declared_reason("error.extract")
    assert not schema.is_declared_reason("extract.made_up")
    assert not schema.is_declared_reason("error.")


def _violations(document: Document) -> list[str]:
    return schema.row_violations(document.to_row())


def test_a_good_document_has_no_violations():
    assert _violations(make_document("Intro.", "img:https://example.org/a.jpg", "More.")) == []


@pytest.mark.parametrize("slots, message", [
    (("Intro.", "", "img:https://example.org/a.jpg"), "empty text"),
    (("Intro.", "Second text slot."), "two adjacent text slots"),
])
def test_invariant_violations_are_named(slots, message):
    assert any(message in problem for problem in _violations(make_document(*slots)))


def test_unequal_slot_lists_are_a_violation():
    document = make_document("Intro.", "img:https://example.org/a.jpg")
    document.image_bytes.append(None)
    assert "slot lists differ in length" in _violations(document)[0]


def test_slot_with_both_text_and_image_is_a_violation():
    document = make_document("Intro.", "img:https://example.org/a.jpg")
    document.texts[1] = "caption"
    assert any("exactly one" in problem for problem in _violations(document))


def test_undeclared_drop_reason_is_a_violation():
    document = make_document("Intro.", drop_reason="filter.invented")
    assert any("undeclared drop reason" in problem for problem in _violations(document))


def test_validate_table_catches_duplicate_ids_and_kept_with_reason():
    config = PipelineConfig()
    first = make_document("Text.", "img:https://example.org/a.jpg", doc_id="same")
    second = make_document("Other.", "img:https://example.org/b.jpg", doc_id="same")
    table = to_table([first, second], run_schema(config))
    with pytest.raises(schema.ContractError, match="duplicate id same"):
        schema.validate_table(table, kept=True)
    rejected = make_document("Text.", drop_reason="extract.no_image")
    with pytest.raises(schema.ContractError, match="kept document has drop_reason"):
        schema.validate_table(to_table([rejected], run_schema(config)), kept=True)


def test_table_round_trip_keeps_everything():
    document = make_document("Intro.", "img:https://example.org/a.jpg", "Outro.")
    document.image_bytes[1] = b"\x89PNG..."
    document.signals = {"text_chars": 12}
    document.remove_slot(2, "filter.rules.short")
    arrow = run_schema(PipelineConfig())
    (back,) = from_table(to_table([document], arrow))
    assert back == document


def test_undeclared_signal_field_is_refused():
    document = make_document("Intro.", signals={"not_declared": 1.0})
    with pytest.raises(schema.ContractError, match="undeclared signal fields"):
        to_table([document], run_schema(PipelineConfig()))
