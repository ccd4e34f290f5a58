"""`fer-edge report`: emotion timelines from the JSON Lines of `fer-edge run`.

    read.py     a run's JSONL into columns (read_run -> RunLog, load_jsonl -> a DataFrame)
    summary.py  per-track summaries, the CSV files, report.md and make_report
    types.py    the report's dataclasses (RunLog, TrackSummary, ReportConfig, ...)
    chart.py    the timeline chart (matplotlib, imported only to draw)
    photos.py   the per-image table and text of photo runs
    cli.py      the `fer-edge report` command
"""
