"""Whether a model's probabilities can be believed: expected calibration error, and one
temperature fitted on the validation split that divides the outputs before the probabilities."""
