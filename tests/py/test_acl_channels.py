"""Channel permissions end to end.

A user limited to `&notifications:*` can SUBSCRIBE and PUBLISH there and
nowhere else (PSUBSCRIBE only to the allowed pattern itself, as Redis 7.0
checks patterns literally), and revoking the permission closes its
subscriber connection. Run against herald by `tests/e2e_python.rs`; to check
the test itself, run it against a redis-server 7.0 (see conftest.py).
"""

import pytest
import redis as real_redis

from helpers import HOST, PORT, TIMEOUT, confirm_subscriptions, next_message, wait_until

USER = "notifier"
PASSWORD = "s3cret-pass"


@pytest.fixture
def limited_user(admin):
    admin.execute_command(
        "ACL", "SETUSER", USER, "reset", "on", ">" + PASSWORD,
        "+@all", "~*", "resetchannels", "&notifications:*",
    )
    yield USER
    admin.execute_command("ACL", "DELUSER", USER)


def connect(protocol):
    return real_redis.Redis(
        host=HOST, port=PORT, username=USER, password=PASSWORD,
        protocol=protocol, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
    )


def assert_noperm(call):
    with pytest.raises(real_redis.exceptions.ResponseError) as err:
        call()
    assert str(err.value).startswith("this user has no permissions"), str(err.value)


def test_subscribe_and_publish_only_where_allowed(limited_user, protocol):
    client = connect(protocol)
    pubsub = client.pubsub()
    try:
        assert client.acl_whoami() in (USER, USER.encode())
        pubsub.subscribe("notifications:orders")
        pubsub.psubscribe("notifications:*")
        confirm_subscriptions(pubsub, 2)
        assert client.publish("notifications:orders", "hello") == 2
        got = {next_message(pubsub)["type"], next_message(pubsub)["type"]}
        assert got == {"message", "pmessage"}

        assert_noperm(lambda: client.publish("billing", "x"))
        assert_noperm(lambda: client.execute_command("SPUBLISH", "billing", "x"))

        other = client.pubsub()
        try:
            other.subscribe("billing")
            assert_noperm(lambda: other.get_message(timeout=TIMEOUT))
        finally:
            other.close()
        other = client.pubsub()
        try:
            # A narrower pattern is refused: patterns are compared literally.
            other.psubscribe("notifications:o*")
            assert_noperm(lambda: other.get_message(timeout=TIMEOUT))
        finally:
            other.close()
    finally:
        pubsub.close()
        client.close()


def test_revoking_the_permission_closes_the_subscriber(limited_user, protocol, admin):
    client = connect(protocol)
    pubsub = client.pubsub()
    bystander = connect(protocol)
    try:
        pubsub.subscribe("notifications:alerts")
        confirm_subscriptions(pubsub, 1)
        assert bystander.ping()
        assert admin.pubsub_numsub("notifications:alerts") == [(b"notifications:alerts", 1)]

        # Adding a channel keeps the subscriber.
        admin.execute_command("ACL", "SETUSER", USER, "&billing")
        assert admin.publish("notifications:alerts", "still here") == 1
        assert next_message(pubsub)["data"] == b"still here"

        admin.execute_command("ACL", "SETUSER", USER, "resetchannels", "&billing")
        # Closed by the server at once: nothing more is delivered to it.
        assert admin.pubsub_numsub("notifications:alerts") == [(b"notifications:alerts", 0)]
        assert admin.publish("notifications:alerts", "gone") == 0
        with pytest.raises(real_redis.exceptions.ConnectionError):
            for _ in range(3):
                pubsub.get_message(timeout=TIMEOUT)
        users = [c.get("user") for c in admin.client_list()]
        wait_until(
            lambda: [c.get("user") for c in admin.client_list()].count(USER) == 1,
            "the subscriber's connection to be gone",
        )
        # The user's other connection (not a subscriber) stays.
        assert bystander.ping()
        assert USER in users
    finally:
        pubsub.close()
        bystander.close()
        client.close()
