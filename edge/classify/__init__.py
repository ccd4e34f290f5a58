"""Classifying a face: crop it the way the model was trained, run the int8 emotion CNN.

    preprocess.py  the one crop -> model-input contract, shared by training and the runtime
    sidecar.py     the model's JSON sidecar: labels, input, crop policy (the contract with convert/)
    classifier.py  EmotionClassifier: gray face crops in, probabilities out
"""
