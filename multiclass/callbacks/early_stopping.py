"""Early stopping: training ends once `trainer.early_stopping.patience` epochs have passed
without a better `trainer.monitor` figure (better: above the best by more than `min_delta`;
below it for val_loss)."""

from multiclass.callbacks import Callback, RunState
from multiclass.engine import EpochMetrics


class EarlyStopping(Callback):
    every_rank = True  # every rank of a data parallel run stops at the same epoch
    order = -10  # decides before anything records the epoch: last.pt knows it stopped

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        patience = run.settings.early_stopping.patience
        run.progress.stopped_early = run.progress.patience_spent(patience)
