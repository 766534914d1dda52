"""The redis-py pub/sub examples of the French course chapter
(shared/seeds/000_*.txt, "8.1 Pub/Sub classique"), run against the server
under test, once with RESP2 and once with RESP3.

The seed code is copied as written (accents repaired); `redis` below is
`seedredis`, which points `redis.Redis(host='localhost', port=6379)` at the
server under test. Changes to the seed code are marked `# test:`: they only
hand results to the test and make the endless loops stop.
"""

import json
import logging
import queue
import threading
import time
from collections import defaultdict

import pytest

import seedredis as redis
from helpers import TIMEOUT, confirm_subscriptions, next_message, wait_until


# The seed's listener threads end with an exception when their socket is
# closed under them (by stop() or by the test's teardown): expected.
listener_threads_die_on_close = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")


def run_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def join(thread):
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"{thread.name} did not finish within {TIMEOUT}s"


def numsub(admin, channel):
    return dict(admin.pubsub_numsub(channel))[channel.encode()]


# ============================================
# PUBLISHER
# ============================================
def publisher_example():
    r = redis.Redis(host='localhost', port=6379, decode_responses=True)

    # Publier un message simple
    num_subscribers = r.publish('notifications', 'Hello World')
    print(f"Message délivré à {num_subscribers} subscriber(s)")

    # Publier des données structurées
    event = {
        'type': 'user_login',
        'user_id': 123,
        'timestamp': time.time()
    }
    auth_subscribers = r.publish('events:auth', json.dumps(event))  # test: keep the count
    return num_subscribers, auth_subscribers  # test


# ============================================
# SUBSCRIBER (version simple)
# ============================================
def subscriber_simple(ready, received, count):  # test: hooks for the test
    r = redis.Redis(host='localhost', port=6379, decode_responses=True)
    pubsub = r.pubsub()

    # S'abonner à un channel
    pubsub.subscribe('notifications')

    print("En écoute...")
    for message in pubsub.listen():
        if message['type'] == 'subscribe':  # test: the subscription is live
            ready.set()
        if message['type'] == 'message':
            print(f"Reçu: {message['data']}")
            received.append(message['data'])  # test
            if len(received) == count:  # test: stop the loop
                break


# ============================================
# SUBSCRIBER avec gestion d'erreurs
# ============================================
handled = []  # test: what handle_alert / handle_auth_event saw


def subscriber_robust(stop, seen):  # test: `stop` stands for Ctrl-C, `seen` gets every message
    r = redis.Redis(host='localhost', port=6379, decode_responses=True)
    pubsub = r.pubsub()

    # S'abonner à plusieurs channels
    pubsub.subscribe('notifications', 'alerts', 'events:auth')

    # Pattern subscription
    pubsub.psubscribe('logs:*')

    print("Subscriber démarré...")

    while True:
        try:
            if stop.is_set():  # test
                raise KeyboardInterrupt
            message = pubsub.get_message()

            if message:
                seen.put(message)  # test
                msg_type = message['type']

                if msg_type == 'subscribe':
                    print(f"✓ Abonné à: {message['channel']}")

                elif msg_type == 'psubscribe':
                    print(f"✓ Pattern abonné: {message['pattern']}")

                elif msg_type == 'message':
                    channel = message['channel']
                    data = message['data']
                    print(f"[{channel}] {data}")

                    # Traitement spécifique par channel
                    if channel == 'alerts':
                        handle_alert(data)
                    elif channel == 'events:auth':
                        handle_auth_event(json.loads(data))

                elif msg_type == 'pmessage':
                    pattern = message['pattern']
                    channel = message['channel']
                    data = message['data']
                    print(f"[Pattern:{pattern}] [{channel}] {data}")

            time.sleep(0.01)  # Éviter CPU spin

        except KeyboardInterrupt:
            print("\nArrêt du subscriber...")
            pubsub.unsubscribe()
            pubsub.punsubscribe()
            break

        except Exception as e:
            print(f"Erreur: {e}")
            seen.put(e)  # test: an error fails the test
            time.sleep(1)  # Backoff avant retry


def handle_alert(data):
    print(f"🚨 ALERTE: {data}")
    handled.append(('alert', data))  # test


def handle_auth_event(event):
    print(f"🔐 Auth: User {event['user_id']} logged in")
    handled.append(('auth', event['user_id']))  # test


# ============================================
# SUBSCRIBER avec threading
# ============================================
class PubSubListener(threading.Thread):
    def __init__(self, channels, patterns=None):
        super().__init__(daemon=True)
        self.redis = redis.Redis(host='localhost', port=6379, decode_responses=True)
        self.pubsub = self.redis.pubsub()
        self.channels = channels
        self.patterns = patterns or []

    def run(self):
        self.pubsub.subscribe(*self.channels)
        if self.patterns:
            self.pubsub.psubscribe(*self.patterns)

        print(f"Thread listening on {self.channels} and patterns {self.patterns}")

        for message in self.pubsub.listen():
            if message['type'] in ['message', 'pmessage']:
                self.handle_message(message)

    def handle_message(self, message):
        # Override dans les classes filles
        print(f"Reçu: {message}")

    def stop(self):
        self.pubsub.unsubscribe()
        self.pubsub.punsubscribe()
        self.pubsub.close()


# ============================================
# Pattern 3 : Fan-out pour microservices
# ============================================
class EventBus:
    """Event bus basé sur Redis Pub/Sub pour architecture microservices"""

    def __init__(self):
        self.redis = redis.Redis(host='localhost', port=6379)
        self.logger = logging.getLogger(__name__)

    def publish_event(self, event_type, payload):
        """Publier un événement sur le bus"""
        event = {
            'type': event_type,
            'payload': payload,
            'timestamp': time.time(),
            'source': 'service-name'
        }

        channel = f'events:{event_type}'
        message = json.dumps(event)

        num_subscribers = self.redis.publish(channel, message)
        self.logger.info(f"Event {event_type} published to {num_subscribers} services")

        return num_subscribers


# Service 1: Order Service
class OrderService:
    def __init__(self):
        self.event_bus = EventBus()

    def create_order(self, user_id, items):
        # Logique métier...
        order = {
            'order_id': 'ORD-123',
            'user_id': user_id,
            'items': items,
            'total': 99.99
        }

        # Publier événement
        self.event_bus.publish_event('order.created', order)

        return order


# Service 2: Inventory Service (subscriber)
class InventoryService:
    def __init__(self):
        self.redis = redis.Redis(host='localhost', port=6379)
        self.pubsub = self.redis.pubsub()
        self.pubsub.subscribe('events:order.created')
        self.handled = []  # test

    def listen(self):
        for message in self.pubsub.listen():
            if message['type'] == 'message':
                self.handle_order_created(json.loads(message['data']))
                return  # test: one event is enough

    def handle_order_created(self, event):
        order = event['payload']
        print(f"Inventory: Reserving stock for order {order['order_id']}")
        self.handled.append(order['order_id'])  # test


# Service 3: Notification Service (subscriber)
class NotificationService:
    def __init__(self):
        self.redis = redis.Redis(host='localhost', port=6379)
        self.pubsub = self.redis.pubsub()
        self.pubsub.subscribe('events:order.created')
        self.handled = []  # test

    def listen(self):
        for message in self.pubsub.listen():
            if message['type'] == 'message':
                self.handle_order_created(json.loads(message['data']))
                return  # test: one event is enough

    def handle_order_created(self, event):
        order = event['payload']
        user_id = order['user_id']
        print(f"Notification: Sending confirmation to user {user_id}")
        self.handled.append(user_id)  # test


# Service 4: Analytics Service (subscriber)
class AnalyticsService:
    def __init__(self):
        self.redis = redis.Redis(host='localhost', port=6379)
        self.pubsub = self.redis.pubsub()

        # Subscribe à tous les événements
        self.pubsub.psubscribe('events:*')
        self.handled = []  # test

    def listen(self, count=1):  # test: stop after `count` events
        for message in self.pubsub.listen():
            if message['type'] == 'pmessage':
                self.track_event(message['channel'], json.loads(message['data']))
                if len(self.handled) == count:  # test
                    return

    def track_event(self, channel, event):
        event_type = event['type']
        print(f"Analytics: Tracking {event_type}")
        self.handled.append((channel, event_type))  # test


# ============================================
# Script de monitoring
# ============================================
class PubSubMonitor:
    def __init__(self):
        self.redis = redis.Redis()
        self.stats = defaultdict(lambda: {
            'messages': 0,
            'subscribers': 0,
            'last_seen': None
        })

    def collect_stats(self):
        """Collecter les statistiques Pub/Sub"""
        # Lister tous les channels
        channels = self.redis.pubsub_channels()

        for channel in channels:
            # Compter subscribers
            numsub = self.redis.pubsub_numsub(channel)
            count = numsub[0][1] if numsub else 0

            self.stats[channel]['subscribers'] = count
            self.stats[channel]['last_seen'] = time.time()

        # Nombre de pattern subscriptions
        numpat = self.redis.pubsub_numpat()

        return {
            'channels': len(channels),
            'total_patterns': numpat,
            'channel_stats': dict(self.stats)
        }


# ============================================
# Tests
# ============================================
def test_publisher_returns_subscriber_counts(admin):
    # Nobody listens: both messages are lost, PUBLISH says 0.
    assert publisher_example() == (0, 0)

    # One subscriber on `notifications`; a channel and a pattern subscriber on
    # `events:auth`.
    notif = admin.pubsub()
    notif.subscribe('notifications')
    auth = redis.Redis(decode_responses=True).pubsub()
    auth.subscribe('events:auth')
    auth.psubscribe('events:*')
    confirm_subscriptions(notif, 1)
    confirm_subscriptions(auth, 2)

    assert publisher_example() == (1, 2)

    assert next_message(notif)['data'] == b'Hello World'
    message = next_message(auth)
    assert (message['type'], message['channel']) == ('message', 'events:auth')
    event = json.loads(message['data'])
    assert (event['type'], event['user_id']) == ('user_login', 123)
    message = next_message(auth)
    assert (message['type'], message['pattern'], message['channel']) == (
        'pmessage', 'events:*', 'events:auth')
    assert json.loads(message['data']) == event


def test_subscriber_simple_listen():
    ready, received = threading.Event(), []
    thread = run_thread(subscriber_simple, ready, received, 2)
    assert ready.wait(TIMEOUT), "subscriber_simple never got its subscribe confirmation"

    r = redis.Redis(decode_responses=True)
    assert r.publish('notifications', 'Hello World') == 1
    assert r.publish('other', 'not for me') == 0
    assert r.publish('notifications', 'Second') == 1
    join(thread)
    assert received == ['Hello World', 'Second']


def test_subscriber_robust_get_message_and_psubscribe():
    handled.clear()
    stop, seen = threading.Event(), queue.Queue()
    thread = run_thread(subscriber_robust, stop, seen)

    def next_seen():
        item = seen.get(timeout=TIMEOUT)
        assert not isinstance(item, Exception), f"subscriber_robust failed: {item!r}"
        return item

    confirmations = [next_seen() for _ in range(4)]
    assert [(m['type'], m['channel'], m['data']) for m in confirmations] == [
        ('subscribe', 'notifications', 1),
        ('subscribe', 'alerts', 2),
        ('subscribe', 'events:auth', 3),
        ('psubscribe', 'logs:*', 4),
    ]

    r = redis.Redis(decode_responses=True)
    assert r.publish('notifications', 'n1') == 1
    assert r.publish('alerts', 'disk full') == 1
    assert r.publish('events:auth', json.dumps({'user_id': 7})) == 1
    assert r.publish('logs:app', 'started') == 1
    assert r.publish('logs', 'no match') == 0

    got = [next_seen() for _ in range(4)]
    assert [(m['type'], m['pattern'], m['channel'], m['data']) for m in got] == [
        ('message', None, 'notifications', 'n1'),
        ('message', None, 'alerts', 'disk full'),
        ('message', None, 'events:auth', '{"user_id": 7}'),
        ('pmessage', 'logs:*', 'logs:app', 'started'),
    ]
    assert handled == [('alert', 'disk full'), ('auth', 7)]

    stop.set()
    join(thread)
    admin = redis.Redis(decode_responses=True)
    wait_until(lambda: admin.pubsub_channels() == [] and admin.pubsub_numpat() == 0,
               "the subscriber's UNSUBSCRIBE and PUNSUBSCRIBE")


@listener_threads_die_on_close
def test_threaded_listener_class(admin):
    received = queue.Queue()

    class Listener(PubSubListener):  # "Override dans les classes filles"
        def handle_message(self, message):
            received.put(message)

    listener = Listener(['notifications', 'alerts'], patterns=['logs:*'])
    listener.start()
    wait_until(lambda: admin.pubsub_numsub('notifications', 'alerts')
               == [(b'notifications', 1), (b'alerts', 1)]
               and admin.pubsub_numpat() == 1,
               "the listener thread's subscriptions")

    r = redis.Redis()
    assert r.publish('alerts', 'a1') == 1
    assert r.publish('logs:db', 'l1') == 1
    assert r.publish('notifications', 'n1') == 1
    got = [received.get(timeout=TIMEOUT) for _ in range(3)]
    assert [(m['type'], m['channel'], m['data']) for m in got] == [
        ('message', 'alerts', 'a1'),
        ('pmessage', 'logs:db', 'l1'),
        ('message', 'notifications', 'n1'),
    ]
    assert got[1]['pattern'] == 'logs:*'

    listener.stop()
    wait_until(lambda: admin.pubsub_numsub('notifications', 'alerts')
               == [(b'notifications', 0), (b'alerts', 0)]
               and admin.pubsub_numpat() == 0,
               "the listener's subscriptions to go after stop()")


def test_run_in_thread_with_handlers(admin):
    # The Q&A's "Method 3: Async subscription with callback", driven by
    # redis-py's own worker thread.
    received = queue.Queue()

    def message_handler(message):
        print(f"Received: {message['data']}")
        received.put(message)

    r = redis.Redis()
    pubsub = r.pubsub()
    pubsub.subscribe(**{'news': message_handler})
    pubsub.psubscribe(**{'user:*': message_handler})
    thread = pubsub.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        wait_until(lambda: numsub(admin, 'news') == 1 and admin.pubsub_numpat() == 1,
                   "run_in_thread's subscriptions")
        assert r.publish('news', 'Breaking news!') == 1
        assert r.publish('user:42', 'hi 42') == 1
        assert r.publish('news', 'More news') == 1
        got = [received.get(timeout=TIMEOUT) for _ in range(3)]
        assert [(m['type'], m['channel'], m['data']) for m in got] == [
            ('message', b'news', b'Breaking news!'),
            ('pmessage', b'user:42', b'hi 42'),
            ('message', b'news', b'More news'),
        ]
    finally:
        thread.stop()
    join(thread)


def test_eventbus_fan_out_to_services(admin):
    inventory = InventoryService()
    notification = NotificationService()
    analytics = AnalyticsService()
    # test: the services subscribe in __init__ without waiting for the reply;
    # wait for it so that the first event cannot overtake the subscriptions.
    for service in (inventory, notification, analytics):
        confirm_subscriptions(service.pubsub, 1)
    threads = [run_thread(inventory.listen), run_thread(notification.listen),
               run_thread(analytics.listen, 2)]

    counts = []

    class CountingEventBus(EventBus):  # test: keep what PUBLISH answered
        def publish_event(self, event_type, payload):
            counts.append(super().publish_event(event_type, payload))
            return counts[-1]

    orders = OrderService()
    orders.event_bus = CountingEventBus()
    order = orders.create_order(42, ['book', 'pen'])
    assert order['order_id'] == 'ORD-123'
    # Another event only the analytics service listens to.
    orders.event_bus.publish_event('user.signup', {'user_id': 42})
    assert counts == [3, 1], "order.created reaches 2 channel + 1 pattern subscribers"

    for thread in threads:
        join(thread)
    assert inventory.handled == ['ORD-123']
    assert notification.handled == [42]
    assert analytics.handled == [(b'events:order.created', 'order.created'),
                                 (b'events:user.signup', 'user.signup')]


def test_monitoring_script(admin):
    a = redis.Redis().pubsub()
    a.subscribe('notifications', 'orders')
    b = redis.Redis().pubsub()
    b.subscribe('notifications')
    c = redis.Redis().pubsub()
    c.psubscribe('alerts:*')
    confirm_subscriptions(a, 2)
    confirm_subscriptions(b, 1)
    confirm_subscriptions(c, 1)

    monitor = PubSubMonitor()
    stats = monitor.collect_stats()
    assert stats['channels'] == 2
    assert stats['total_patterns'] == 1
    assert {ch: s['subscribers'] for ch, s in stats['channel_stats'].items()} == {
        b'notifications': 2, b'orders': 1}

    # "Commandes de diagnostic"
    r = redis.Redis(decode_responses=True)
    assert sorted(r.pubsub_channels()) == ['notifications', 'orders']
    assert r.pubsub_channels('notif*') == ['notifications']
    assert r.pubsub_numsub('notifications', 'orders', 'alerts') == [
        ('notifications', 2), ('orders', 1), ('alerts', 0)]
    assert r.pubsub_numpat() == 1


# ============================================
# Limitations et pièges
# ============================================
def test_pitfall_message_published_before_subscribe_is_lost():
    r = redis.Redis()
    pubsub = r.pubsub()

    # ❌ PIÈGE : Subscribe APRÈS publication
    first = r.publish('channel', 'Message 1')  # Publié AVANT subscription

    pubsub.subscribe('channel')  # Subscribe maintenant
    # → Message 1 est PERDU définitivement
    confirm_subscriptions(pubsub, 1)  # test: instead of sleeping

    second = r.publish('channel', 'Message 2')  # Sera reçu

    received = []
    for message in pubsub.listen():
        if message['type'] == 'message':
            print(message['data'])
            # Recevra uniquement "Message 2"
            received.append(message['data'])  # test
            break

    assert (first, second) == (0, 1)
    assert received == [b'Message 2']
    assert pubsub.get_message(timeout=0.05) is None, "nothing else was delivered"


@pytest.mark.protocols(2)
def test_pitfall_resp2_subscribed_connection_refuses_other_commands(admin):
    r = redis.Redis()
    pubsub = r.pubsub()
    pubsub.subscribe('notifications')
    confirm_subscriptions(pubsub, 1)

    # The subscribed connection itself: only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE,
    # PING, QUIT and RESET; anything else gets Redis's error and the
    # connection stays subscribed.
    for command, name in ((('ECHO', 'hello'), 'echo'),
                          (('PUBLISH', 'notifications', 'x'), 'publish'),
                          (('PUBSUB', 'NUMSUB', 'notifications'), 'pubsub|numsub')):
        pubsub.execute_command(*command)
        with pytest.raises(redis.exceptions.ResponseError) as error:
            pubsub.get_message(timeout=TIMEOUT)
        assert str(error.value) == (
            f"Can't execute '{name}': only (P|S)SUBSCRIBE / "
            "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")

    pubsub.ping('still here')
    pong = next_message(pubsub, ('pong',))
    assert pong['data'] == b'still here'
    assert r.publish('notifications', 'after the errors') == 1
    assert next_message(pubsub)['data'] == b'after the errors'


@pytest.mark.protocols(3)
def test_resp3_subscribed_connection_accepts_other_commands():
    r = redis.Redis()
    pubsub = r.pubsub()
    pubsub.subscribe('notifications')
    confirm_subscriptions(pubsub, 1)

    connection = pubsub.connection
    connection.send_command('PUBSUB', 'NUMSUB', 'notifications')
    assert connection.read_response() == [b'notifications', 1]
    connection.send_command('ECHO', 'hello')
    assert connection.read_response() == b'hello'

    pubsub.ping('still here')
    assert next_message(pubsub, ('pong',))['data'] == b'still here'
    assert r.publish('notifications', 'pushed') == 1
    assert next_message(pubsub)['data'] == b'pushed'


def test_pitfall_separate_connections():
    r = redis.Redis()

    # ❌ PIÈGE : Une connexion en mode subscribe ne peut plus faire autre chose
    pubsub = r.pubsub()
    pubsub.subscribe('notifications')

    # redis-py gives the pubsub object its own connection, so this works:
    r.set('key', 'value')

    # ✅ SOLUTION : Utiliser des connexions séparées
    r_normal = redis.Redis()  # Pour operations normales
    r_pubsub = redis.Redis()  # Pour Pub/Sub uniquement
    pubsub = r_pubsub.pubsub()
    pubsub.subscribe('notifications')

    r_normal.set('key', 'value')  # ✓ Fonctionne
    assert r_normal.get('key') == b'value'
    r_normal.delete('key')


def test_pitfall_no_buffer_messages_wait_in_the_output_buffer():
    # The course says a slow subscriber loses messages. In Redis they wait in
    # the subscriber's output buffer (within client-output-buffer-limit
    # pubsub) and all arrive, in publishing order.
    r = redis.Redis()
    pubsub = r.pubsub()
    pubsub.subscribe('fast-channel')
    confirm_subscriptions(pubsub, 1)  # test

    # Publisher envoie 1000 messages très rapidement
    counts = []  # test
    for i in range(1000):
        counts.append(r.publish('fast-channel', f'Message {i}'))

    # Subscriber traite lentement (test: without the sleeps)
    received = []
    for message in pubsub.listen():
        if message['type'] == 'message':
            received.append(message['data'])
            if len(received) >= 1000:
                break

    assert counts == [1] * 1000
    assert received == [f'Message {i}'.encode() for i in range(1000)]


def test_pitfall_exact_and_pattern_subscriptions_both_deliver():
    r = redis.Redis()
    pubsub = r.pubsub()

    # Ceci est rapide
    pubsub.subscribe('notifications:user:123')

    # Ceci est plus lent (doit matcher chaque publication)
    pubsub.psubscribe('notifications:user:*')
    confirm_subscriptions(pubsub, 2)

    assert r.publish('notifications:user:123', 'both') == 2
    assert r.publish('notifications:user:456', 'pattern only') == 1
    got = [next_message(pubsub) for _ in range(3)]
    assert [(m['type'], m['channel'], m['data']) for m in got] == [
        ('message', b'notifications:user:123', b'both'),
        ('pmessage', b'notifications:user:123', b'both'),
        ('pmessage', b'notifications:user:456', b'pattern only'),
    ]


def test_pitfall_cleanup_of_subscriptions(admin):
    # ❌ PIÈGE : Oublier de nettoyer les subscriptions
    def broken_subscriber():
        r = redis.Redis()
        pubsub = r.pubsub()
        pubsub.subscribe('channel')

        # ... traiter quelques messages ...

        # Oubli de cleanup !
        return  # La connexion reste ouverte!

    # ✅ SOLUTION : Toujours cleanup
    def good_subscriber():
        r = redis.Redis()
        pubsub = r.pubsub()
        try:
            pubsub.subscribe('channel')
            # ... traiter messages ...
        finally:
            pubsub.unsubscribe()
            pubsub.close()
            r.close()

    good_subscriber()
    wait_until(lambda: numsub(admin, 'channel') == 0, "the good subscriber to leave")

    broken_subscriber()
    # test: CPython frees the abandoned PubSub at once and redis-py closes its
    # connection; the server must then drop the subscription.
    wait_until(lambda: numsub(admin, 'channel') == 0, "the broken subscriber's to go")

    # A subscriber that keeps its connection keeps its subscriptions until it
    # disconnects; then every channel and pattern goes at once.
    zombie = redis.Redis().pubsub()
    zombie.subscribe('channel', 'other')
    zombie.psubscribe('chan*')
    confirm_subscriptions(zombie, 3)
    assert admin.pubsub_numsub('channel', 'other') == [(b'channel', 1), (b'other', 1)]
    assert admin.pubsub_numpat() == 1
    zombie.connection.disconnect()
    wait_until(lambda: admin.pubsub_numsub('channel', 'other')
               == [(b'channel', 0), (b'other', 0)] and admin.pubsub_numpat() == 0,
               "the disconnected subscriber's subscriptions to go")


# ============================================
# Pattern 1 : Invalidation de cache distribuée
# ============================================
class DistributedCache:
    def __init__(self):
        # Connexion pour cache operations
        self.cache_redis = redis.Redis(host='localhost', port=6379, db=0)

        # Connexion dédiée pour Pub/Sub
        self.pubsub_redis = redis.Redis(host='localhost', port=6379, db=0)
        self.pubsub = self.pubsub_redis.pubsub()

        # Local cache (L1)
        self.local_cache = {}

        # Subscribe aux invalidations
        self.pubsub.subscribe('cache:invalidate')
        self.start_listening()

    def get(self, key):
        # 1. Check local cache (L1)
        if key in self.local_cache:
            print(f"✓ L1 cache hit: {key}")
            return self.local_cache[key]

        # 2. Check Redis cache (L2)
        value = self.cache_redis.get(key)
        if value:
            print(f"✓ L2 cache hit: {key}")
            self.local_cache[key] = value
            return value

        # 3. Cache miss
        print(f"✗ Cache miss: {key}")
        return None

    def set(self, key, value, ttl=300):
        # 1. Set dans Redis
        self.cache_redis.setex(key, ttl, value)

        # 2. Set dans local cache
        self.local_cache[key] = value

        # 3. Invalider sur les autres instances
        self.invalidate_others(key)

    def invalidate_others(self, key):
        """Invalider le cache sur les autres instances"""
        # Générer un token unique pour éviter boucle infinie
        instance_id = id(self)

        message = json.dumps({
            'key': key,
            'instance_id': instance_id
        })

        self.pubsub_redis.publish('cache:invalidate', message)

    def start_listening(self):
        """Écouter les invalidations en background"""
        import threading

        def listen():
            for message in self.pubsub.listen():
                if message['type'] == 'message':
                    self.handle_invalidation(message['data'])

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()

    def handle_invalidation(self, data):
        """Handler pour les messages d'invalidation"""
        msg = json.loads(data)
        key = msg['key']
        sender_id = msg['instance_id']

        # Ignorer nos propres messages
        if sender_id == id(self):
            return

        # Invalider local cache
        if key in self.local_cache:
            del self.local_cache[key]
            print(f"✓ Invalidated local cache: {key}")


@listener_threads_die_on_close
def test_distributed_cache_invalidation(admin):
    cache1 = DistributedCache()
    cache2 = DistributedCache()
    wait_until(lambda: numsub(admin, 'cache:invalidate') == 2, "both caches' subscriptions")

    # Instance 1 set une valeur
    cache1.set('user:123', '{"name":"John","age":30}')

    # Instance 2 la récupère (sera en L2)
    value = cache2.get('user:123')
    assert value == b'{"name":"John","age":30}'
    assert 'user:123' in cache2.local_cache

    # Instance 1 update
    cache1.set('user:123', '{"name":"John","age":31}')
    # → cache2 reçoit invalidation et supprime de L1
    wait_until(lambda: 'user:123' not in cache2.local_cache, "cache2's invalidation")
    assert cache2.get('user:123') == b'{"name":"John","age":31}'
    admin.delete('user:123')


def test_keyspace_notifications_for_cache_invalidation():
    r = redis.Redis(decode_responses=True)
    r.config_set('notify-keyspace-events', 'KEA')
    try:
        pubsub = r.pubsub()
        pubsub.psubscribe('__keyspace@0__:user:*')
        confirm_subscriptions(pubsub, 1)
        r.set('user:123', 'x')
        message = next_message(pubsub)
        assert (message['channel'], message['data']) == ('__keyspace@0__:user:123', 'set')
        r.delete('user:123')
        message = next_message(pubsub)
        assert (message['channel'], message['data']) == ('__keyspace@0__:user:123', 'del')
    finally:
        r.config_set('notify-keyspace-events', '')
