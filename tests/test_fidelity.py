"""The fidelity metrics bench/fidelity.py reports."""

import pytest
from lxml import html as lxml_html

from omnicorpus.extract.fidelity import (image_candidates, image_scores, kendall_tau, normalize_url, same_picture,
                                         snippet_scores, token_f1, tokens)


def test_tokens_are_casefolded_words_and_single_cjk_characters():
    assert tokens("Hello, WORLD! 42 times") == ["hello", "world", "42", "times"]
    assert tokens("漢字とカナ abc한국") == ["漢", "字", "と", "カ", "ナ", "abc", "한", "국"]
    assert tokens("é") == tokens("e\u0301")  # the same text in NFC or NFD


def test_token_f1_counts_repeated_words_once_each():
    scores = token_f1("the cat the cat sat", "the cat sat on the mat")
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (4, 1, 2)
    assert scores.precision == pytest.approx(0.8) and scores.recall == pytest.approx(4 / 6)
    assert token_f1("", "").f1 == 1.0 and token_f1("x", "y").f1 == 0.0


def test_snippets_follow_trafilaturas_protocol_weighted_by_tokens():
    text = "Der Bundestag hat heute beschlossen. Kommentare: Zum Weiterlesen hier klicken."
    scores = snippet_scores(text, ["Bundestag hat heute", "nicht im Text"], ["Zum Weiterlesen", "Impressum"])
    assert (scores.true_positives, scores.false_negatives, scores.false_positives) == (3, 3, 2)


def test_a_snippet_cut_inside_words_is_found_and_spacing_does_not_matter():
    # evaldata.json's snippets were cut at arbitrary characters: "runggelenk" is the end of "Sprunggelenk".
    text = "Kim wurde am Sprunggelenk\noperiert, hieß es.\n\nMehr lesen"
    scores = snippet_scores(text, ["runggelenk operiert", "Sprunggelenk operiert, hieß"], ["Mehr lesen"])
    assert (scores.true_positives, scores.false_negatives, scores.false_positives) == (5, 0, 2)


def test_kendall_tau():
    assert kendall_tau([0, 1, 2, 3]) == 1.0
    assert kendall_tau([3, 2, 1, 0]) == -1.0
    assert kendall_tau([0, 2, 1]) == pytest.approx(1 / 3)
    assert kendall_tau([5]) is None


def test_image_scores_pair_repeated_urls_in_order():
    corner, photo, logo = "http://x/corner.gif", "http://x/photo.jpg", "http://x/logo.png"
    expected = [frozenset({corner}), frozenset({photo}), frozenset({corner})]
    scores = image_scores([logo, corner, photo, corner], expected)
    assert (scores.matched, scores.extracted, scores.expected) == (3, 4, 3)
    assert scores.recall == 1.0 and scores.precision == 0.75 and scores.kendall_tau == 1.0
    assert image_scores([photo, corner], expected).kendall_tau == -1.0


def test_urls_are_compared_resolved_and_decoded_and_data_uris_do_not_count():
    base = "http://fakehost/test/page.html"
    assert normalize_url("../img/a%20b.png#x", base) == "http://fakehost/img/a b.png"
    assert normalize_url("HTTP://FakeHost/a.png") == "http://fakehost/a.png"
    assert normalize_url("data:image/png;base64,iVBOR", base) is None


def test_an_expected_image_is_matched_by_any_url_the_page_gives_for_the_same_img():
    base = "http://fakehost/test/page.html"
    source = lxml_html.fromstring('<div><img src="data:image/gif;base64,R0lG" data-src="/a-800.jpg" '
                                  'srcset="/a-400.jpg 400w, /a-1600.jpg 1600w"><img src="/b.jpg"></div>')
    expected = lxml_html.fromstring('<div><img src="/a-800.jpg"></div>')
    page_images = [image_candidates(img, base) for img in source.iter("img")]
    (widened,) = same_picture([image_candidates(img, base) for img in expected.iter("img")], page_images)
    assert widened == {"http://fakehost/a-800.jpg", "http://fakehost/a-400.jpg", "http://fakehost/a-1600.jpg"}
