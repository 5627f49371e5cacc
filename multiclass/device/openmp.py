"""OpenMP's wait policy for a run's threads. OpenMP reads it once, when torch loads it, so a
command that trains sets it as it starts, before it imports torch; `import multiclass` never
does. Without torch: importing this module must not load OpenMP.

Why passive: a thread that finished its share of an operation spins for the next by default,
holding a core. Beside other busy processes the run's threads then wait for each other at
every operation: a step of seed 004's CNN on two threads beside four busy loops took several
times as long spinning as sleeping (multiclass-bench --threads, docs/performance.md#threads).
Small steps train on one thread (multiclass.device.runtime.threads_for_step), which never
waits for another."""

import os
from collections.abc import Mapping, MutableMapping

# The settings a user may give OpenMP's wait; any of them in the environment is left alone.
WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# The names of the variables this package set, so that a child process (a benchmark's other
# contestants) can be given the environment as the user had it.
SET_BY_US = "MULTICLASS_SET_ENV"


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """OMP_WAIT_POLICY=PASSIVE for this process and the processes it starts, unless the user
    chose a wait policy; the variable set is named in SET_BY_US."""
    if any(name in environ for name in WAIT_SETTINGS):
        return
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    names = {*environ.get(SET_BY_US, "").split(), "OMP_WAIT_POLICY"}
    environ[SET_BY_US] = " ".join(sorted(names))


def users_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` without the variables this package set: what the user started with."""
    ours = {*environ.get(SET_BY_US, "").split(), SET_BY_US}
    return {name: value for name, value in environ.items() if name not in ours}
