"""Recent answers per customer, so a shopper browsing page after page costs one ranking.

An answer depends only on the bundle, the customer's live state (fresh events, consent,
erasure) and the question, so it can be reused until one of those changes. The engine
drops a customer's answers whenever it changes that customer's state, and a new bundle comes
with a new engine. An answer computed while any change was being applied is not kept: it may
have read the state from before the change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
QUESTIONS_PER_CUSTOMER = 8  # distinct filter/n combinations kept for one customer


class AnswerCache(Generic[T]):
    """A thread-safe LRU of answers keyed by customer (or by a key shared by customers who
    get the same answers), then by question."""

    def __init__(self, max_customers: int) -> None:
        self.max_customers = max_customers
        self._answers: OrderedDict[Hashable, dict[Hashable, T]] = OrderedDict()
        self._changes = 0  # bumped by every ``forget``
        self._lock = threading.Lock()

    def stamp(self) -> int:
        """Take before reading the state an answer is computed from; pass to ``put``."""
        return self._changes

    def get(self, customer_id: Hashable, question: Hashable) -> T | None:
        if self.max_customers <= 0:
            return None
        with self._lock:
            questions = self._answers.get(customer_id)
            if questions is None:
                return None
            self._answers.move_to_end(customer_id)
            return questions.get(question)

    def put(self, customer_id: Hashable, question: Hashable, answer: T, stamp: int) -> None:
        """Keep ``answer`` unless some customer's state changed since ``stamp``."""
        if self.max_customers <= 0:
            return
        with self._lock:
            if self._changes != stamp:
                return
            questions = self._answers.setdefault(customer_id, {})
            self._answers.move_to_end(customer_id)
            if len(questions) >= QUESTIONS_PER_CUSTOMER:
                questions.clear()
            questions[question] = answer
            while len(self._answers) > self.max_customers:
                self._answers.popitem(last=False)

    def forget(self, customer_id: Hashable) -> None:
        """Drop the customer's answers; call after changing the customer's state."""
        with self._lock:
            self._changes += 1
            self._answers.pop(customer_id, None)

    def forget_where(self, match: Callable[[Hashable], bool]) -> None:
        """Drop the answers of every key ``match`` accepts (an erasure known by hash only)."""
        with self._lock:
            self._changes += 1
            for key in [k for k in self._answers if match(k)]:
                del self._answers[key]

    def __len__(self) -> int:
        return len(self._answers)


__all__ = ["AnswerCache"]
