"""The redis-py pub/sub examples of the English Q&A on Redis messaging
(shared/seeds/003_*.txt), run against the server under test, once with
RESP2 and once with RESP3.

The seed code is copied as written; `redis` below is `seedredis`, which
points `redis.Redis()` at the server under test. Changes to the seed code are
marked `# test:`: they only hand results to the test and make the endless
loops stop. The examples that need keys, lists, sorted sets or MULTI/EXEC are
tested with the data types; the transactional pipeline is here as an expected
failure.
"""

import json
import queue
import threading
import time

import pytest

import seedredis as redis
from helpers import TIMEOUT, confirm_subscriptions, next_message, wait_until


def numsub(admin, channel):
    return dict(admin.pubsub_numsub(channel))[channel.encode()]


# ## 1. Explain the Pub/Sub model in Redis
def test_basic_concept():
    # Publisher
    publisher = redis.Redis()
    nobody = publisher.publish('news', 'Breaking news!')  # test: keep the count

    # Subscriber
    subscriber = redis.Redis()
    pubsub = subscriber.pubsub()
    pubsub.subscribe('news')

    assert nobody == 0, "fire-and-forget: nobody was listening"
    assert confirm_subscriptions(pubsub, 1)[0]['data'] == 1
    assert publisher.publish('news', 'Breaking news!') == 1
    message = next_message(pubsub)
    assert (message['channel'], message['data']) == (b'news', b'Breaking news!')


# ## 2. How to implement a basic messaging system using Redis
class RedisMessagingSystem:
    def __init__(self):
        self.redis = redis.Redis(host='localhost', port=6379, db=0)
        self.pubsub = self.redis.pubsub()

    def publish_message(self, channel, message):
        """Publish message to channel"""
        message_data = {
            'timestamp': time.time(),
            'message': message,
            'id': f"msg_{int(time.time() * 1000)}"
        }
        return self.redis.publish(channel, json.dumps(message_data))

    def subscribe_to_channel(self, channel, callback):
        """Subscribe to channel with callback function"""
        def message_handler():
            self.pubsub.subscribe(channel)
            for message in self.pubsub.listen():
                if message['type'] == 'message':
                    data = json.loads(message['data'])
                    callback(data)

        thread = threading.Thread(target=message_handler)
        thread.daemon = True
        thread.start()
        return thread


# ## 3. Applications that benefit from Redis Pub/Sub
class ChatApplication:
    def __init__(self):
        self.messaging = RedisMessagingSystem()
        self.user_sessions = {}

    def join_room(self, user_id, room_name):
        """User joins a chat room"""
        channel = f"room:{room_name}"
        self.user_sessions[user_id] = room_name
        self.messaging.subscribe_to_channel(channel,
                                            lambda msg: self.handle_room_message(user_id, msg))

    def send_message(self, user_id, room_name, message):
        """Send message to room"""
        channel = f"room:{room_name}"
        self.messaging.publish_message(channel, f"{user_id}: {message}")

    def handle_room_message(self, user_id, data):
        """Handle incoming room message"""
        print(f"[{user_id}] {data['message']}")


listener_threads_die_on_close = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")


@listener_threads_die_on_close
def test_messaging_system_with_callback_thread(admin):
    messaging = RedisMessagingSystem()
    received = queue.Queue()

    def handle_chat_message(data):
        print(f"Received: {data['message']} at {data['timestamp']}")
        received.put(data)  # test

    # Subscribe to chat channel
    messaging.subscribe_to_channel('chat', handle_chat_message)
    # test: the thread subscribes in the background; wait until it has.
    wait_until(lambda: numsub(admin, 'chat') == 1, "the chat subscription")

    # Publish messages
    assert messaging.publish_message('chat', 'Hello everyone!') == 1
    assert messaging.publish_message('chat', 'How are you?') == 1
    got = [received.get(timeout=TIMEOUT) for _ in range(2)]
    assert [d['message'] for d in got] == ['Hello everyone!', 'How are you?']
    assert all(d['id'].startswith('msg_') for d in got)


@listener_threads_die_on_close
def test_chat_application(admin):
    received = queue.Queue()

    class Chat(ChatApplication):
        def handle_room_message(self, user_id, data):
            super().handle_room_message(user_id, data)
            received.put((user_id, data['message']))  # test

    chat = Chat()
    chat.join_room('alice', 'lobby')
    wait_until(lambda: numsub(admin, 'room:lobby') == 1, "alice's room subscription")
    chat.send_message('bob', 'lobby', 'hi alice')
    chat.send_message('bob', 'lobby', 'are you there?')
    assert [received.get(timeout=TIMEOUT) for _ in range(2)] == [
        ('alice', 'bob: hi alice'), ('alice', 'bob: are you there?')]


# ## 4. How to subscribe to a channel in Redis
def test_subscription_methods():
    publisher = redis.Redis()  # test

    # Method 1: Simple subscription
    r = redis.Redis()
    pubsub = r.pubsub()
    pubsub.subscribe('news', 'sports', 'weather')
    assert [m['data'] for m in confirm_subscriptions(pubsub, 3)] == [1, 2, 3]  # test
    for channel in ('sports', 'weather', 'news'):  # test
        assert publisher.publish(channel, f'{channel} update') == 1

    # Listen for messages
    seen = []  # test
    for message in pubsub.listen():
        if message['type'] == 'message':
            print(f"Channel: {message['channel']}, Data: {message['data']}")
            seen.append((message['channel'], message['data']))  # test
            if len(seen) == 3:  # test: stop the loop
                break
    assert seen == [(b'sports', b'sports update'), (b'weather', b'weather update'),
                    (b'news', b'news update')]

    # Method 2: Pattern subscription
    pubsub.psubscribe('user:*')  # Subscribe to all channels starting with 'user:'
    assert confirm_subscriptions(pubsub, 1)[0]['data'] == 4  # test
    assert publisher.publish('user:1', 'for user 1') == 1
    message = next_message(pubsub)
    assert (message['type'], message['pattern'], message['channel'], message['data']) == (
        'pmessage', b'user:*', b'user:1', b'for user 1')

    # Method 3: Async subscription with callback
    handled = []  # test

    def message_handler(message):
        print(f"Received: {message['data']}")
        handled.append(message['data'])  # test

    pubsub.subscribe(**{'news': message_handler})
    # test: already subscribed to 'news': the count stays 4.
    assert confirm_subscriptions(pubsub, 1)[0]['data'] == 4
    assert publisher.publish('news', 'handled') == 1
    wait_until(lambda: pubsub.get_message(timeout=0.1) or handled,
               "the handler to be called")
    assert handled == [b'handled']


# ## 5. How to publish a message to a channel in Redis
def test_publishing():
    listener = redis.Redis().pubsub()  # test: someone to receive
    listener.subscribe('news', 'notifications', 'updates', 'alerts')
    listener.psubscribe('user:42:*')
    confirm_subscriptions(listener, 5)

    # Basic publishing
    r = redis.Redis()
    assert r.publish('news', 'Breaking news!') == 1

    # Publishing with structured data
    message_data = {
        'type': 'notification',
        'user_id': 123,
        'content': 'Your order has been shipped',
        'timestamp': time.time()
    }
    assert r.publish('notifications', json.dumps(message_data)) == 1

    # Publishing to multiple channels
    channels = ['news', 'updates', 'alerts']
    for channel in channels:
        assert r.publish(channel, 'Important update!') == 1

    # Publishing with pattern matching
    def publish_to_user_channels(user_id, message):
        """Publish to all channels for a specific user"""
        channels = [
            f"user:{user_id}:notifications",
            f"user:{user_id}:messages",
            f"user:{user_id}:updates"
        ]
        counts = []  # test
        for channel in channels:
            counts.append(r.publish(channel, message))
        return counts  # test

    assert publish_to_user_channels(42, 'hello 42') == [1, 1, 1]
    assert publish_to_user_channels(7, 'hello 7') == [0, 0, 0]

    got = [next_message(listener) for _ in range(8)]
    assert [(m['type'], m['channel']) for m in got] == [
        ('message', b'news'), ('message', b'notifications'), ('message', b'news'),
        ('message', b'updates'), ('message', b'alerts'),
        ('pmessage', b'user:42:notifications'), ('pmessage', b'user:42:messages'),
        ('pmessage', b'user:42:updates'),
    ]
    assert json.loads(got[1]['data']) == message_data


# ## 9. Ensuring data consistency and reliability (the PUBLISH part)
class ReliableRedisMessaging:
    def __init__(self):
        self.redis = redis.Redis()
        self.retry_queue = 'retry_queue'
        self.dead_letter_queue = 'dead_letter_queue'

    def _deliver_message(self, message_data):
        """Attempt to deliver message"""
        try:
            result = self.redis.publish(
                message_data['channel'],
                message_data['message']
            )

            if result > 0:  # At least one subscriber received
                return True
            else:
                return self._handle_failed_delivery(message_data)

        except Exception as e:
            return self._handle_failed_delivery(message_data, str(e))

    def _handle_failed_delivery(self, message_data, error=None):
        # test: the seed queues a retry here (ZADD / LPUSH)
        return False


def test_reliable_delivery_checks_publish_count():
    messaging = ReliableRedisMessaging()
    message_data = {'id': '1', 'channel': 'orders', 'message': 'order 1', 'retries': 0}
    assert messaging._deliver_message(message_data) is False, "no subscriber yet"

    pubsub = redis.Redis().pubsub()
    pubsub.subscribe('orders')
    confirm_subscriptions(pubsub, 1)
    assert messaging._deliver_message(message_data) is True
    assert next_message(pubsub)['data'] == b'order 1'


# ## 10. Performance Optimization: batch publishing
def make_batch_publisher(transaction):
    # Connection pooling
    pool = redis.ConnectionPool(host='localhost', port=6379, max_connections=20)
    redis_client = redis.Redis(connection_pool=pool)

    # Batch publishing
    def batch_publish(channel, messages):
        """Publish multiple messages efficiently"""
        if transaction:  # test: the seed's form, wrapped in MULTI / EXEC
            pipe = redis_client.pipeline()
        else:
            pipe = redis_client.pipeline(transaction=False)
        for message in messages:
            pipe.publish(channel, message)
        return pipe.execute()

    return batch_publish


def check_batch_publish(batch_publish):
    pubsub = redis.Redis().pubsub()
    pubsub.subscribe('batch')
    pubsub.psubscribe('bat*')
    confirm_subscriptions(pubsub, 2)

    messages = [f'event {i}' for i in range(200)]
    assert batch_publish('batch', messages) == [2] * 200
    assert batch_publish('nobody', ['x', 'y']) == [0, 0]
    got = [next_message(pubsub) for _ in range(400)]
    assert [(m['type'], m['data']) for m in got] == [
        (kind, m.encode()) for m in messages for kind in ('message', 'pmessage')]


def test_batch_publish_pipelined():
    check_batch_publish(make_batch_publisher(transaction=False))


def test_batch_publish_seed_pipeline_in_a_transaction():
    check_batch_publish(make_batch_publisher(transaction=True))


def test_clients_speak_the_protocol_under_test(protocol):
    # Sanity check of the harness: seedredis's clients use RESP`protocol`.
    r = redis.Redis(decode_responses=True)
    assert r.client_info()['resp'] == str(protocol)
    pubsub = r.pubsub()
    pubsub.subscribe('proto')
    confirm_subscriptions(pubsub, 1)
    assert r.pubsub_numsub('proto') == [('proto', 1)]
