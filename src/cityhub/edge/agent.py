"""The edge agent: MQTT intake (paho, QoS 1, persistent session, manual acknowledgements),
validation, local rules answering on MQTT at once, windows, the durable outbox and forwarding.

Order for each message: decode and check it (else dead letter), run the rules and publish any
alert (`cityhub/<tenant>/<device>/alert`), hand it to the writer thread, which writes a batch of
messages to the outbox in one transaction and only then acknowledges them to the broker. So a
message the broker saw acknowledged is on disk; one not yet acknowledged is sent again by the
broker after a crash (the session survives), and the hub's message-id dedupe absorbs repeats.
"""

from __future__ import annotations

import base64
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityhub.devices.credentials import token_matches
from cityhub.devices.messages import Measurement, Rejected, decode, validate
from cityhub.devices.registry import parse_topic, topic
from cityhub.edge.config import EdgeConfig
from cityhub.edge.forwarder import BusSender, Forwarder, HttpSender, Sender
from cityhub.edge.outbox import Outbox
from cityhub.edge.registry import EdgeRegistry
from cityhub.edge.rules import Alert, Rule
from cityhub.edge.windows import Windows

log = logging.getLogger(__name__)
MAX_DEAD_PAYLOAD = 4096
WRITE_BATCH = 5000


@dataclass(frozen=True)
class Accepted:
    measurement: Measurement
    device_type: str
    received: float


@dataclass(frozen=True)
class Dead:
    tenant: str
    device_id: str
    reason: str
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device_id, "reason": self.reason, "source": "mqtt",
                "payload": self.payload[:MAX_DEAD_PAYLOAD].decode("utf-8", "replace")}


@dataclass(frozen=True)
class Unverified:
    """A message of a device this edge does not know (yet: registered since the last registry
    refresh). The edge cannot check it, so it forwards it for the hub to check against its own
    registry: a device's first messages are not lost to a stale copy."""

    tenant: str
    device_id: str
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device_id, "payload": base64.b64encode(self.payload).decode()}


Item = Accepted | Dead | Unverified | Alert


class EdgeAgent:
    def __init__(self, config: EdgeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config, self.clock = config, clock
        self.outbox = Outbox(config.outbox_path)
        self.registry = EdgeRegistry(self.outbox, config.hub_url, config.hub_token,
                                     config.registry_file)
        self.rules: list[Rule] = config.build_rules()
        self.windows = Windows(config.window_s)
        self.forwarder = Forwarder(self.outbox, self._sender, config.batch_size,
                                   config.retry_max_s)
        self.counts = {"accepted": 0, "dead": 0, "unverified": 0, "alerts": 0}
        self._queue: queue.Queue[tuple[Item, int, int]] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="edge-writer", daemon=True)
        self._refresher = threading.Thread(target=self._refresh_loop, name="edge-registry",
                                           daemon=True)
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id,
                                  clean_session=False, manual_ack=True)
        if config.mqtt_username:
            self.client.username_pw_set(config.mqtt_username, config.mqtt_password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _sender(self) -> Sender:
        edge_id = f"{self.config.client_id}:{self.outbox.name}"
        if self.config.transport == "nats":
            return BusSender(self.config.bus_url, edge_id)
        return HttpSender(self.config.hub_url, self.config.hub_token, edge_id)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.registry.load()
        for row in self.outbox.held():  # aggregated mode: windows still open at the last stop
            body = dict(row.body)
            received = float(body.pop("receivedAt", self.clock()))  # type: ignore[arg-type]
            self.windows.add(Measurement.from_json(body), received, row.seq)
        self._writer.start()
        self._refresher.start()
        self.forwarder.start()
        self.client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=15)
        self.client.loop_start()
        log.info("event=edge_started broker=%s:%d hub=%s transport=%s forward=%s devices=%d "
                 "rules=%d backlog=%d", self.config.mqtt_host, self.config.mqtt_port,
                 self.config.hub_url, self.config.transport, self.config.forward,
                 len(self.registry), len(self.rules), self.outbox.size())

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        self._writer.join(timeout=10.0)
        self.forwarder.stop()
        self.outbox.close()

    def log_status(self) -> None:
        log.info("event=edge_status accepted=%d dead=%d unverified=%d alerts=%d backlog=%d "
                 "forwarded=%d hub_up=%s mqtt_up=%s", self.counts["accepted"],
                 self.counts["dead"], self.counts["unverified"], self.counts["alerts"],
                 self.outbox.size(), self.forwarder.forwarded,
                 self.forwarder.hub_up, self.connected.is_set())

    # -- MQTT -----------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            log.warning("event=mqtt_refused reason=%s", reason)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):  # paho leaves Nagle on: alerts would wait ~40 ms
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(self.config.topic, qos=1)
        self.connected.set()
        log.info("event=mqtt_connected topic=%s", self.config.topic)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        self.connected.clear()
        log.warning("event=mqtt_disconnected reason=%s", reason)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            item = self.handle(message.topic, bytes(message.payload))
        except Exception as error:  # nothing a device sends may stop the intake
            log.exception("event=intake_crashed topic=%r", message.topic[:128])
            item = Dead("", message.topic[:128], f"internal error: {type(error).__name__}",
                        bytes(message.payload))
        alerts = self.check_rules(item) if isinstance(item, Accepted) else []
        for alert in alerts:
            client.publish(topic(alert.tenant, alert.device_id, "alert"),
                           orjson.dumps(alert.to_json()), qos=0)
        if alerts:
            # This is the network thread: write the alerts to the socket now, not on the loop's
            # next turn, and before the writer thread (woken below) competes for the GIL.
            client.loop_write()
        for alert in alerts:
            self._queue.put((alert, 0, 0))
        self._queue.put((item, message.mid, message.qos))

    # -- the pipeline ---------------------------------------------------------------------------

    def handle(self, topic_name: str, payload: bytes) -> Accepted | Dead | Unverified:
        """Check one message: Accepted, Dead with the reason, or Unverified (unknown device:
        the hub decides)."""
        where = parse_topic(topic_name)
        if where is None:
            return Dead("", topic_name[:128], "topic is not cityhub/<tenant>/<device>/up",
                        payload)
        tenant, device_id = where
        record = self.registry.get(tenant, device_id)
        if record is None:
            self.registry.refresh(min_interval_s=2.0)
            record = self.registry.get(tenant, device_id)
        if record is None:
            return Unverified(tenant, device_id, payload)
        now = self.clock()
        try:
            envelope = decode(payload, record.decoder)
            if not token_matches(envelope.get("key"), record.credential):
                raise Rejected("bad or missing device credential")
            if record.state == "revoked":
                raise Rejected("device is revoked")
            measurement = validate(envelope, record.kind, tenant, device_id, payload,
                                   datetime.fromtimestamp(now, UTC))
        except Rejected as refused:
            return Dead(tenant, device_id, refused.reason, payload)
        return Accepted(measurement, record.type, now)

    def check_rules(self, item: Accepted) -> list[Alert]:
        alerts: list[Alert] = []
        for rule in self.rules:
            alerts.extend(rule.check(item.measurement, item.device_type, item.received))
        return alerts

    def _write_loop(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            batch: list[tuple[Item, int, int]] = []
            try:
                batch.append(self._queue.get(timeout=0.25))
                while len(batch) < WRITE_BATCH:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            try:
                if batch:
                    self._write(batch)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + 0.25
                    self._tick()
            except Exception:
                log.exception("event=outbox_write_failed")  # not acknowledged: resent later
                time.sleep(0.5)

    def _write(self, batch: list[tuple[Item, int, int]]) -> None:
        aggregated = self.config.forward == "aggregated"
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for item, _mid, _qos in batch:
            if isinstance(item, Accepted):
                body = item.measurement.to_json()
                if aggregated:
                    body["receivedAt"] = item.received
                rows.append(("held" if aggregated else "measurement", item.measurement.tenant,
                             body))
            elif isinstance(item, Dead):
                rows.append(("dead", item.tenant, item.to_json()))
            elif isinstance(item, Unverified):
                rows.append(("unverified", item.tenant, item.to_json()))
            else:
                rows.append(("alert", item.tenant, item.to_json()))
        seqs = self.outbox.put(rows)
        for (item, mid, qos), seq in zip(batch, seqs, strict=True):
            if isinstance(item, Accepted):
                self.counts["accepted"] += 1
                self.windows.add(item.measurement, item.received, seq if aggregated else None)
            elif isinstance(item, Dead):
                self.counts["dead"] += 1
            elif isinstance(item, Unverified):
                self.counts["unverified"] += 1
            else:
                self.counts["alerts"] += 1
            if qos > 0:
                self.client.ack(mid, qos)
        self.forwarder.kick()

    def _tick(self) -> None:
        now = self.clock()
        for window in self.windows.close_due(now):
            summary = window.summary()
            self.client.publish(topic(window.tenant, window.device_id, "window"),
                                orjson.dumps(summary), qos=0)
            if self.config.forward == "aggregated":
                aggregate = window.measurement()
                rows = [("aggregate", window.tenant, aggregate.to_json())] if \
                    aggregate.values else []
                self.outbox.replace(window.seqs, rows)
        alerts = [a for rule in self.rules for a in rule.tick(now)]
        for alert in alerts:
            self.client.publish(topic(alert.tenant, alert.device_id, "alert"),
                                orjson.dumps(alert.to_json()), qos=0)
        if alerts:
            self._write([(a, 0, 0) for a in alerts])

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.config.registry_refresh_s):
            self.registry.refresh()
