"""The model files the runtime needs, and where each is found (`fer-edge models`).

    registry.py  the face detectors (pinned URL and sha256), their lookup order and download;
                 the shipped emotion model (the repository's models/ folder, package fer_edge_models)
    cli.py       `fer-edge models list` and `fer-edge models pull`
"""
