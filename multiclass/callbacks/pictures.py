"""The run's pictures, drawn once it is tested: learning curves, confusion matrix, reliability
diagram (calibration), and by the shape of the inputs the decision boundary (2-D points) or a
grid of test predictions (images).
`plots=false` leaves them out. A picture that fails is one error line: the run's results stand,
and the command exits 1."""

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import torch

from multiclass.callbacks import Callback, RunState
from multiclass.datasets.storage import gather
from multiclass.engine import Evaluation, predict
from multiclass.errors import one_line

log = logging.getLogger("multiclass")


def draw(run: RunState, name: str, function: Callable[..., None], *args: Any) -> None:
    """`function(*args)` draws the picture `name`; a failure is logged and kept in the run."""
    try:
        function(*args)
    except Exception as failure:
        line = f"{name} not drawn: {one_line(failure)}"
        log.error("error: %s", line)
        run.undrawn.append(line)
        run.summary["undrawn"] = run.undrawn  # a sweep's report counts the jobs it concerns


class Pictures(Callback):
    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        if not run.cfg.plots:
            return
        from multiclass.reporting import plots  # matplotlib: only for a run that draws

        splits, run_dir = run.built.splits, run.run_dir
        labels = splits.test.y.cpu().numpy()
        predictions = tested.predictions.numpy()
        rows = [dataclasses.asdict(row) for row in run.progress.history]
        draw(run, "curves.png", plots.curves, rows, run_dir / "curves.png")
        title = f"{splits.name}, {splits.evaluated_on} set: accuracy {tested.acc:.4f}"
        draw(
            run,
            "confusion_matrix.png",
            plots.confusion_matrix,
            labels,
            predictions,
            splits.class_names,
            title,
            run_dir / "confusion_matrix.png",
        )
        self.reliability(run, tested)
        if splits.input_shape == (2,):
            self.decision_boundary(run)
        if len(splits.input_shape) == 3:
            chosen = plots.grid_choice(labels, predictions)
            images = gather(splits.test.x, torch.as_tensor(chosen, device=splits.test.x.device))
            draw(
                run,
                "predictions.png",
                plots.prediction_grid,
                images.cpu().numpy(),
                chosen,
                labels,
                predictions,
                splits.class_names,
                run_dir / "predictions.png",
            )

    def reliability(self, run: RunState, tested: Evaluation) -> None:
        """The reliability diagram of the test probabilities (tempered, when calibrated)."""
        from multiclass.calibration import reliability
        from multiclass.reporting import plots

        splits, temperature = run.built.splits, run.built.task.temperature
        binned = reliability(tested.probabilities, splits.test.y)
        title = f"{splits.name}, {splits.evaluated_on} set: ECE {binned.ece:.4f}"
        if temperature != 1.0:
            title += f" (temperature {temperature:.3g})"
        draw(
            run,
            "reliability.png",
            plots.reliability_diagram,
            binned.counts,
            binned.accuracy,
            binned.confidence,
            title,
            run.run_dir / "reliability.png",
        )

    def decision_boundary(self, run: RunState) -> None:
        """The model's predictions over the plane, as an image under the training points."""
        from multiclass.reporting import plots

        splits, task = run.built.splits, run.built.task
        points = gather(splits.train.x, slice(None)).cpu().numpy()
        x0, x1 = plots.plane(points)
        plane = torch.from_numpy(plots.plane_points(x0, x1))
        response = predict(task, plane, run.settings.eval_batch_size)
        draw(
            run,
            "decision_boundary.png",
            plots.decision_boundary,
            points,
            splits.train.y.cpu().numpy(),
            x0,
            x1,
            response.numpy(),
            splits.class_names,
            run.run_dir / "decision_boundary.png",
        )
