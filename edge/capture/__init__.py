"""Frames from cameras, streams, video files, images, folders and picamera2.

    thread.py  Capture: the source on its own thread, the newest frame for live sources,
               every frame of a file, reconnects with backoff
"""
