"""The web UI and JSON API (`fer-edge serve`): Flask app in edge.web.app, waitress in edge.web.cli.

This module stays import-light (no Flask, no OpenCV) so that `fer-edge --help` does not pay for them.
"""

DEFAULT_MAX_UPLOAD_MB = 10.0
# A 12 MP phone photo or a 4K frame fits; the cap bounds the memory of one decoded image (3 bytes
# per pixel in BGR), so a crafted upload cannot exhaust it.
DEFAULT_MAX_PIXELS = 4096 * 4096
