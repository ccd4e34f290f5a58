"""Where `fer-edge run --mqtt URL` publishes, parsed and checked before any work.

    add_mqtt_args(parser)            # --mqtt, --mqtt-ca, --mqtt-every-s, --mqtt-qos, ...
    config = mqtt_config_from_args(args, environ=os.environ)   # MqttConfig or None; MqttUrlError
    config.topic("events")           # "PREFIX/DEVICE/events"

The URL is `mqtt://[user@]host[:port]/prefix` (TLS: `mqtts://`, with `--mqtt-ca FILE` for a
private CA). A password never comes from the command line, which every user of the machine
sees in `ps`: it comes from $FER_EDGE_MQTT_PASSWORD (a systemd unit's EnvironmentFile=), and the
user from the URL or $FER_EDGE_MQTT_USERNAME. A whole URL with `user:pass@` is accepted from
$FER_EDGE_MQTT_URL, which `--mqtt` defaults to. No module here imports paho: a bad flag is
reported without the [mqtt] extra installed.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

URL_ENV = "FER_EDGE_MQTT_URL"
USERNAME_ENV = "FER_EDGE_MQTT_USERNAME"
PASSWORD_ENV = "FER_EDGE_MQTT_PASSWORD"
DEFAULT_PREFIX = "fer-edge"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# Topic levels and Home Assistant object ids: letters, digits, '_', '-' and '.' only.
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class MqttUrlError(ValueError):
    """An --mqtt value (or flag beside it) no broker connection can be made from; says what to write."""


@dataclass(frozen=True, repr=False)
class MqttConfig:
    host: str
    port: int
    prefix: str  # topic prefix, without leading or trailing '/'
    device: str  # the topic level and Home Assistant id of this box
    tls: bool = False
    ca_file: str | None = None  # PEM CA bundle for mqtts (None: the system's)
    username: str | None = None
    password: str | None = None  # never printed: see __repr__
    every_s: float = 0.0  # faces messages at most this often (frame time); 0: every frame
    qos: int = 1  # events, state and status
    faces_qos: int = 0  # faces: the next frame replaces a lost one
    retain: bool = False  # retain the latest faces and events messages
    home_assistant: bool = False  # publish Home Assistant MQTT discovery configs
    queue: int = 100  # frame messages kept while the broker is away; the oldest go first
    flush_s: float = 5.0  # at the end of a run, how long queued events may take to get out

    def __repr__(self) -> str:
        secret = "***" if self.password else None
        return (f"MqttConfig(host={self.host!r}, port={self.port}, prefix={self.prefix!r}, device={self.device!r}, "
                f"tls={self.tls}, username={self.username!r}, password={secret!r}, every_s={self.every_s}, "
                f"qos={self.qos}, faces_qos={self.faces_qos}, retain={self.retain}, "
                f"home_assistant={self.home_assistant})")

    def topic(self, kind: str) -> str:
        return f"{self.prefix}/{self.device}/{kind}"

    @property
    def where(self) -> str:
        """The broker as the log names it: scheme, host and port, never the credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def default_device() -> str:
    """This machine's host name, reduced to what a topic level and a Home Assistant id allow."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname().split(".")[0]).strip("-")
    return name or "fer-edge"


def parse_mqtt_url(url: str, *, allow_password: bool) -> tuple[str, int, str, bool, str | None, str | None]:
    """(host, port, prefix, tls, username, password) of an mqtt:// or mqtts:// URL; MqttUrlError."""
    text = url.strip()
    example = "mqtt://broker.local:1883/fer-edge (TLS: mqtts://broker.local:8883/fer-edge)"
    if "#" in text:  # urlsplit would take it for a fragment
        raise MqttUrlError(f"--mqtt {url!r}: MQTT wildcards '+' and '#' cannot be part of a topic prefix; write it "
                           f"as {example}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise MqttUrlError(f"--mqtt {url!r}: {exc}; write it as {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise MqttUrlError(f"--mqtt {url!r}: the URL must start with mqtt:// or mqtts://, e.g. {example}")
    if not parts.hostname:
        raise MqttUrlError(f"--mqtt {url!r}: no broker host; write it as {example}")
    if parts.query or parts.fragment:
        raise MqttUrlError(f"--mqtt {url!r}: a broker URL takes no ?query or #fragment; write it as {example}")
    if port == 0:
        raise MqttUrlError(f"--mqtt {url!r}: port 0 is no broker port")
    levels = [unquote(p) for p in parts.path.strip("/").split("/")] if parts.path.strip("/") else []
    bad = [lv for lv in levels if not _NAME.match(lv)]
    if bad:
        raise MqttUrlError(f"--mqtt {url!r}: topic prefix level {bad[0]!r} is empty or holds characters other than "
                           "letters, digits, '_', '-' and '.' (MQTT wildcards '+' and '#' are not allowed)")
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not allow_password:
        raise MqttUrlError(f"a password in --mqtt is visible to every user of this machine (ps shows command "
                           f"lines): put it in ${PASSWORD_ENV} (for the service: the EnvironmentFile of its unit), "
                           f"or the whole URL in ${URL_ENV}, and give --mqtt without it")
    username = unquote(parts.username) if parts.username else None
    prefix = "/".join(levels) or DEFAULT_PREFIX
    return parts.hostname, port or DEFAULT_PORTS[scheme], prefix, scheme == "mqtts", username, password


def add_mqtt_args(parser) -> None:
    """The MQTT flags of `fer-edge run` (defaults: MqttConfig's)."""
    d = MqttConfig("", 0, "", "")
    parser.add_argument("--mqtt", default=None, metavar="URL",
                        help=f"publish to this broker: mqtt://[user@]host[:port]/prefix, or mqtts:// for TLS. Topics: "
                        "PREFIX/DEVICE/faces (each frame's JSON Lines record), PREFIX/DEVICE/events (a person "
                        "appears, changes label, leaves), PREFIX/DEVICE/state (face count and main emotion, "
                        "retained) and PREFIX/DEVICE/status (online/offline, retained, also as the last will). "
                        f"Password: ${PASSWORD_ENV}, never on the command line (default: ${URL_ENV}; neither: "
                        f"no MQTT; prefix: {DEFAULT_PREFIX})")
    parser.add_argument("--mqtt-ca", default=None, metavar="FILE",
                        help="mqtts: the PEM file of the CA that signed the broker's certificate (default: the "
                        "system's CAs)")
    parser.add_argument("--mqtt-device", default=None, metavar="NAME",
                        help="this box's topic level and Home Assistant id (default: the host name)")
    parser.add_argument("--mqtt-every-s", type=float, default=d.every_s, metavar="S",
                        help="faces messages at most every S seconds of frame time (0: every processed frame); "
                        "events are never throttled")
    parser.add_argument("--mqtt-qos", type=int, choices=(0, 1, 2), default=d.qos,
                        help="QoS of the events, state and status messages (1 or 2: events queued during an "
                        "outage are delivered once the broker is back)")
    parser.add_argument("--mqtt-faces-qos", type=int, choices=(0, 1, 2), default=d.faces_qos,
                        help="QoS of the faces messages")
    parser.add_argument("--mqtt-retain", action="store_true",
                        help="retain the latest faces and events messages, so a subscriber that connects later "
                        "gets the last of each (state and status are always retained)")
    parser.add_argument("--mqtt-ha", action="store_true",
                        help="announce the box to Home Assistant (MQTT discovery, retained): sensors for the "
                        "main emotion and the face count")
    parser.add_argument("--mqtt-queue", type=int, default=d.queue, metavar="N",
                        help="faces messages kept while the broker cannot be reached; past that the oldest are "
                        "dropped and counted (events are kept apart and never dropped for frames)")


def mqtt_config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> MqttConfig | None:
    """The MqttConfig of the flags (None without --mqtt and $FER_EDGE_MQTT_URL); MqttUrlError says what is wrong."""
    env = os.environ if environ is None else environ
    url, from_env = args.mqtt, False
    if url is None and env.get(URL_ENV, "").strip():
        url, from_env = env[URL_ENV], True
    if url is None:
        stray = [flag for flag, value in (("--mqtt-ca", args.mqtt_ca), ("--mqtt-ha", args.mqtt_ha),
                                          ("--mqtt-device", args.mqtt_device)) if value]
        if stray:
            raise MqttUrlError(f"{stray[0]} needs --mqtt URL (or ${URL_ENV})")
        return None
    host, port, prefix, tls, username, password = parse_mqtt_url(url, allow_password=from_env)
    if args.mqtt_ca is not None:
        if not tls:
            raise MqttUrlError("--mqtt-ca is for TLS: write the URL as mqtts://host[:port]/prefix")
        if not Path(args.mqtt_ca).is_file():
            raise MqttUrlError(f"--mqtt-ca {args.mqtt_ca}: no such file (the broker's CA certificate, PEM)")
    device = args.mqtt_device if args.mqtt_device is not None else default_device()
    if not _NAME.match(device):
        raise MqttUrlError(f"--mqtt-device {device!r}: use letters, digits, '_', '-' and '.' only")
    if args.mqtt_every_s < 0:
        raise MqttUrlError("--mqtt-every-s must be >= 0")
    if args.mqtt_queue < 1:
        raise MqttUrlError("--mqtt-queue must be >= 1")
    username = env.get(USERNAME_ENV) or username
    password = env.get(PASSWORD_ENV) or password
    if password and not username:
        raise MqttUrlError(f"${PASSWORD_ENV} is set but no user: put it in the URL (mqtt://user@host/prefix) "
                           f"or in ${USERNAME_ENV}")
    return MqttConfig(host=host, port=port, prefix=prefix, device=device, tls=tls, ca_file=args.mqtt_ca,
                      username=username, password=password, every_s=float(args.mqtt_every_s), qos=args.mqtt_qos,
                      faces_qos=args.mqtt_faces_qos, retain=args.mqtt_retain, home_assistant=args.mqtt_ha,
                      queue=args.mqtt_queue)
