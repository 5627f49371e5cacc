"""What a run leaves on disk and how it is read back: the run directory's files and their
formats (artifacts: JSON, CSV, locks, atomic writes), model.pt (checkpoint), a table's fitted
transform (preprocess), summary.json and the exit code a status gives (outcome), where a run
came from (provenance), and a rerun's comparison with the run it repeats (compare)."""
