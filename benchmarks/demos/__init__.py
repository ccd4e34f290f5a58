"""The pictures the docs show, made by the real runtime: overlay screenshots with a layout check,
and videos with known expression changes for `fer-edge report`."""
