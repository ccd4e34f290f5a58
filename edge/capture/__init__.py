"""Frames from cameras, streams, video files, images, folders and picamera2.

    source.py   `--source` text -> SourceSpec (parse_source); SourceError says what to do instead
    readers.py  one device each (OpenCV, image files, picamera2); video_frames reads a file in place
    thread.py   Capture: the reader on its own thread, the newest frame of a live source, every
                frame of a file, reconnects with backoff
"""
