"""Failures a user causes and can fix: the CLI reports them as one line, never a traceback."""


class UserError(Exception):
    """Bad input: a config value, a missing data file, a device that is not there."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite, or grew past `bound`; training stopped at `epoch`."""

    def __init__(self, epoch: int, loss: float, bound: float | None = None) -> None:
        what = f"loss became {loss}"
        if bound is not None:
            what = (
                f"train loss {loss:.4g} passed {bound:.4g} (trainer.divergence_factor times the"
                " loss of chance-level outputs)"
            )
        super().__init__(f"{what} at epoch {epoch}: lower optimizer.lr or check the data")
        self.epoch = epoch


def describe_os_error(error: OSError) -> str:
    """What the system said and about which file, e.g. 'no space left on device: <path>'."""
    if error.errno is None or error.strerror is None:
        return " ".join(str(error).split())
    text = error.strerror[0].lower() + error.strerror[1:]
    return f"{text}: {error.filename}" if error.filename else text


def is_user_error(error: BaseException) -> bool:
    """Bad input, raised as such or wrapped by Hydra's `instantiate`."""
    return isinstance(error, UserError) or isinstance(error.__cause__, UserError)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line; an instantiation error names what it was building."""
    from hydra.errors import InstantiationException

    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        cause = error.__cause__
        if isinstance(cause, UserError):
            return str(cause)
        target = str(error).splitlines()[0].removeprefix("Error in call to target ").rstrip(":")
        error = type(cause)(f"cannot build {target}: {cause}")
    if isinstance(error, OSError) and error.filename:  # e.g. no space left on device: <path>
        return describe_os_error(error)
    text = " ".join(str(error).split())
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"
