"""Fixtures shared by herald's end-to-end redis-py tests.

The server under test is at HERALD_HOST (default 127.0.0.1) : HERALD_PORT.
`tests/e2e_python.rs` starts herald and sets HERALD_PORT; to run these tests
against another server (e.g. a redis-server, to check the tests themselves):

    HERALD_PORT=6390 .venv/bin/python -m pytest -q tests/py

Every test runs once per protocol (RESP2 and RESP3) unless marked
`@pytest.mark.protocols(2)`. After each test every client the test made is
closed and the server must drop all of their subscriptions (no channel, no
pattern, no shard channel left), so each test starts from a clean server.
"""

import os

import pytest
import redis as real_redis

import seedredis
from helpers import HOST, PORT, TIMEOUT, wait_until


def pytest_configure(config):
    if not os.environ.get("HERALD_PORT"):
        raise pytest.UsageError(
            "HERALD_PORT is not set: these tests need a server to talk to. "
            "Run them with `bash scripts/test.sh` (cargo test starts herald), "
            "or set HERALD_PORT to a running server's port."
        )
    config.addinivalue_line(
        "markers", "protocols(*versions): run the test only with these RESP versions"
    )


def pytest_generate_tests(metafunc):
    if "protocol" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("protocols")
        versions = list(marker.args) if marker else [2, 3]
        metafunc.parametrize(
            "protocol", versions, ids=[f"resp{v}" for v in versions], indirect=True
        )


def _admin_client():
    return real_redis.Redis(
        host=HOST, port=PORT, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )


@pytest.fixture(autouse=True)
def protocol(request):
    """The RESP version under test; seed code's clients use it."""
    seedredis.protocol = getattr(request, "param", 2)
    yield seedredis.protocol
    seedredis.close_all()
    admin = _admin_client()
    try:

        def clean():
            return (
                admin.pubsub_numpat() == 0
                and admin.pubsub_channels() == []
                and admin.execute_command("PUBSUB", "SHARDCHANNELS") == []
            )

        wait_until(clean, "the server to drop the closed clients' subscriptions")
    finally:
        admin.close()


@pytest.fixture
def admin():
    """A plain RESP2 client (bytes replies) for checks made by the test itself."""
    client = _admin_client()
    yield client
    client.close()
