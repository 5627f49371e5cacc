"""Using a trained run: `load_run(RUN_DIR)` gives its model ready to predict, `inputs` turns
image and CSV files into what the model takes, `evaluation` tests it on a data set again."""

from multiclass.inference.trained import TrainedRun, load_run

__all__ = ["TrainedRun", "load_run"]
