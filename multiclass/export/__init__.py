"""A finished run's model outside this package (`multiclass-export`): ONNX or TorchScript, and
a bundle that says what the model takes and returns (class names, input shape and dtype, the
preprocessing to apply, the temperature)."""
