"""Speed and memory: the pipeline per stage against the peer, the classifier variants, the soak,
whether stages release the GIL, and the multiply-accumulates of a model."""
