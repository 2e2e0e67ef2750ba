"""qkvae.stream.ahead: the next item is made while the caller works, in order, errors and context kept."""

import contextvars
import threading

import pytest

from qkvae.stream import ahead


def test_items_come_in_order_and_an_empty_iterable_gives_none():
    assert list(ahead(iter(range(7)))) == list(range(7))
    assert list(ahead([])) == []


def test_the_next_item_is_made_while_the_caller_holds_this_one():
    second_started = threading.Event()

    def items():
        yield 1
        second_started.set()
        yield 2

    it = ahead(items())
    assert next(it) == 1
    assert second_started.wait(timeout=10)  # no further next() call: the thread made it on its own
    assert list(it) == [2]


def test_an_error_reaches_the_caller_after_the_items_before_it():
    def items():
        yield "a"
        yield "b"
        raise ValueError("entry 2 is broken")

    got = []
    with pytest.raises(ValueError, match="entry 2 is broken"):
        for item in ahead(items()):
            got.append(item)
    assert got == ["a", "b"]


def test_closing_waits_for_the_item_in_flight():
    release, finished = threading.Event(), threading.Event()

    def items():
        yield 1
        release.wait(timeout=10)
        finished.set()
        yield 2

    it = ahead(items())
    assert next(it) == 1
    threading.Timer(0.2, release.set).start()
    it.close()
    assert finished.is_set()  # close returned only after the background thread let go of the source


def test_the_thread_sees_the_callers_context():
    request = contextvars.ContextVar("request")
    request.set("event-7")

    def items():
        for _ in range(3):
            yield request.get(None)

    assert list(ahead(items())) == ["event-7"] * 3
