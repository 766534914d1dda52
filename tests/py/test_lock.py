"""redis-py's distributed `Lock` (`client.lock(...)`), end to end.

Acquiring is a `SET name token NX PX`; releasing, extending and reacquiring
are Lua scripts that redis-py registers once and runs with EVALSHA, loading
them with SCRIPT LOAD when the server answers NOSCRIPT. So these tests prove
the server's scripting as the library uses it: acquire, extend (added to or
replacing the TTL), reacquire, release; a second client blocked while the
lock is held and getting it once it is released (`blocking_timeout`); a lock
that expires, after which its former owner can neither release nor extend
it; `locked()` and `owned()` from the owner and from another client; and the
scripts reloaded after SCRIPT FLUSH.

Not run by `tests/e2e_python.rs` (which ignores this file) but by
`tests/e2e_scripts.rs`, against herald and against a redis-server 7.0. By
hand, against a running server:

    HERALD_PORT=6390 .venv/bin/python -m pytest -q tests/py/test_lock.py
"""

import hashlib
import threading
import time
import uuid

import pytest
import redis as real_redis
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from helpers import HOST, PORT, TIMEOUT, wait_until


@pytest.fixture
def connect(protocol):
    """Makes clients of the server under test in the protocol under test
    (str replies), and closes them after the test."""
    made = []

    def make():
        client = real_redis.Redis(
            host=HOST,
            port=PORT,
            protocol=protocol,
            decode_responses=True,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def name(admin):
    """A lock name of this test only, deleted afterwards."""
    key = f"herald-e2e-lock:{uuid.uuid4().hex}"
    yield key
    admin.delete(key)


def test_acquire_extend_reacquire_release(connect, admin, name):
    client = connect()
    lock = client.lock(name, timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.locked() and lock.owned()
    assert admin.get(name) == lock.local.token
    assert 4000 < admin.pttl(name) <= 5000

    # extend adds to the TTL left...
    assert lock.extend(10)
    assert 14000 < admin.pttl(name) <= 15000
    # ...or replaces it.
    assert lock.extend(3, replace_ttl=True)
    assert 2000 < admin.pttl(name) <= 3000
    # reacquire sets it back to the lock's timeout.
    assert lock.reacquire()
    assert 4000 < admin.pttl(name) <= 5000
    assert lock.owned()

    lock.release()
    assert not lock.locked() and not lock.owned()
    assert admin.exists(name) == 0
    with pytest.raises(LockError, match="unlocked lock"):
        lock.release()


def test_context_manager(connect, admin, name):
    client = connect()
    with client.lock(name, timeout=5, blocking_timeout=TIMEOUT) as lock:
        assert lock.owned()
        assert admin.exists(name) == 1
    assert admin.exists(name) == 0


def test_second_client_waits_until_the_first_releases(connect, name):
    first = connect().lock(name, timeout=TIMEOUT)
    assert first.acquire(blocking=False)

    # Contention: the second client gives up when its blocking_timeout passes.
    second_client = connect()
    second = second_client.lock(name, timeout=TIMEOUT, sleep=0.01, thread_local=False)
    assert not second.acquire(blocking=False)
    started = time.monotonic()
    assert not second.acquire(blocking_timeout=0.2)
    assert time.monotonic() - started >= 0.15
    with pytest.raises(LockError, match="Unable to acquire lock"):
        with second_client.lock(name, blocking_timeout=0.05):
            pass
    assert first.owned() and not second.owned()

    # Blocked in acquire (in a thread) until the first client releases.
    got = {}

    def wait_for_lock():
        got["acquired"] = second.acquire(blocking_timeout=TIMEOUT)
        got["at"] = time.monotonic()

    waiter = threading.Thread(target=wait_for_lock, daemon=True)
    waiter.start()
    # The waiter retries every 10 ms: give it some tries while the lock is
    # held, during which it must not get it.
    waiter.join(0.3)
    assert waiter.is_alive(), f"acquired while the lock was held: {got}"
    released_at = time.monotonic()
    first.release()
    waiter.join(TIMEOUT)
    assert not waiter.is_alive(), "still waiting after the lock was released"
    assert got["acquired"] is True
    assert got["at"] >= released_at
    assert second.owned() and not first.owned()
    second.release()
    assert not second.locked()


def test_a_lock_expires(connect, admin, name):
    client = connect()
    lock = client.lock(name, timeout=0.2)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    wait_until(lambda: not lock.locked(), "the lock to expire")
    assert not lock.owned()

    # Someone else takes it; the former owner cannot touch it any more (the
    # scripts compare the token).
    other = connect().lock(name, timeout=5)
    assert other.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.extend(1)
    with pytest.raises(LockNotOwnedError):
        lock.reacquire()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert other.owned()
    assert admin.get(name) == other.local.token
    other.release()

    # An expired lock with nobody else: release says it was not owned.
    lock = client.lock(name, timeout=0.1)
    assert lock.acquire(blocking=False)
    wait_until(lambda: admin.exists(name) == 0, "the lock to expire")
    with pytest.raises(LockNotOwnedError):
        lock.release()


def test_locked_and_owned(connect, admin, name):
    mine = connect().lock(name, timeout=5)
    theirs = connect().lock(name, timeout=5)
    assert not mine.locked() and not mine.owned()
    assert mine.acquire(blocking=False)
    assert mine.locked() and mine.owned()
    assert theirs.locked() and not theirs.owned()
    assert not theirs.acquire(blocking=False)
    # A token set by hand (another process) is not this lock's.
    admin.set(name, "someone-else", px=5000)
    assert mine.locked() and not mine.owned()
    with pytest.raises(LockNotOwnedError):
        mine.release()
    assert admin.get(name) == b"someone-else", "release deleted another owner's lock"
    admin.delete(name)
    assert not mine.locked() and not theirs.locked()


def test_scripts_reloaded_after_script_flush(connect, admin, name):
    lock = connect().lock(name, timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.extend(1)  # the scripts are loaded now
    shas = [
        hashlib.sha1(script.encode()).hexdigest()
        for script in (Lock.LUA_RELEASE_SCRIPT, Lock.LUA_EXTEND_SCRIPT, Lock.LUA_REACQUIRE_SCRIPT)
    ]
    assert admin.script_exists(shas[1])[0], "SCRIPT EXISTS of the extend script's SHA1"

    admin.script_flush()
    assert admin.script_exists(*shas) == [False, False, False]
    # EVALSHA gets NOSCRIPT; redis-py then loads the script and runs it.
    assert lock.extend(1, replace_ttl=True)
    assert 0 < admin.pttl(name) <= 1000
    assert lock.reacquire()
    lock.release()
    assert not lock.locked()
    assert admin.script_exists(*shas) == [True, True, True]
