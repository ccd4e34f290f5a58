"""Finding faces: BlazeFace (or MediaPipe Tasks) on the whole frame or in tiles, with the still-frame carry.

    from edge.detect.factory import DetectorConfig, make_detector
    with make_detector(DetectorConfig(scan="tiles", min_face_px=32)) as detector:
        faces = detector.detect(image_bgr)  # Faces: xyxy (n,4) int32, score (n,), keypoints (n,6,2)

Modules, each building on the ones before it:

- anchors: MediaPipe's SSD anchor layout of the short- and full-range models;
- blazeface: the network, run on any region of a frame and decoded (`BlazeFaceNet`);
- frame: the whole frame in one pass (`BlazeFaceDetector`), or MediaPipe Tasks (`MediaPipeDetector`);
- windows: the network on a window of a frame, in frame pixels (`Window`, `WindowNets`);
- confirm: the second look and the rule that turns candidate boxes into faces; uncertain faces;
- motion: what changed between frames; detections carried over while a frame stands still (`StillCarry`);
- tiling: faces from `min_face_px` at every frame size (`TiledDetector`);
- factory: `FaceDetector`, `DetectorConfig`, `make_detector`.
"""
