"""Paragraph removal: the Document helper's invariants, and every paragraph rule's exact removal reason."""

import random

import pytest

from omnicorpus.document import TEXT_BLOCK_SEPARATOR
from omnicorpus.filters.base import document_paragraphs, remove_paragraphs
from omnicorpus.filters.paragraphs import ParagraphRules, ParagraphRulesConfig
from omnicorpus.schema import row_violations
from omnicorpus.stage import StageStats, run_stage
from tests.builders import SENTENCES, make_document

IMAGE = "img:https://example.org/picture.jpg"
GOOD = SENTENCES[0] + " " + SENTENCES[1]


def valid(document) -> bool:
    return row_violations(document.to_row()) == []


# ---------------------------------------------------------------------------------------------------------
# Document.remove_paragraph


def test_removing_a_middle_paragraph_keeps_the_others_and_records_it():
    document = make_document("First one.\n\nSecond one.\n\nThird one.", IMAGE)
    document.remove_paragraph(0, 1, "test.rule")
    assert document.texts == ["First one.\n\nThird one.", None]
    assert document.removed == [{"position": 0, "kind": "text", "reason": "test.rule", "text": "Second one.",
                                 "image_url": None}]
    assert valid(document)


def test_removing_the_last_paragraph_of_a_slot_between_images_removes_the_slot():
    document = make_document(IMAGE, "Only paragraph.", IMAGE.replace("picture", "b"), "Tail.")
    document.remove_paragraph(1, 0, "test.rule")
    assert document.images == ["https://example.org/picture.jpg", "https://example.org/b.jpg", None]
    assert document.texts == [None, None, "Tail."]
    assert len(document.image_info) == len(document.image_bytes) == 3
    assert document.removed[0]["position"] == 1 and document.removed[0]["text"] == "Only paragraph."
    assert valid(document)


def test_removing_a_paragraph_from_an_image_slot_is_an_error():
    document = make_document("Text.", IMAGE)
    with pytest.raises(ValueError, match="slot 1 is an image"):
        document.remove_paragraph(1, 0, "test.rule")


def test_random_removals_keep_the_invariants_and_account_for_every_paragraph():
    generator = random.Random(7)
    for trial in range(200):
        slots = []
        for index in range(generator.randint(1, 7)):
            if slots and not slots[-1].startswith("img:") or generator.random() < 0.4:
                slots.append(f"img:https://example.org/{trial}/{index}.jpg")
            else:
                slots.append(TEXT_BLOCK_SEPARATOR.join(f"p{index}.{k}" for k in range(generator.randint(1, 4))))
        document = make_document(*slots)
        before = [p.text for p in document_paragraphs(document)]
        images_before = [url for url in document.images if url]
        chosen = [p for p in document_paragraphs(document) if generator.random() < 0.5]
        expected_positions = sorted(((p.position, p.text) for p in chosen), reverse=True)
        remove_paragraphs(document, [(p, "test.rule") for p in chosen])
        assert valid(document) or not any(t is not None for t in document.texts)
        after = [p.text for p in document_paragraphs(document)]
        assert sorted(after + [r["text"] for r in document.removed]) == sorted(before)
        assert [url for url in document.images if url] == images_before
        # Recorded positions are the slots the paragraphs held in the document before the removals.
        assert sorted(((r["position"], r["text"]) for r in document.removed), reverse=True) == expected_positions


# ---------------------------------------------------------------------------------------------------------
# The paragraph rules


def rules(**config):
    return ParagraphRules(ParagraphRulesConfig(**config))


def removed_reasons(stage, document):
    kept, rejected = run_stage(stage, document, StageStats(), None)
    assert rejected is None, rejected.drop_reason
    return [(entry["reason"], entry["text"]) for entry in kept.removed]


ALL_RULES_ON = {"skip_rules": ()}

CASES = [
    # (rule, paragraph, next to an image, config)
    ("policy_notice", "This site uses cookies to improve your experience. Accept cookies?", False, {}),
    ("javascript_notice", "Please enable JavaScript in your browser to view this page.", False, {}),
    ("call_to_action", "Sign in to leave a comment", False, {}),
    ("share_counter", "Posted by Anna 1.2k likes", False, {}),
    ("read_more", "The museum opened its new wing on Saturday, and visitors were queueing... Read more »", False, {}),
    ("advertisement", "ADVERTISEMENT", False, {}),
    ("download_link", "For details on the schedule, click here to get the leaflet.", False, {}),
    ("image_credit", "Photo: Getty Images", True, {}),
    ("link_only", "https://example.org/museum/new-wing www.example.org", False, {}),
    ("too_few_words", "Opening hours", False, {}),
    ("too_many_words", " ".join(SENTENCES) + " And more words follow here today.", False, {"max_words": 100}),
    ("uppercase", "THE MUSEUM IS CLOSED ON MONDAYS AND TUESDAYS", False, {}),
    ("numeric", "2024 2025 1999 4711 0815 12345 67890", False, {}),
    ("special_characters", "Tickets ** for ## the @@ museum !! && ~~ ^^ <> [] {} || now", False, {}),
    ("character_repetition", "na na na na na na na na na na na na na na na na na na na na batman", False,
     ALL_RULES_ON),
    ("word_repetition", "buy cheap tickets now buy cheap tickets now buy cheap tickets now for the museum", False,
     {}),
    ("stop_word_ratio", "Curators restored paintings stored underground during three long years, experts say.",
     False, ALL_RULES_ON),
    ("no_punctuation", "Home Collections Exhibitions Visit Tickets Shop Membership Events Learning Research "
                       "Press Contact", False, {}),
]


@pytest.mark.parametrize("rule, paragraph, next_to_image, config", CASES, ids=[case[0] for case in CASES])
def test_each_paragraph_rule_removes_with_its_reason(rule, paragraph, next_to_image, config):
    if next_to_image:
        slots = (GOOD, IMAGE, paragraph, SENTENCES[2])
    else:
        slots = (f"{GOOD}\n\n{paragraph}\n\n{SENTENCES[3]}", IMAGE, SENTENCES[2])
    document = make_document(*slots, language="en")
    assert removed_reasons(rules(**config), document) == [(f"filter.paragraphs.{rule}", paragraph)]
    assert GOOD in document.text and valid(document)


def test_every_rule_has_a_case_and_can_be_skipped():
    assert {case[0] for case in CASES} == set(ParagraphRulesConfig.RULES)
    for rule, paragraph, next_to_image, config in CASES:
        document = make_document(f"{GOOD}\n\n{paragraph}\n\n{SENTENCES[3]}", IMAGE, language="en")
        stage = rules(**{**config, "skip_rules": (rule,)})
        assert (f"filter.paragraphs.{rule}", paragraph) not in removed_reasons(stage, document)


@pytest.mark.parametrize("caption", ["MONA LISA", "1503", "Detail", "Fig. 3 ** ## $$ @@"])
def test_short_captions_next_to_an_image_are_protected_from_shape_rules(caption):
    document = make_document(GOOD, IMAGE, caption + "\n\n" + SENTENCES[2], language="en")
    assert removed_reasons(rules(), document) == []
    away = make_document(f"{GOOD}\n\n{caption}\n\n{SENTENCES[3]}", IMAGE, SENTENCES[2], language="en")
    assert [text for _, text in removed_reasons(rules(), away)] == [caption]


def test_protection_covers_the_block_before_an_image_too_and_can_be_turned_off():
    caption = "THE MONA LISA BY LEONARDO"  # upper case, and longer than the 4-word minimum
    document = make_document(f"{GOOD}\n\n{caption}", IMAGE, SENTENCES[2], language="en")
    assert removed_reasons(rules(), document) == []
    document = make_document(f"{GOOD}\n\n{caption}", IMAGE, SENTENCES[2], language="en")
    assert removed_reasons(rules(protect_captions=False), document) == [("filter.paragraphs.uppercase", caption)]


def test_content_rules_still_apply_to_captions():
    document = make_document(GOOD, IMAGE, "ADVERTISEMENT", IMAGE.replace("picture", "b"), SENTENCES[2],
                             language="en")
    assert removed_reasons(rules(), document) == [("filter.paragraphs.advertisement", "ADVERTISEMENT")]
    assert document.images.count(None) == 2 and valid(document)


def test_a_document_left_without_text_is_dropped_with_its_removals_recorded():
    document = make_document("Sign in", IMAGE, "ADVERTISEMENT", language="en")
    kept, rejected = run_stage(rules(protect_captions=False), document, StageStats(), None)
    assert kept is None and rejected.drop_reason == "filter.paragraphs.no_text_left"
    assert [entry["reason"] for entry in rejected.removed] == ["filter.paragraphs.advertisement",
                                                               "filter.paragraphs.call_to_action"]


def test_removals_are_counted_per_reason_in_the_stage_stats():
    stats = StageStats()
    document = make_document(f"{GOOD}\n\nSign in\n\nRegister now", IMAGE, f"{SENTENCES[2]}\n\nOpening hours",
                             language="en")
    run_stage(rules(), document, stats, None)
    assert stats.removed == {"filter.paragraphs.call_to_action": 2, "filter.paragraphs.too_few_words": 1}
    assert stats.to_json()["removed_elements"]["filter.paragraphs.call_to_action"] == 2
