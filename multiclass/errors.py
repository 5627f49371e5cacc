"""Failures a user causes and can fix: the CLI reports them as one line, never a traceback."""


class UserError(Exception):
    """Bad input: a config value, a missing data file, a device that is not there."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; training stopped at `epoch`."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(
            f"loss became {loss} at epoch {epoch}: lower optimizer.lr or check the data"
        )
        self.epoch = epoch
