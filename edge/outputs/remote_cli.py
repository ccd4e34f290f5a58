"""The outputs of `fer-edge run` that report elsewhere: --mqtt (edge.outputs.mqtt) and --metrics-port (edge.outputs.metrics).

    add_remote_args(parser)                    # the flags, in their own help groups
    mqtt = mqtt_from_args(args)                # MqttConfig or None; CliError for a malformed URL
    check_remote(mqtt, metrics_port)           # before any work: extras installed, port valid
    sinks = open_remote(config, pipeline, capture)   # the Sinks, connected/listening

A malformed URL or a missing extra is an error before the models load; an unreachable broker is
a warning and the run goes on (edge.outputs.mqtt.MqttSink.start).
"""

from __future__ import annotations

import argparse
import logging

from edge.cli import CliError, require

log = logging.getLogger(__name__)


def add_remote_args(parser: argparse.ArgumentParser) -> None:
    from edge.outputs.mqtt_config import add_mqtt_args

    add_mqtt_args(parser.add_argument_group("MQTT (needs the [mqtt] extra)"))
    m = parser.add_argument_group("Prometheus metrics (needs the [metrics] extra)")
    m.add_argument("--metrics-port", type=int, default=None, metavar="N",
                   help="serve Prometheus metrics at http://HOST:N/metrics while the run lasts: frames/s, per-stage "
                   "latency histograms, faces per frame, a counter per emotion, dropped frames, camera "
                   "reconnects, the model's sha256, CPU temperature (default: none)")
    m.add_argument("--metrics-host", default="0.0.0.0",
                   help="address the metrics server listens on (127.0.0.1: this machine only)")


def mqtt_from_args(args: argparse.Namespace):
    from edge.outputs.mqtt_config import MqttUrlError, mqtt_config_from_args

    try:
        return mqtt_config_from_args(args)
    except MqttUrlError as exc:
        raise CliError(str(exc)) from None


def check_remote(mqtt, metrics_port: int | None) -> None:
    """What can be refused before any work: missing extras, an impossible port."""
    if mqtt is not None:
        require("paho.mqtt.client", "mqtt")
    if metrics_port is not None:
        if not 0 <= metrics_port <= 65535:
            raise CliError(f"--metrics-port must be 0-65535, got {metrics_port}")
        require("prometheus_client", "metrics")


def open_remote(config, pipeline, capture) -> list:
    """The Sinks of --metrics-port and --mqtt, started; CliError when the metrics port cannot be bound."""
    from edge import __version__

    sinks: list = []
    metrics = None
    if config.metrics_port is not None:
        from edge.outputs.metrics import Metrics

        det = config.pipeline.detector
        metrics = Metrics(pipeline.labels, pipeline.classifier.model_path, detector=f"{det.backend} {det.range}")
        metrics.capture_stats = lambda: capture.stats
        try:
            port = metrics.serve(config.metrics_port, config.metrics_host)
        except OSError as exc:
            raise CliError(f"--metrics-port {config.metrics_port}: cannot listen on {config.metrics_host}: "
                           f"{exc.strerror or exc} (choose another port)") from None
        log.info("metrics: http://%s:%d/metrics", config.metrics_host, port)
        sinks.append(metrics)
    if config.mqtt is not None:
        from edge.outputs.mqtt import MqttSink

        tracker = config.pipeline.tracker
        try:
            mqtt = MqttSink(config.mqtt, max_missed=tracker.max_missed, max_age_s=tracker.max_age_s, version=__version__)
            mqtt.start()
        except (ValueError, OSError) as exc:  # e.g. a CA file that is no certificate
            if metrics is not None:
                metrics.close()
            raise CliError(f"--mqtt: {exc}") from None
        if metrics is not None:
            metrics.mqtt_stats = mqtt.stats
        sinks.append(mqtt)
    return sinks
