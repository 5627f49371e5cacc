"""What a person reads after a run ends: its pictures (curves, confusion matrix, predictions,
layers). Many runs read together are multiclass.comparing's."""
