"""A stand-in for the `redis` module, for the seed documents' code.

The seed examples connect with `redis.Redis()` or
`redis.Redis(host='localhost', port=6379, ...)`. Test modules import this
module *as* `redis` (`import seedredis as redis`) so the copied seed code runs
unchanged while every client it makes:

- connects to the server under test (HERALD_HOST, default 127.0.0.1, and
  HERALD_PORT), whatever host and port the seed wrote;
- speaks the protocol under test (RESP2 or RESP3, set per test by the
  `protocol` fixture in conftest.py) unless the code asks for one;
- has a socket timeout, so that no read can hang a test forever;
- is recorded, so that the test's teardown closes it.

Everything else (`redis.exceptions`, `redis.ResponseError`, ...) is the real
redis-py.
"""

import os

import redis as _redis
from redis import *  # noqa: F401,F403  (exceptions and the rest, as in redis-py)

exceptions = _redis.exceptions

HOST = os.environ.get("HERALD_HOST", "127.0.0.1")
PORT = int(os.environ.get("HERALD_PORT", "0"))
# Upper bound of any single wait in the tests, in seconds.
TIMEOUT = float(os.environ.get("HERALD_TEST_TIMEOUT", "10"))

# Set by conftest.py for each test.
protocol = 2
_made = []


def _adapt(kwargs):
    kwargs["host"] = HOST
    kwargs["port"] = PORT
    kwargs.setdefault("protocol", protocol)
    kwargs.setdefault("socket_timeout", TIMEOUT)
    kwargs.setdefault("socket_connect_timeout", TIMEOUT)
    return kwargs


def Redis(*args, **kwargs):  # noqa: N802  (the seed's spelling)
    """`redis.Redis(...)` aimed at the server under test."""
    if "connection_pool" not in kwargs:
        kwargs = _adapt(kwargs)
    client = _redis.Redis(*args, **kwargs)
    _made.append(client)
    return client


StrictRedis = Redis


def ConnectionPool(*args, **kwargs):  # noqa: N802
    """`redis.ConnectionPool(...)` aimed at the server under test."""
    pool = _redis.ConnectionPool(*args, **_adapt(kwargs))
    _made.append(pool)
    return pool


def close_all():
    """Closes every client and pool made through this module (teardown)."""
    while _made:
        obj = _made.pop()
        try:
            if isinstance(obj, _redis.ConnectionPool):
                obj.disconnect()
            else:
                obj.close()
                obj.connection_pool.disconnect()
        except Exception:  # noqa: BLE001  (best effort: the socket may be gone)
            pass
