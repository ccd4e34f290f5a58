"""`fer-edge batch`: the runtime over thousands of videos and photos, on one machine or a Ray cluster.

    inputs.py   INPUT arguments -> files (folders walked, globs, @lists), each a video or an image by content
    job.py      the settings of a batch and the one per-input function both engines run (edge.cli.run.run)
    store.py    the output folder: runs/<name>.jsonl (+ .summary.csv, .done.json), index.csv/.parquet, batch.json
    engines.py  where the per-input function runs: a local process pool, or Ray tasks
    cli.py      the command: progress bar, signals, exit status

Every input's records are the ones `fer-edge run --jsonl` writes, made by the same code; each
input's files appear whole (written beside their place, then renamed) and its `.done.json`
last, so a finished input is exactly one with a `.done.json` whose sha256 and settings match.
"""
