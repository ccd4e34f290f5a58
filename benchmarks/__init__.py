"""Benchmarks of the runtime: they measure, the tests check behaviour. Grouped by what one runs:

- speed/: `fer-edge bench` (the pipeline per stage, with the peer), `bench classifier`, `bench soak`,
  `bench gil`, and `python -m benchmarks.speed.macs`;
- scenes/: synthetic scenes with known faces (synthetic.py, also used by the tests) and the
  benchmarks on them: `bench scenes`, `bench crowd`, `bench threshold`, `bench calibrate`;
- photos/: labelled real photos: `bench photos`, and `python -m benchmarks.photos.videos`;
- commands/: whole commands timed as a user runs them (`python -m benchmarks.commands.web_load`,
  `.batch`, `.mqtt_overhead`);
- demos/: the docs' pictures (`python -m benchmarks.demos.overlay_shots`, `.timeline`);
- common/: what they share (samples and statistics, report files and plots, the peer `fer`);
- results.py: `bench all`, the results table; cli.py: the `fer-edge bench` wiring.

They use `edge` (and `train` for the dataset); nothing but the tests uses them.
"""
