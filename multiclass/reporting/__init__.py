"""What a person reads after runs end: a run's pictures, a sweep's table and picture."""
