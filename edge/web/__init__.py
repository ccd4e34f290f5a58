"""The web UI and JSON API (`fer-edge serve`): Flask app in edge.web.app, waitress in edge.web.cli.

This module stays import-light (no Flask, no OpenCV) so that `fer-edge --help` does not pay for them.
"""

DEFAULT_MAX_UPLOAD_MB = 10.0
# 16.7 MP: a 12 MP phone photo or a 4K frame fits; one decoded BGR image is then <= 50 MB.
DEFAULT_MAX_PIXELS = 4096 * 4096
