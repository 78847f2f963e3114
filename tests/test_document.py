from omnicorpus import schema
from omnicorpus.document import Document, document_id
from tests.builders import make_document


def test_append_text_joins_blocks_with_a_blank_line():
    document = Document(id="x", url="https://example.org/")
    document.append_text("Heading")
    document.append_text("  Paragraph one.  ")
    document.append_text("   ")
    document.append_image("https://example.org/a.jpg")
    document.append_text("After the image.")
    assert document.texts == ["Heading\n\nParagraph one.", None, "After the image."]
    assert document.images == [None, "https://example.org/a.jpg", None]
    assert schema.row_violations(document.to_row()) == []


def test_removing_an_image_merges_the_texts_around_it_and_records_it():
    document = make_document("Before.", "img:https://example.org/logo.png", "After.")
    document.remove_slot(1, "images.url_ban_word")
    assert document.texts == ["Before.\n\nAfter."]
    assert document.images == [None]
    assert document.removed == [{"position": 1, "kind": "image", "reason": "images.url_ban_word", "text": None,
                                 "image_url": "https://example.org/logo.png"}]
    assert schema.row_violations(document.to_row()) == []


def test_removing_a_text_between_images_keeps_the_images_apart():
    document = make_document("img:https://example.org/a.jpg", "Share this!", "img:https://example.org/b.jpg")
    document.remove_slot(1, "filter.rules.social_media")
    assert document.images == ["https://example.org/a.jpg", "https://example.org/b.jpg"]
    assert document.removed[0]["text"] == "Share this!"
    assert document.removed[0]["kind"] == "text"


def test_document_ids_are_stable_and_distinct():
    assert document_id("<urn:uuid:1>") == document_id("<urn:uuid:1>")
    assert document_id("<urn:uuid:1>") != document_id("<urn:uuid:2>")
    assert len(document_id("<urn:uuid:1>")) == 24
    assert document_id(None, "a.warc", 10) != document_id(None, "a.warc", 11)


def test_text_property_skips_images():
    document = make_document("One.", "img:https://example.org/a.jpg", "Two.")
    assert document.text == "One.\n\nTwo."
    assert document.num_images == 1


def test_removals_before_a_drop_are_counted():
    from omnicorpus.stage import Stage, StageStats, run_stage

    class RemoveThenDrop(Stage):
        name = "filter.paragraphs"
        reasons = ("no_text_left",)

        def process(self, document):
            document.remove_slot(0, "filter.paragraphs.too_few_words")
            return "no_text_left"

    stats = StageStats()
    kept, rejected = run_stage(RemoveThenDrop(None), make_document("Hi.", "img:https://example.org/a.jpg"), stats, None)
    assert kept is None and rejected.drop_reason == "filter.paragraphs.no_text_left"
    assert stats.removed == {"filter.paragraphs.too_few_words": 1}
    assert stats.dropped == {"filter.paragraphs.no_text_left": 1}
