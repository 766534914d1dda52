"""Bounded waits shared by the end-to-end redis-py tests."""

import time

import pytest

from seedredis import HOST, PORT, TIMEOUT  # noqa: F401  (re-exported)


def wait_until(predicate, what, timeout=TIMEOUT):
    """Waits (bounded) until `predicate()` is true; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def next_message(pubsub, types=("message", "pmessage"), timeout=TIMEOUT):
    """The next message of one of `types` that `pubsub` receives (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no {types} message within {timeout}s")
        message = pubsub.get_message(timeout=remaining)
        if message is not None and message["type"] in types:
            return message


def confirm_subscriptions(pubsub, count, timeout=TIMEOUT):
    """Reads `count` (p)subscribe confirmations: the server has then applied them."""
    kinds = ("subscribe", "psubscribe", "ssubscribe")
    return [next_message(pubsub, kinds, timeout) for _ in range(count)]
