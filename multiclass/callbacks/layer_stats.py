"""layers.csv and layers.png: each layer's gradient and weight norms and activations, measured
on a fixed batch before the first epoch and at the epochs the log reports
(reporting/layers.py). `trainer.layer_stats=false` leaves them out."""

from multiclass.callbacks import Callback, RunState
from multiclass.callbacks.pictures import draw
from multiclass.engine import EpochMetrics, Evaluation
from multiclass.reporting.layers import LayerProbe, LayerStats


class LayerStatistics(Callback):
    def __init__(self) -> None:
        self.stats: LayerStats | None = None

    def on_fit_start(self, run: RunState) -> None:
        if not run.settings.layer_stats:
            return
        built, progress = run.built, run.progress
        probe = LayerProbe(built.task, built.model, built.splits.train)
        self.stats = LayerStats(run.run_dir, probe, progress.epoch)
        if not progress.epoch:
            run.callbacks.fire("on_layer_stats", run, 0, self.stats.first_rows)

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        if self.stats is not None and run.settings.reports(row.epoch):
            run.callbacks.fire("on_layer_stats", run, row.epoch, self.stats(row.epoch))

    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        if self.stats is not None and run.cfg.plots:
            from multiclass.reporting import layer_rows

            draw(run, layer_rows.LAYERS_PNG, layer_rows.draw, run.run_dir)
