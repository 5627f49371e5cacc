"""preprocess.pkl: a table run's fitted input transform (a scikit-learn ColumnTransformer),
saved beside model.pt so that prediction transforms new rows as training did.

A scikit-learn transformer can only be saved as a pickle, and a pickle can run code when it is
loaded. So model.pt (itself loaded with weights_only=True) records the file's sha256, and a
pickle is loaded only when its digest matches and only with the classes a fitted transformer
is made of: scikit-learn estimators, numpy arrays, dtypes and scalars."""

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

from multiclass.errors import UserError
from multiclass.records.artifacts import write_atomic

PREPROCESS = "preprocess.pkl"
DIGEST_KEY = "preprocess_sha256"  # the key model.pt records it under
# The functions (not classes) numpy's pickles call to rebuild arrays and scalars from bytes.
NUMPY_REBUILDERS = {
    (f"numpy.{core}.{module}", name)
    for core in ("_core", "core")  # numpy 2, numpy 1
    for module, name in (
        ("multiarray", "_reconstruct"),
        ("multiarray", "scalar"),
        ("numeric", "_frombuffer"),
    )
}


def save_preprocess(run_dir: Path, transformer: Any) -> dict[str, str]:
    """Write `transformer` to run_dir/preprocess.pkl (whole or not at all) and return what
    model.pt records of it; nothing for a run without one."""
    if transformer is None:
        return {}
    payload = pickle.dumps(transformer, protocol=pickle.HIGHEST_PROTOCOL)
    write_atomic(run_dir / PREPROCESS, payload)
    return {DIGEST_KEY: hashlib.sha256(payload).hexdigest()}


def load_preprocess(run_dir: Path, checkpoint: dict[str, Any]) -> Any:
    """The transformer a checkpoint names by digest, or None when it names none."""
    digest = checkpoint.get(DIGEST_KEY)
    if digest is None:
        return None
    path = run_dir / PREPROCESS
    try:
        payload = path.read_bytes()
    except OSError:
        raise UserError(f"{path}: missing; the model needs it to transform its inputs") from None
    if hashlib.sha256(payload).hexdigest() != digest:
        raise UserError(f"{path}: refused, it is not the file this run's model was saved with")
    try:
        return TransformerUnpickler(io.BytesIO(payload)).load()
    except pickle.UnpicklingError as error:
        raise UserError(f"{path}: refused, {error}") from None
    except Exception as error:  # written by another scikit-learn that no longer reads it
        raise UserError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None


class TransformerUnpickler(pickle.Unpickler):
    """Admits scikit-learn estimators and numpy's arrays, dtypes and scalars, and nothing else:
    no function a pickle could call to run code or touch files."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in NUMPY_REBUILDERS or (module, name) == ("builtins", "slice"):
            return super().find_class(module, name)
        root = module.split(".")[0]
        if root in ("sklearn", "numpy"):
            found = super().find_class(module, name)
            if admitted(found):
                return found
        raise pickle.UnpicklingError(f"it holds {module}.{name}, which loading could run as code")


def admitted(found: Any) -> bool:
    import numpy as np
    from sklearn.base import BaseEstimator

    if not isinstance(found, type):
        return False
    kinds = (BaseEstimator, np.ndarray, np.dtype, np.generic)
    return issubclass(found, kinds) and not issubclass(found, np.memmap)  # memmap opens files
