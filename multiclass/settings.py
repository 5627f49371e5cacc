"""Every key a user can set, each declared in one place with what it may be.

The project's own keys (the top level, `trainer`, `finetune` and `device`) are the fields of
the dataclasses below, each declared by `setting`: its type is the field's, and from that one
declaration come its default (the nodes config.py gives conf/train.yaml and the device
options), its rule (what check_config allows), its doc line (the table in
docs/configuration.md) and whether a resume may change it (RESUMABLE_KEYS). The builders' keys
(the dataset, model, loss, optimizer, scheduler and logger options) are their functions'
arguments, with a default in each option's YAML: their rules are BUILDER_RULES.

A rule's error is one line naming the key, the value and what is allowed, instead of an error
from deep inside torch after minutes of work. Torch-free and Hydra-free: the command line
checks a run's config before it imports torch."""

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from multiclass.errors import UserError


@dataclass(frozen=True)
class Rule:
    """What a key takes: a `kind` (int, float, bool, str or list), within `low`..`high`
    (`open_low`/`open_high`: the bound itself excluded), one of `choices`, null when
    `optional`; a list's items follow `items`."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    items: "Rule | None" = None
    one_of: tuple["Rule", ...] = ()  # kind object: what any of these rules allows

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.one_of:
            return any(rule.allows(value) for rule in self.one_of)
        if self.kind is list:
            return isinstance(value, list | tuple) and all(map(self.items.allows, value))
        if not self.has_kind(value):
            return False
        if self.choices:
            return value in self.choices
        return self.within(value)

    def has_kind(self, value: Any) -> bool:
        if isinstance(value, bool) or self.kind is bool:
            return isinstance(value, bool) and self.kind is bool
        if self.kind is float:
            return isinstance(value, int | float) and math.isfinite(value)
        return isinstance(value, self.kind)

    def within(self, value: float | str) -> bool:
        if isinstance(value, str):
            return True
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        """What is allowed, in words: 'a number above 0 and below 1, or null'."""
        if self.one_of:
            text = " or ".join(rule.describe() for rule in self.one_of)
        elif self.kind is list:
            text = f"a list of {self.items.describe_plural()}"
        elif self.choices:
            text = "one of " + ", ".join(self.choices)
        else:
            text = {int: "an integer", float: "a number", bool: "true or false", str: "a text"}[
                self.kind
            ] + self.describe_range()
        return f"{text}, or null" if self.optional else text

    def describe_plural(self) -> str:
        if self.one_of:
            return " or ".join(rule.describe_plural() for rule in self.one_of)
        if self.kind is list:
            return f"lists of {self.items.describe_plural()}"
        names = {int: "integers", float: "numbers", bool: "true/false values", str: "texts"}
        return names[self.kind] + self.describe_range()

    def describe_range(self) -> str:
        """' > 0 and < 1', ' >= 1'."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {plain_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {plain_number(self.high)}")
        return " " + " and ".join(parts) if parts else ""


def plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def integer(low: float | None = None, high: float | None = None, optional: bool = False) -> Rule:
    return Rule(int, low, high, optional=optional)


def number(
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    optional: bool = False,
) -> Rule:
    return Rule(float, low, high, open_low, open_high, optional=optional)


def flag(optional: bool = False) -> Rule:
    return Rule(bool, optional=optional)


def text(optional: bool = False) -> Rule:
    return Rule(str, optional=optional)


def choice(*choices: str, optional: bool = False) -> Rule:
    return Rule(str, choices=choices, optional=optional)


def listing(items: Rule, optional: bool = False) -> Rule:
    return Rule(list, items=items, optional=optional)


def either(*rules: Rule) -> Rule:
    return Rule(object, one_of=rules)


# The declarations of the project's own keys.


@dataclass(frozen=True)
class Setting:
    """A field's declaration beyond its type and default: its doc line, its range or choices
    (the rule's kind and whether null is allowed come from the field's type), whether a
    resume may change it, and `checked=False` for bookkeeping no user sets."""

    doc: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    resumable: bool = False
    checked: bool = True


def setting(default: Any, doc: str, **declared: Any) -> Any:
    """A dataclass field with its default and its declaration (Setting's other fields)."""
    return field(default=default, metadata={"setting": Setting(doc, **declared)})


# trainer.monitor's choices: the validation figure that picks the best epoch (best.pt,
# `test_on: best`, early stopping, what a sweep or search optimises), and which way is better.
MONITORS = {"val_acc": "max", "val_loss": "min", "val_macro_f1": "max", "val_balanced_acc": "max"}
SEED_HIGH = 2**32 - 1  # what numpy and scikit-learn take (torch takes more)


@dataclass
class EarlyStopping:
    """Stop when the monitored validation figure (`trainer.monitor`) has not beaten its best
    by more than `min_delta` for `patience` epochs; `patience: null` (the default) never stops
    early."""

    patience: int | None = setting(
        None,
        "stop after this many epochs without a better trainer.monitor; null: never",
        low=1,
        resumable=True,
    )
    min_delta: float = setting(
        0.0,
        "what counts as better: more than best + min_delta (val_loss: less than best - min_delta)",
        low=0,
    )


@dataclass
class TrainerSettings:
    """How long and in what batches to train; `progress` turns itself off when not on a terminal."""

    epochs: int = setting(20, "how many epochs to train", low=1, resumable=True)
    batch_size: int = setting(64, "training samples a batch", low=1)
    eval_batch_size: int = setting(1024, "samples a batch when evaluating", low=1)
    drop_last: bool = setting(False, "drop the last partial training batch (seed 001 does)")
    progress: bool = setting(
        True, "a tqdm bar; off by itself when output is not a terminal", resumable=True
    )
    log_every: int = setting(
        1,
        "a log line every N epochs and for the last (metrics.csv has all)",
        low=1,
        resumable=True,
    )
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    test_on: str = setting(
        "last",
        "test (and save as model.pt) the last epoch's weights, or the best's",
        choices=("last", "best"),
    )
    monitor: str = setting(
        "val_acc",
        "what makes an epoch the best (best.pt, test_on=best, early stopping, the figure a"
        " sweep or search gets); val_loss: the lowest is best",
        choices=tuple(MONITORS),
    )
    checkpoint_every_s: float = setting(
        0, "write last.pt after every epoch (0), or once this many seconds passed", low=0
    )
    layer_stats: bool = setting(
        True,
        "layers.csv and layers.png: each layer's gradient norm, weight norm and activations,"
        " on a fixed batch, at the epochs the log reports; never changes the training",
    )
    divergence_factor: float | None = setting(
        1000,
        "diverged (exit 2) once an epoch's train loss passes this many times the loss of"
        " chance-level outputs (ln k for k-class cross entropy); null: only a NaN or infinite"
        " loss counts",
        low=1,
        open_low=True,
    )
    gradient_clip_norm: float | None = setting(
        None,
        "clip the global gradient norm to this before each optimizer step; null: off",
        low=0,
        open_low=True,
    )
    gradient_clip_value: float | None = setting(
        None,
        "clamp each gradient element to [-v, v] before each optimizer step; null: off",
        low=0,
        open_low=True,
    )
    accumulate_grad_batches: int = setting(
        1, "one optimizer step per this many training batches", low=1
    )
    ema: float | None = setting(
        None,
        "the decay of an exponential moving average of the weights; null: off",
        low=0,
        high=1,
        open_low=True,
        open_high=True,
    )

    calibrate: str | None = setting(
        None,
        "temperature: fit one temperature on the validation split (least NLL) that eval,"
        " predict and load_run apply to the outputs; null: off (ECE is reported either way)",
        choices=("temperature",),
    )

    def __post_init__(self) -> None:
        if isinstance(self.early_stopping, dict):
            self.early_stopping = EarlyStopping(**self.early_stopping)

    def reports(self, epoch: int) -> bool:
        """Every `log_every` epochs and the last: a log line and the layers.csv rows (a probe
        costs about as much as a whole epoch of the seeds' XOR and toy runs)."""
        return epoch % self.log_every == 0 or epoch == self.epochs


@dataclass(frozen=True)
class Finetuning:
    """Fine-tuning, for every model alike (multiclass/models/finetune.py): start from a weights
    file, train the head only, or the backbone at a fraction of the lr. Only a run's first
    build reads the file: a resume's last.pt and a model.pt hold every weight."""

    weights: str | None = setting(
        None,
        "a weights file to start from (torchvision's, timm's, a run's model.pt or its directory):"
        " every tensor but the classifier's, which is built for the data's classes",
    )
    freeze: str | None = setting(
        None,
        "backbone: train the classifier only (the rest keeps its weights, in eval mode)",
        choices=("backbone",),
    )
    backbone_lr: float = setting(
        1.0,
        "the backbone's lr as a fraction of optimizer.lr (discriminative lr)",
        low=0,
        open_low=True,
    )


@dataclass(frozen=True)
class DeviceSettings:
    """Where and how the run computes: the `device` group's options (auto, cpu, cuda) take these,
    `kind` their own, as multiclass.device.runtime.prepare's arguments."""

    kind: str = setting(
        "auto",
        "auto (cuda, then mps, then cpu), cuda, mps or cpu",
        choices=("auto", "cuda", "mps", "cpu"),
    )
    deterministic: bool = setting(True, "deterministic algorithms: same config, same numbers")
    num_threads: int | None = setting(
        None,
        "torch's threads; null: 1 for a small training step, else what the launcher granted or"
        " every core (1 a process when processes > 1)",
        low=1,
    )
    processes: int = setting(
        1,
        "data parallel: this many processes train the run, each on a share of every batch (gloo"
        " on the CPU, nccl a GPU each); the same as torchrun --nproc_per_node=N -m multiclass;"
        " how many train it, not what (the same weights, to rounding)",
        low=1,
        resumable=True,
    )
    precision: str = setting(
        "fp32",
        "fp32, bf16 (autocast) or fp16 (autocast and loss scaling)",
        choices=("fp32", "bf16", "fp16"),
    )
    compile: bool = setting(False, "torch.compile the model (compiles at the first step)")
    channels_last: bool = setting(
        True,
        "image batches and conv weights in channels_last (faster convs; only for models with 2-d"
        " convolutions)",
    )
    reuse_memory: bool = setting(
        True,
        "keep freed CPU memory for reuse, not give it back to the OS (glibc): faster big tensors",
    )


@dataclass
class SweepSettings:
    """How a sweep (-m) treats jobs that end early: read by the launcher and by each job."""

    retries: int = setting(
        0,
        "start a job that was killed or interrupted for a reason not its own (SIGKILL, node"
        " failure, preemption) again from its last.pt, up to this many times",
        low=0,
        resumable=True,
    )
    fail_fast: bool = setting(
        False,
        "the first job that fails on its config or data stops the sweep: no new jobs start,"
        " running ones end as interrupted",
        resumable=True,
    )


@dataclass
class RunSettings:
    """The top level of a run's config: the groups' options come beside these."""

    seed: int = setting(
        0,
        "seeds python, numpy, torch, batch order and data splits; 0 is a seed",
        low=0,
        high=SEED_HIGH,
    )
    plots: bool = setting(
        True,
        "write curves.png, confusion_matrix.png, reliability.png and the data-specific pictures",
        resumable=True,
    )
    reproduces: dict[str, Any] | None = setting(  # noqa: RUF009 (a field, as dataclasses.field)
        None, "set by an experiment: the figures its seed reported", checked=False
    )
    resume: str | None = setting(
        None,
        "a run directory (or a sweep's) to continue in place: multiclass-resume",
        resumable=True,
    )
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    finetune: Finetuning = field(default_factory=Finetuning)
    sweep: SweepSettings = field(default_factory=SweepSettings)


@dataclass(frozen=True)
class Declared:
    """One declared key as the rest of the project reads it."""

    key: str
    default: Any
    rule: Rule | None  # None: not checked
    doc: str
    resumable: bool


def declared(cls: type = RunSettings, prefix: str = "") -> Iterator[Declared]:
    """Every key that `cls` declares, nested dataclasses by their dotted keys, in order."""
    types_of = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        kind = types_of[item.name]
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(kind):
            yield from declared(kind, f"{key}.")
            continue
        spec: Setting | None = item.metadata.get("setting")
        if spec is None:  # a second home in the making: a default without its declaration
            raise TypeError(f"{cls.__name__}.{item.name}: declare it with setting(default, doc)")
        rule = rule_of(kind, spec) if spec.checked else None
        yield Declared(key, item.default, rule, spec.doc, spec.resumable)


def rule_of(annotation: Any, spec: Setting) -> Rule:
    """The rule of a field typed `annotation` (int, float, bool or str, `| None` when null is
    allowed) with the range or choices of its declaration."""
    options = typing.get_args(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    optional = union and type(None) in options
    (kind,) = [option for option in options if option is not type(None)] if union else [annotation]
    if kind not in (int, float, bool, str):
        raise TypeError(f"a declared setting is an int, float, bool or str, not {annotation}")
    bounds = (spec.low, spec.high, spec.open_low, spec.open_high)
    return Rule(kind, *bounds, choices=spec.choices, optional=optional)


DECLARED = {item.key: item for item in (*declared(), *declared(DeviceSettings, "device."))}


def defaults(settings: type = RunSettings) -> dict[str, Any]:
    """The declared keys' defaults as the nested node of a config."""
    return dataclasses.asdict(settings())


# Keys of the builders a resume may change too: the tracker (every logger.* key).
RESUMABLE_BUILDER_KEYS = ("logger",)
RESUMABLE_KEYS = (
    *(item.key for item in DECLARED.values() if item.resumable),
    *RESUMABLE_BUILDER_KEYS,
)

FRACTION = number(0, 1, open_high=True)  # a share of the data, of a unit's outputs
ACTIVATION = choice("relu", "leaky_relu", "sigmoid", "tanh", "gelu")

BUILDER_RULES: dict[str, Rule] = {
    # dataset
    "dataset.classes": listing(either(integer(0), text()), optional=True),  # index or name
    "dataset.limit": integer(1, optional=True),
    "dataset.val_fraction": FRACTION,
    "dataset.test_fraction": number(0, 1, open_low=True, open_high=True),
    "dataset.seed": integer(0, SEED_HIGH),
    "dataset.eval_on_train": flag(),
    "dataset.n_samples": integer(2),
    "dataset.centers": listing(listing(number())),
    "dataset.cluster_std": number(0, open_low=True),
    "dataset.noise": number(0),
    "dataset.root": text(optional=True),
    "dataset.download": flag(),
    "dataset.image_size": integer(1, optional=True),
    "dataset.grayscale": flag(),
    "dataset.max_bytes": integer(1, optional=True),
    "dataset.on_bad_image": choice("skip", "error"),
    "dataset.progress": flag(),
    "dataset.storage": choice("memory", "disk", "auto"),
    "dataset.cache_dir": text(optional=True),
    "dataset.path": text(optional=True),
    "dataset.target": text(optional=True),
    "dataset.features": listing(text(), optional=True),
    "dataset.numeric": listing(text(), optional=True),
    "dataset.impute": choice("mean", "most_frequent", optional=True),
    "dataset.test_path": text(optional=True),
    "dataset.folds": integer(2, optional=True),  # k-fold: the training data in K folds
    "dataset.fold": integer(0, optional=True),  # the fold that validates, 0..folds-1
    "dataset.sampler": choice("shuffle", "balanced"),
    # model
    "model.depth": integer(0),
    "model.width": integer(1),
    "model.hidden": listing(integer(1), optional=True),
    "model.activation": ACTIVATION,
    "model.dropout": FRACTION,
    "model.channels": listing(integer(1)),
    "model.kernel_size": integer(1),
    "model.padding": integer(0),
    "model.pool": integer(1),
    "model.convs_per_block": integer(1),
    "model.batch_norm": flag(),
    "model.name": text(),
    # augment
    "augment.padding": integer(0),
    "augment.flip": flag(),
    # loss
    # per-class weights, or balanced: n / (k * count) from the training split's counts
    "loss.weight": Rule(object, one_of=(listing(number(0)), choice("balanced")), optional=True),
    "loss.pos_weight": listing(number(0, open_low=True), optional=True),
    "loss.label_smoothing": number(0, 1),
    "loss.one_hot": flag(),
    # optimizer
    "optimizer.lr": number(0, open_low=True),
    "optimizer.weight_decay": number(0),
    "optimizer.momentum": FRACTION,
    "optimizer.fused": flag(optional=True),
    # scheduler
    "scheduler.lr_scheduler": text(),  # torch's class, by its dotted name
    "scheduler.interval": choice("batch", "epoch"),
    "scheduler.step_size": integer(1),
    "scheduler.gamma": number(0, open_low=True),
    "scheduler.T_max": integer(1, optional=True),
    "scheduler.eta_min": number(0),
    "scheduler.max_lr": number(0, open_low=True),
    "scheduler.total_steps": integer(1, optional=True),
    "scheduler.pct_start": number(0, 1, open_low=True, open_high=True),
    "scheduler.div_factor": number(0, open_low=True),
    "scheduler.final_div_factor": number(0, open_low=True),
    "scheduler.cycle_momentum": flag(),
    "scheduler.base_momentum": FRACTION,
    "scheduler.max_momentum": FRACTION,
    # logger
    "logger.subdir": text(),
    "logger.tracking_uri": text(),
    "logger.experiment": text(optional=True),
    "logger.artifacts": flag(),
}

# Every key's rule, by its dotted path whatever option of its group set it; a key without one
# (a user's own model or callback) is left to its builder.
RULES: dict[str, Rule] = {
    **{item.key: item.rule for item in DECLARED.values() if item.rule is not None},
    **BUILDER_RULES,
}


def check_folds(folds: int | None, fold: int | None, eval_on_train: bool = False) -> None:
    """k-fold's two keys together: both set or neither, `fold` one of 0..folds-1, and a data
    set with training samples to fold (xor and toy validate and test on theirs)."""
    if folds is None and fold is None:
        return
    if eval_on_train:
        raise UserError(
            "dataset.folds: this data set evaluates on its training samples"
            " (dataset.eval_on_train=true), which leaves nothing to fold"
        )
    if folds is None or fold is None:
        given, missing = ("dataset.folds", "dataset.fold")[:: 1 if fold is None else -1]
        raise UserError(f"{given} needs {missing} too: e.g. dataset.folds=5 dataset.fold=0")
    check_value("dataset.folds", folds)
    check_value("dataset.fold", fold)
    if fold >= folds:
        raise UserError(
            f"dataset.fold={fold}: the folds are numbered 0..{folds - 1} (dataset.folds={folds})"
        )


def check_value(key: str, value: Any) -> None:
    """A UserError naming `key` when its rule does not allow `value`; the one check of a key,
    for a builder called from Python as for a config."""
    rule = RULES.get(key)
    if rule is not None and not rule.allows(value):
        raise UserError(f"{key} must be {rule.describe()}, got {shown(value)}")


def shown(value: Any) -> str:
    """A value as the user typed it: text quoted, null as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def settings_table() -> str:
    """The declared keys as the markdown table of docs/configuration.md."""
    rows = ["| key | default | allowed | a resume may change it | what it does |"]
    rows.append("| --- | --- | --- | --- | --- |")
    for item in DECLARED.values():
        allowed = "(not checked)" if item.rule is None else item.rule.describe()
        resumable = "yes" if item.resumable else "no"
        default = shown(item.default).strip("'")
        rows.append(f"| `{item.key}` | `{default}` | {allowed} | {resumable} | {item.doc} |")
    return "\n".join(rows)
