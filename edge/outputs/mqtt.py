"""The MQTT output of `fer-edge run --mqtt URL`: a Sink that never holds up the camera loop.

    with MqttSink(config, max_missed=10, max_age_s=2.0) as sink:   # connects in the background
        sink.write(result)                                           # per frame: queues, returns at once

Messages (topics: edge.outputs.mqtt_config.MqttConfig.topic):
- PREFIX/DEVICE/faces: edge.record.frame_record of a frame, every frame or every --mqtt-every-s;
- PREFIX/DEVICE/events: edge.outputs.events.PresenceEvent as JSON, plus "seq" (0, 1, 2... per run, so a
  subscriber sees a gap) and "ts" (wall-clock seconds since the epoch);
- PREFIX/DEVICE/state: {"faces": n, "emotion": label}, retained, sent when it changes;
- PREFIX/DEVICE/status: "online" (retained, on every connect) and "offline" (retained, at the
  end, and as the last will when the box vanishes).

Threads: paho's network thread connects, reconnects with exponential backoff (1 s up to 30 s) and
moves bytes; one sender thread of ours hands messages to paho while connected. `write` only
builds the record and appends to bounded queues under a lock, so neither a dead broker nor a
slow network reaches the camera loop. Frame messages wait in a deque of --mqtt-queue entries
whose oldest is dropped (and counted) when full; events wait in their own queue and are never
dropped for frames. At most WINDOW messages are in paho's hands at once: with QoS 1/2 paho
keeps unacknowledged ones and sends them again after a reconnect; a QoS 0 event written into a
connection that then died is queued again by us. Only a queue of EVENT_CAPACITY undelivered
events (hours of people coming and going with no broker) makes the oldest give way, counted
and logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge.outputs.events import PresenceEvents, frame_state
from edge.outputs.mqtt_config import MqttConfig
from edge.record import frame_record
from edge.types import FrameResult

log = logging.getLogger(__name__)

WINDOW = 20  # messages handed to paho and not yet written (QoS 0) or acknowledged (QoS 1/2)
EVENT_CAPACITY = 10_000
CONNECT_WAIT_S = 5.0  # at start, how long to wait for the first answer before the run goes on
HA_PREFIX = "homeassistant"
ONLINE, OFFLINE = "online", "offline"
FACES, EVENT, STATE = "faces", "events", "state"


def _why(exc: BaseException) -> str:
    """A failed connection's reason in words: the certificate check, a refusal, an unknown host..."""
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message} (a private CA: --mqtt-ca FILE)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the broker running, on this port?"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "no answer (timed out)"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@dataclass(slots=True)
class _Message:
    kind: str  # FACES, EVENT or STATE
    body: dict  # JSON-encoded on the sender thread


@dataclass(frozen=True, slots=True)
class MqttStats:
    connected: bool
    published: int  # messages paho took (QoS 0: written, QoS 1/2: on their way until acknowledged)
    events: int  # events raised
    dropped: int  # frame messages dropped: queue full, or lost with a connection (QoS 0)
    events_dropped: int  # events dropped past EVENT_CAPACITY
    queued: int  # messages waiting for the broker, events included
    reconnects: int  # connections made after the first


class MqttSink:
    """A Sink (write/close) that publishes faces, events, state and status; see the module docstring."""

    def __init__(self, config: MqttConfig, *, max_missed: int = 10, max_age_s: float = 2.0, version: str = ""):
        import paho.mqtt.client as mqtt

        self.config = config
        self._mqtt = mqtt
        self._presence = PresenceEvents(max_missed=max_missed, max_age_s=max_age_s)
        self._version = version
        self._cond = threading.Condition()
        self._events: deque[_Message] = deque()
        self._faces: deque[_Message] = deque()
        self._state: _Message | None = None  # only the newest state matters
        self._last_state = None
        self._next_faces_t: float | None = None
        self._inflight: list[tuple[object, _Message]] = []  # (MQTTMessageInfo, message)
        self._seq = 0
        self._published = self._dropped = self._events_dropped = 0
        self._connected = False
        self._connects = 0
        self._answered = threading.Event()  # the first connect succeeded or failed
        self._down_since: float | None = None
        self._warned_down = False
        self._reason = ""  # why the broker cannot be reached, for the warning
        self._closing = threading.Event()
        self._flush_deadline = 0.0
        self._client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._started = False

    # --- lifecycle ------------------------------------------------------------------------------

    def _make_client(self):
        mqtt, c = self._mqtt, self.config
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fer-edge-{c.device}-{os.getpid()}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        if c.username:
            client.username_pw_set(c.username, c.password)
        if c.tls:
            client.tls_set(ca_certs=c.ca_file)
        client.will_set(c.topic("status"), OFFLINE, qos=c.qos, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(WINDOW)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def start(self) -> bool:
        """Connect; True when the broker answered yes within CONNECT_WAIT_S.

        An unreachable broker is a warning that says why: the run goes on, messages queue and the
        client keeps trying with backoff.
        """
        self._started = True
        self._down_since = time.monotonic()
        c = self.config
        try:  # the first attempt here, for its reason (paho's retries report none)
            self._client.connect(c.host, c.port, keepalive=30)
        except (OSError, ValueError) as exc:
            self._reason = _why(exc)
            self._answered.set()
            self._client.connect_async(c.host, c.port, keepalive=30)  # paho's thread retries with backoff
        self._client.loop_start()
        self._sender.start()
        self._answered.wait(CONNECT_WAIT_S)  # the broker's CONNACK: accepted, or refused (credentials)
        with self._cond:
            connected = self._connected
        if not connected:
            self._warn_down("cannot connect to the MQTT broker at %s (%s); the run goes on, events are queued and "
                            "the connection is retried with backoff", self._reason or "no answer")
        return connected

    def __enter__(self) -> "MqttSink":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Send what is queued (events for up to config.flush_s), then "offline", and disconnect."""
        if not self._started:
            return
        self._started = False
        with self._cond:
            self._flush_deadline = time.monotonic() + self.config.flush_s
            self._closing.set()
            self._cond.notify_all()
        self._sender.join()
        with self._cond:
            connected = self._connected
            lost = len(self._events) + sum(1 for _, m in self._inflight if m.kind == EVENT)
        if connected:
            info = self._client.publish(self.config.topic("status"), OFFLINE, qos=self.config.qos, retain=True)
            if info.rc == self._mqtt.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
            self._client.disconnect()
        if lost:
            log.warning("MQTT: %d events could not be delivered to %s before the end of the run", lost,
                        self.config.where)
        self._client.loop_stop()
        st = self.stats()
        log.info("MQTT: %d messages published, %d events, %d frame messages dropped, %d reconnects", st.published,
                 st.events, st.dropped, st.reconnects)

    # --- the camera loop's side -----------------------------------------------------------------

    def write(self, result: FrameResult) -> None:
        """Queue this frame's messages; never waits for the network."""
        c = self.config
        events = self._presence.update(result)
        t = float(result.frame.t)
        record = None
        if c.every_s <= 0 or self._next_faces_t is None or t >= self._next_faces_t:
            record = frame_record(result)
            self._next_faces_t = t + c.every_s
        state = frame_state(result)
        ts = round(time.time(), 3)
        with self._cond:
            for event in events:
                body = event.to_json()
                body["seq"], body["ts"] = self._seq, ts
                self._seq += 1
                if len(self._events) >= EVENT_CAPACITY:
                    self._events.popleft()
                    self._events_dropped += 1
                    if self._events_dropped == 1:
                        log.warning("MQTT: %d events wait for %s; the oldest now give way", EVENT_CAPACITY, c.where)
                self._events.append(_Message(EVENT, body))
            if record is not None:
                if len(self._faces) >= c.queue:
                    self._faces.popleft()
                    self._dropped += 1
                self._faces.append(_Message(FACES, record))
            if state != self._last_state:
                self._last_state = state
                self._state = _Message(STATE, state.to_json())
            self._cond.notify()

    def stats(self) -> MqttStats:
        with self._cond:
            queued = len(self._events) + len(self._faces) + (self._state is not None)
            return MqttStats(self._connected, self._published, self._seq, self._dropped, self._events_dropped,
                             queued, max(0, self._connects - 1))

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    # --- paho's network thread ------------------------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        c = self.config
        if reason_code.is_failure:
            self._reason = f"the broker refused: {reason_code}" + (
                "; check $FER_EDGE_MQTT_USERNAME / $FER_EDGE_MQTT_PASSWORD" if "auth" in str(reason_code).lower()
                or "password" in str(reason_code).lower() else "")
            self._answered.set()
            return
        client.publish(c.topic("status"), ONLINE, qos=c.qos, retain=True)
        if c.home_assistant:
            for topic, config in self._discovery().items():
                client.publish(topic, json.dumps(config), qos=c.qos, retain=True)
        with self._cond:
            self._connected = True
            self._connects += 1
            down_s = time.monotonic() - self._down_since if self._down_since is not None else None
            self._down_since = None
            queued = len(self._events) + len(self._faces)
            self._cond.notify_all()
        if self._connects == 1 and not self._warned_down:
            log.info("MQTT: connected to %s, publishing under %s/%s/", c.where, c.prefix, c.device)
        else:
            log.warning("MQTT: connected to %s%s; sending %d queued messages (frame messages dropped so far: "
                        "%d)", c.where, f" after {down_s:.1f} s without it" if down_s is not None else "", queued,
                        self._dropped)
        self._warned_down = False
        self._answered.set()

    def _on_connect_fail(self, _client, _userdata) -> None:
        self._reason = self._reason or "connection failed"
        self._answered.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            if self._down_since is None:
                self._down_since = time.monotonic()
            self._cond.notify_all()
        if was and not self._closing.is_set():
            self._reason = f"lost the connection: {reason_code}"
            self._warn_down("lost the connection to the MQTT broker at %s (%s); the run goes on, messages queue "
                            "and the connection is retried with backoff", str(reason_code))

    def _on_publish(self, *_args) -> None:
        with self._cond:
            self._cond.notify_all()

    def _warn_down(self, message: str, reason: str) -> None:
        if not self._warned_down:
            self._warned_down = True
            log.warning("MQTT: " + message, self.config.where, reason)

    # --- the sender thread ----------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                message = self._next_message()
                if message is None:
                    return
            self._send(message)

    def _next_message(self) -> _Message | None:
        """The next message to hand to paho, waiting as needed; None when closing is done. Holds the lock."""
        while True:
            self._prune()
            if self._connected and len(self._inflight) < WINDOW:
                if self._events:
                    return self._events.popleft()
                if self._state is not None:
                    message, self._state = self._state, None
                    return message
                if self._faces:
                    return self._faces.popleft()
            if self._closing.is_set():
                pending_events = bool(self._events) or any(m.kind == EVENT for _, m in self._inflight)
                idle = not (self._events or self._faces or self._state or self._inflight)
                if idle or time.monotonic() >= self._flush_deadline or not (pending_events or self._connected):
                    return None
            self._cond.wait(0.05 if (self._inflight or self._closing.is_set()) else 1.0)

    def _prune(self) -> None:
        """Forget what paho has done with; a QoS 0 event lost with its connection is queued again. Holds the lock."""
        keep = []
        requeue = []
        for info, message in self._inflight:
            if not info.is_published():
                keep.append((info, message))
            elif info.rc == self._mqtt.MQTT_ERR_CONN_LOST:
                if message.kind == EVENT:
                    requeue.append(message)
                elif message.kind == FACES:
                    self._dropped += 1
        self._inflight = keep
        self._events.extendleft(reversed(requeue))

    def _send(self, message: _Message) -> None:
        c = self.config
        if message.kind == EVENT:
            topic, qos, retain = c.topic("events"), c.qos, c.retain
        elif message.kind == STATE:
            topic, qos, retain = c.topic("state"), c.qos, True
        else:
            topic, qos, retain = c.topic("faces"), c.faces_qos, c.retain
        payload = json.dumps(message.body, separators=(",", ":"))
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, OSError) as exc:  # a payload over MQTT's limit; a socket error mid-write
            log.warning("MQTT: could not publish on %s: %s", topic, exc)
            info = None
        mqtt = self._mqtt
        with self._cond:
            if info is not None and (info.rc == mqtt.MQTT_ERR_SUCCESS or (info.rc == mqtt.MQTT_ERR_NO_CONN and qos)):
                # QoS 1/2 without a connection: paho keeps it and sends it after the reconnect.
                self._inflight.append((info, message))
                self._published += 1
            elif message.kind == EVENT:
                self._events.appendleft(message)  # the connection went away under us: next time
                self._cond.wait(0.05)
            elif message.kind == STATE:
                if self._state is None:
                    self._state = message
            else:
                self._dropped += 1

    # --- Home Assistant -------------------------------------------------------------------------

    def _discovery(self) -> dict[str, dict]:
        """Home Assistant MQTT discovery: one device, a sensor for the main emotion and one for the face count."""
        c = self.config
        node = f"fer_edge_{c.device}".replace(".", "_").replace("-", "_")
        device = {"identifiers": [node], "name": f"fer-edge {c.device}", "manufacturer": "fer-edge",
                  "model": "fer-edge", "sw_version": self._version}
        common = {"state_topic": c.topic("state"), "availability_topic": c.topic("status"),
                  "payload_available": ONLINE, "payload_not_available": OFFLINE, "device": device}
        return {
            f"{HA_PREFIX}/sensor/{node}/emotion/config": {
                "name": "Emotion", "unique_id": f"{node}_emotion", "object_id": f"{node}_emotion",
                "value_template": "{{ value_json.emotion }}", "icon": "mdi:emoticon-outline", **common},
            f"{HA_PREFIX}/sensor/{node}/faces/config": {
                "name": "Faces", "unique_id": f"{node}_faces", "object_id": f"{node}_faces",
                "value_template": "{{ value_json.faces }}", "unit_of_measurement": "faces",
                "state_class": "measurement", "icon": "mdi:account-group", **common},
        }
