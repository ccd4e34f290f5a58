"""Tracking faces across frames: stable ids, and labels smoothed so they do not flicker.

    tracker.py  Tracker (IoU, then centre distance for faces missed a few frames), TrackerConfig
"""
