"""What `fer-edge run` writes, and where.

    sinks.py        the Sink protocol; JSON Lines, annotated video and annotated image sinks
    paths.py        every output path checked before the first frame; what a failed write says
    video_writer.py video files a browser plays (H.264, VP9)
    heartbeat.py    the headless run's periodic "alive" line
    events.py       people appearing, changing label and leaving (for MQTT)
    mqtt_config.py  --mqtt's URL, flags and credentials
    mqtt.py         the MQTT sink
    metrics.py      the Prometheus metrics sink (--metrics-port, serve's /metrics)
    remote_cli.py   --mqtt and --metrics-port: their flags, checks and sinks
    window.py       `fer-edge run`'s window: sized to the screen, the keys it waits for
    overlay.py      draw(): boxes, track ids, labels and probability bars on a frame (window, video, web)
"""
