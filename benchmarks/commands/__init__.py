"""Whole fer-edge commands timed as a user runs them: `serve` under concurrent clients (web_load),
`batch` against `run` one video after another (batch), `run` with and without `--mqtt` (mqtt_overhead)."""
