"""Reason sentences read well whatever the product data lacks."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.policy.reason_text import ReasonWriter


@pytest.fixture
def writer() -> ReasonWriter:
    return ReasonWriter(pd.DataFrame({"title": ["Oat milk 1L", None, "Oat milk 2L"],
                                      "category": ["Dairy > Milk", None, ""]}))


def test_new_product_names_its_category_when_it_has_one(writer: ReasonWriter) -> None:
    assert writer.text("new_in_category", 0, 2) == "new in milk, a category you buy"


@pytest.mark.parametrize(("item", "anchor", "sentence"), [
    (2, 0, "new, like Oat milk 1L"),
    (1, 0, "new, like Oat milk 1L"),
    (2, -1, "new, like what you buy"),
])
def test_new_product_without_category_says_what_it_resembles(
        writer: ReasonWriter, item: int, anchor: int, sentence: str) -> None:
    assert writer.text("new_in_category", item, anchor) == sentence


def test_every_sentence_is_complete(writer: ReasonWriter) -> None:
    codes = ["because_you_bought", "popular_in_category", "new_in_category", "buy_again",
             "trending", "popular", "personalized", "goes_with_basket", "similar_content",
             "unknown-code"]
    for code in codes:
        for item, anchor in ((0, 2), (1, -1), (2, 1)):
            text = writer.text(code, item, anchor)
            assert text and " , " not in text and not text.endswith((" ", "in")), (code, text)
