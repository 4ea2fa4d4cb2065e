"""Training, evaluation and export of the shipped models. Never imported by the service.

Needs the ``train`` extra (scikit-learn, onnx, onnxruntime, tflite).
"""
