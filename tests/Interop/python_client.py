#!/usr/bin/python3
"""Interop scenarios for the Python client (Debian python3-socketio 5.7.x, ``socketio.Client``).

usage: /usr/bin/python3 python_client.py --url http://127.0.0.1:3000 \
           --transport polling|websocket --scenario <name>|all

  polling   = the client default: HTTP long-polling first, then upgrade to WebSocket
  websocket = transports=['websocket']

Exits 0 when the scenario passed, 1 (with a message on stderr) when it failed. Every wait has
a deadline; there are no fixed sleeps. Connection state recovery is not implemented by this
client version (it never sends pid/offset), so there is no recovery scenario here.
"""

import argparse
import os
import queue
import random
import sys
import threading
import traceback

import socketio

WAIT = 5.0
SCENARIO_TIMEOUT = 45.0

parser = argparse.ArgumentParser()
parser.add_argument('--url', default='http://127.0.0.1:3000')
parser.add_argument('--transport', default='polling', choices=['polling', 'websocket'])
parser.add_argument('--scenario', default='all')
ARGS = parser.parse_args()
BASE = ARGS.url.rstrip('/')
MODE = ARGS.transport

opened = []


class ScenarioFailure(Exception):
    pass


def fail(message):
    sys.stderr.write('FAIL [%s/%s]: %s\n' % (ARGS.scenario, MODE, message))
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


def check(condition, message):
    if not condition:
        raise ScenarioFailure(message)


def check_equal(actual, expected, what):
    if actual != expected:
        raise ScenarioFailure('%s: expected %r, got %r' % (what, expected, actual))


def transports():
    return ['websocket'] if MODE == 'websocket' else None  # None = polling, then upgrade


class Collector:
    """Every occurrence of one event, queued so that nothing received before we look is lost."""

    def __init__(self, sio, event, namespace='/'):
        self.queue = queue.Queue()
        self.event = event
        sio.on(event, self._handler, namespace=namespace)

    def _handler(self, *args):
        self.queue.put(list(args))

    def take(self, timeout=WAIT):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise ScenarioFailure('timed out after %.0f s waiting for "%s"' % (timeout, self.event)) from None

    def pending(self):
        return self.queue.qsize()


def payload(args, expected_len):
    """The server runs with connection state recovery on, so (as the reference server does) every
    event emitted without an ack request carries its offset as an extra trailing string. The
    payloads used here never end in a string, so drop it."""
    args = list(args)
    if len(args) == expected_len + 1 and isinstance(args[-1], str):
        args.pop()
    return args


def expect_args(actual, expected, what):
    check_equal(payload(actual, len(expected)), expected, what)


def new_client(**kwargs):
    options = dict(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5,
                   randomization_factor=0)
    options.update(kwargs)
    sio = socketio.Client(**options)
    opened.append(sio)
    return sio


def connect(sio, namespaces=None, auth=None):
    try:
        sio.connect(BASE, auth=auth, transports=transports(), namespaces=namespaces or ['/'],
                    wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError as exc:
        raise ScenarioFailure('connect to %s failed: %s' % (namespaces or ['/'], exc)) from None
    check(sio.connected, 'client not connected after connect()')
    return sio


def call(sio, event, data, namespace='/'):
    try:
        return sio.call(event, data, namespace=namespace, timeout=WAIT)
    except socketio.exceptions.TimeoutError:
        raise ScenarioFailure('timed out after %.0f s waiting for the ack of "%s"' % (WAIT, event)) from None


def barrier(sio, namespace='/'):
    """A round trip through the server: everything queued earlier for this client has arrived."""
    check_equal(call(sio, 'message-with-ack', {'barrier': True}, namespace), {'barrier': True}, 'barrier ack')


def unique_room(prefix):
    return '%s-%d-%08x' % (prefix, os.getpid(), random.getrandbits(32))


def wait_event(event, what, timeout=WAIT):
    if not event.wait(timeout):
        raise ScenarioFailure('timed out after %.0f s waiting for %s' % (timeout, what))


# ----------------------------------------------------------------------------------------------
# scenarios
# ----------------------------------------------------------------------------------------------

def scenario_connect_auth():
    auth = {'token': 'abc', 'nested': {'n': 1, 'list': [1, 'two', None, True]}}
    sio = new_client(reconnection=False)
    got = Collector(sio, 'auth')
    connect(sio, auth=auth)
    check(isinstance(sio.get_sid('/'), str) and sio.get_sid('/'), 'no namespace sid after connect')
    expect_args(got.take(), [auth], 'auth event')
    # python-engineio upgrades synchronously inside connect() when websocket is offered
    check_equal(sio.transport(), 'websocket', 'transport after connect (upgrade from polling expected)')
    barrier(sio)

    bare = new_client(reconnection=False)
    bare_got = Collector(bare, 'auth')
    connect(bare)
    expect_args(bare_got.take(), [{}], 'auth event without auth')
    check(bare.get_sid('/') != sio.get_sid('/'), 'two connections share a socket id')


def scenario_emit_ack():
    sio = new_client()
    back = Collector(sio, 'message-back')
    answers = Collector(sio, 'answer')

    def question(*args):
        return {'got': list(args), 'from': 'python'}

    sio.on('question', question)
    connect(sio)

    args = [1, 'two', {'three': [3, 3.5], 'four': None, 'five': False}]
    sio.emit('message', tuple(args))
    expect_args(back.take(), args, 'message-back')

    acked = call(sio, 'message-with-ack', tuple(args))
    check_equal(list(acked), args, 'ack arguments')
    check_equal(call(sio, 'message-with-ack', {'a': 'b'}), {'a': 'b'}, 'single-argument ack')

    sio.emit('server-ask', {'q': 42})
    expect_args(answers.take(), [{'got': [{'q': 42}], 'from': 'python'}], 'answer')


def scenario_binary():
    sio = new_client()
    back = Collector(sio, 'message-back')
    answers = Collector(sio, 'answer')

    def question(*args):
        return {'echo': bytes(args[0]) + b'\x09'}

    sio.on('question', question)
    connect(sio)

    blob = bytes([0, 1, 2, 127, 128, 254, 255])
    args = [blob, {'name': 'blob', 'data': b'hello', 'list': [b'', 5]}, 7]
    sio.emit('message', tuple(args))
    expect_args(back.take(), args, 'binary message-back')

    acked = call(sio, 'message-with-ack', tuple(args))
    check_equal(list(acked), args, 'binary ack arguments')

    sio.emit('server-ask', b'\x04\x05\x06')
    expect_args(answers.take(), [{'echo': b'\x04\x05\x06\x09'}], 'binary answer')

    big = bytes((i * 31) & 0xff for i in range(200000))
    sio.emit('message', (big, {'n': 1}))
    expect_args(back.take(), [big, {'n': 1}], 'large binary message-back')


def scenario_rooms():
    room = unique_room('room')
    clients = [new_client() for _ in range(3)]
    got = [Collector(c, 'broadcasted') for c in clients]
    for c in clients:
        connect(c)
    a, b, c = clients
    a_got, b_got, c_got = got

    check_equal(call(a, 'join', room), True, 'join ack (A)')
    check_equal(call(b, 'join', room), True, 'join ack (B)')

    body = {'hello': room, 'n': [1, 2, 3]}
    a.emit('broadcast', (room, body))
    expect_args(b_got.take(), [body], 'broadcasted at B')
    barrier(a)
    barrier(c)
    check_equal(a_got.pending(), 0, 'room broadcasts received by the sender')
    check_equal(c_got.pending(), 0, 'room broadcasts received by a socket outside the room')

    binary = {'data': b'\x01\x02\x03'}
    b.emit('broadcast', (room, binary))
    expect_args(a_got.take(), [binary], 'binary broadcasted at A')
    barrier(b)
    barrier(c)
    check_equal(b_got.pending(), 0, 'room broadcasts received by the sender B')
    check_equal(c_got.pending(), 0, 'room broadcasts received by C (not in the room)')


def scenario_namespace():
    sio = new_client(reconnection=False)
    root_auth = Collector(sio, 'auth', '/')
    custom_auth = Collector(sio, 'auth', '/custom')
    root_back = Collector(sio, 'message-back', '/')
    custom_back = Collector(sio, 'message-back', '/custom')
    connect(sio, namespaces=['/', '/custom'], auth={'ns': 'both'})
    expect_args(root_auth.take(), [{'ns': 'both'}], 'auth on /')
    expect_args(custom_auth.take(), [{'ns': 'both'}], 'auth on /custom')
    check(sio.get_sid('/') != sio.get_sid('/custom'), 'namespace sockets must have distinct ids')

    sio.emit('message', ('in-custom', {'n': 1}), namespace='/custom')
    expect_args(custom_back.take(), ['in-custom', {'n': 1}], 'message-back on /custom')
    check_equal(call(sio, 'message-with-ack', {'ns': 'custom'}, '/custom'), {'ns': 'custom'}, 'ack on /custom')
    barrier(sio, '/')
    check_equal(root_back.pending(), 0, 'events for /custom received on /')

    # an unknown namespace is rejected
    other = new_client(reconnection=False)
    errors = queue.Queue()
    other.on('connect_error', lambda *a: errors.put(list(a)), namespace='/nope')
    try:
        other.connect(BASE, transports=transports(), namespaces=['/nope'], wait_timeout=1)
        raise ScenarioFailure('connecting to /nope succeeded')
    except socketio.exceptions.ConnectionError:
        pass
    try:
        err = errors.get(timeout=WAIT)
    except queue.Empty:
        raise ScenarioFailure('no connect_error for /nope') from None
    check(err and isinstance(err[0], dict) and err[0].get('message') == 'Invalid namespace',
          'connect_error for /nope: %r' % (err,))


def scenario_connect_error():
    for auth in ({'token': 'bad'}, None):
        sio = new_client(reconnection=False)
        errors = queue.Queue()
        sio.on('connect_error', lambda *a: errors.put(list(a)), namespace='/secure')
        try:
            sio.connect(BASE, auth=auth, transports=transports(), namespaces=['/secure'], wait_timeout=1)
            raise ScenarioFailure('connect to /secure with auth %r succeeded' % (auth,))
        except socketio.exceptions.ConnectionError:
            pass
        try:
            err = errors.get(timeout=WAIT)
        except queue.Empty:
            raise ScenarioFailure('no connect_error for /secure with auth %r' % (auth,)) from None
        check(len(err) == 1 and isinstance(err[0], dict), 'connect_error arguments: %r' % (err,))
        check_equal(err[0].get('message'), 'Authentication failed', 'connect_error message')
        check_equal((err[0].get('data') or {}).get('code'), 'TOKEN_INVALID', 'connect_error data.code')
        check(not sio.connected, 'connected after a rejection')

    good = new_client(reconnection=False)
    got = Collector(good, 'auth', '/secure')
    connect(good, namespaces=['/secure'], auth={'token': 'good'})
    expect_args(got.take(), [{'token': 'good'}], 'auth on /secure')
    barrier(good, '/secure')


def scenario_server_disconnect():
    sio = new_client()
    disconnected = threading.Event()
    reconnected = threading.Event()
    connects = []

    def on_connect():
        connects.append(1)
        if len(connects) > 1:
            reconnected.set()

    sio.on('connect', on_connect)
    sio.on('disconnect', disconnected.set)
    connect(sio)
    sio.emit('disconnect-me')
    wait_event(disconnected, 'disconnect after disconnect-me')
    check(not sio.connected, 'still connected after a server-side disconnect')
    check(getattr(sio, '_reconnect_task', None) is None,
          'the client started reconnecting after a server-side disconnect')
    check(not reconnected.is_set(), 'the client reconnected after a server-side disconnect')


def scenario_reconnect():
    sio = new_client(reconnection_attempts=20)
    back = Collector(sio, 'message-back')
    disconnected = threading.Event()
    connected_again = threading.Event()
    connects = []

    def on_connect():
        connects.append(1)
        if len(connects) > 1:
            connected_again.set()

    sio.on('connect', on_connect)
    sio.on('disconnect', disconnected.set)
    connect(sio)
    barrier(sio)
    sio.emit('drop-transport')
    wait_event(disconnected, 'disconnect after drop-transport')
    wait_event(connected_again, 'automatic reconnection', 15.0)
    # (sio.connected turns true only after the "connect" handler ran; the round trips prove it)
    sio.emit('message', {'again': True})
    expect_args(back.take(), [{'again': True}], 'message-back after reconnection')
    barrier(sio)


SCENARIOS = {
    'connect-auth': scenario_connect_auth,
    'emit-ack': scenario_emit_ack,
    'binary': scenario_binary,
    'rooms': scenario_rooms,
    'namespace': scenario_namespace,
    'connect-error': scenario_connect_error,
    'server-disconnect': scenario_server_disconnect,
    'reconnect': scenario_reconnect,
}


def close_all():
    for sio in opened:
        sio.reconnection = False
        try:
            sio.disconnect()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass
    del opened[:]


def main():
    names = list(SCENARIOS) if ARGS.scenario == 'all' else [ARGS.scenario]
    for name in names:
        if name not in SCENARIOS:
            fail('unknown scenario %s; known: %s, all' % (name, ', '.join(SCENARIOS)))
    watchdog = threading.Timer(SCENARIO_TIMEOUT * len(names),
                               lambda: fail('scenario did not finish within the deadline'))
    watchdog.daemon = True
    watchdog.start()
    for name in names:
        try:
            SCENARIOS[name]()
        except ScenarioFailure as exc:
            fail('%s: %s' % (name, exc))
        except Exception:  # noqa: BLE001 - any error fails the scenario with its traceback
            fail('%s: %s' % (name, traceback.format_exc()))
        finally:
            close_all()
        sys.stdout.write('PASS %s (%s)\n' % (name, MODE))
        sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
