"""--mqtt URL and flags -> MqttConfig: what is accepted, what is refused and why, where credentials come from."""

from __future__ import annotations

import pytest

from edge.cli import build_parser
from edge.outputs.mqtt_config import MqttConfig, MqttUrlError, mqtt_config_from_args, parse_mqtt_url


def config(argv: list[str], env: dict | None = None) -> MqttConfig | None:
    args = build_parser().parse_args(["run", *argv])
    return mqtt_config_from_args(args, environ=env or {})


@pytest.mark.parametrize("url, want", [
    ("mqtt://broker.local", ("broker.local", 1883, "fer-edge", False, None, None)),
    ("mqtt://broker.local:1884/home/cams", ("broker.local", 1884, "home/cams", False, None, None)),
    ("mqtts://broker.local/home", ("broker.local", 8883, "home", True, None, None)),
    ("MQTT://cam@10.0.0.5/x/", ("10.0.0.5", 1883, "x", False, "cam", None)),
    ("mqtt://[::1]:1883/p", ("::1", 1883, "p", False, None, None)),
])
def test_urls_that_parse(url, want):
    assert parse_mqtt_url(url, allow_password=False) == want


def test_a_password_only_from_the_environment():
    with pytest.raises(MqttUrlError, match="FER_EDGE_MQTT_PASSWORD"):
        parse_mqtt_url("mqtt://cam:pw@host/p", allow_password=False)
    c = config([], {"FER_EDGE_MQTT_URL": "mqtt://cam:p%40ss@host/p"})
    assert (c.username, c.password, c.host, c.prefix) == ("cam", "p@ss", "host", "p")
    assert "p@ss" not in repr(c)  # never printed
    c = config(["--mqtt", "mqtt://host/p"], {"FER_EDGE_MQTT_USERNAME": "u", "FER_EDGE_MQTT_PASSWORD": "secret"})
    assert (c.username, c.password) == ("u", "secret") and "secret" not in repr(c)
    with pytest.raises(MqttUrlError, match="no user"):
        config(["--mqtt", "mqtt://host/p"], {"FER_EDGE_MQTT_PASSWORD": "secret"})


def test_flags_parse_into_the_config(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    c = config(["--mqtt", "mqtts://b/home", "--mqtt-ca", str(ca), "--mqtt-device", "door-1", "--mqtt-every-s", "0.5",
                "--mqtt-qos", "2", "--mqtt-faces-qos", "1", "--mqtt-retain", "--mqtt-ha", "--mqtt-queue", "50"])
    assert (c.tls, c.ca_file, c.device, c.every_s, c.qos, c.faces_qos, c.retain, c.home_assistant, c.queue) == (
        True, str(ca), "door-1", 0.5, 2, 1, True, True, 50)
    assert c.topic("events") == "home/door-1/events" and c.where == "mqtts://b:8883"
    assert config([]) is None


@pytest.mark.parametrize("argv, needle", [
    (["--mqtt", "mqtt://b/p", "--mqtt-every-s", "-1"], "--mqtt-every-s"),
    (["--mqtt", "mqtt://b/p", "--mqtt-queue", "0"], "--mqtt-queue"),
    (["--mqtt", "mqtt://b/p?x=1"], "no ?query"),
    (["--mqtt", "mqtt://b/a//c"], "empty"),
    (["--mqtt", "mqtt://b:0/p"], "port 0"),
    (["--mqtt-ca", "ca.pem"], "--mqtt-ca needs --mqtt"),
])
def test_refused_flags(argv, needle):
    with pytest.raises(MqttUrlError, match=needle.replace("?", r"\?")):
        config(argv)
