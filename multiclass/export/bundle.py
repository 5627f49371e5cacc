"""bundle.json and README.txt: what a user of an exported model must know, outside this package.
The model's outputs are exactly the run's (its loss's final activation included, as in
multiclass.heads); the bundle says how they become a class and probabilities, with the run's
temperature."""

import json
import textwrap
from typing import Any

import numpy as np

from multiclass.export.preprocessing import preprocessing
from multiclass.heads import Head
from multiclass.inference.trained import TrainedRun
from multiclass.records.artifacts import weights_sha256

BUNDLE, README = "bundle.json", "README.txt"
INPUT, OUTPUT = "input", "outputs"  # the exported graph's input and output names
LINE = 96  # bundle.json's longest line of a list, README.txt's of a step


# NumPy functions the output rules use, as README.txt's snippet defines them.
HELPERS = {
    "softmax": "def softmax(z):\n    e = np.exp(z - z.max(axis=1, keepdims=True))\n"
    "    return e / e.sum(axis=1, keepdims=True)",
    "sigmoid": "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))",
    "logit": "def logit(p):  # clipped to float32's resolution, as the run's head does\n"
    "    p = np.clip(p, np.finfo(np.float32).eps, 1 - np.finfo(np.float32).eps)\n"
    "    return np.log(p) - np.log1p(-p)",
    "pair": "def pair(p):\n    return np.stack([1 - p, p], axis=1)",
}


def output_rule(head: Head) -> dict[str, Any]:
    """How the outputs (N, width) become the predicted class and the (N, k) probabilities, as
    NumPy code (with HELPERS, `T` the temperature, which divides logits and so never changes
    the predicted class)."""
    if head.width == 1:
        probability = head.final_activation is not None
        unit = "sigmoid(logit(outputs[:, 0]) / T)" if probability else "sigmoid(outputs[:, 0] / T)"
        return {
            "outputs": f"one {'probability' if probability else 'logit'} of the second class",
            "predicted": f"(outputs[:, 0] > {head.threshold:g}).astype(int)",
            "probabilities": f"pair({unit})",
        }
    if head.independent:
        probability = head.final_activation is not None
        kind = "probability" if probability else "logit"
        return {
            "outputs": f"a {kind} per class (independent sigmoids: rows need not sum to 1)",
            "predicted": "outputs.argmax(axis=1)",
            "probabilities": "sigmoid(logit(outputs) / T)"
            if probability
            else "sigmoid(outputs / T)",
        }
    kind = "a log-probability (log-softmax)" if head.final_activation else "a logit"
    return {
        "outputs": f"{kind} per class",
        "predicted": "outputs.argmax(axis=1)",
        "probabilities": "softmax(outputs / T)",
    }


def helpers_of(rule: dict[str, Any]) -> list[str]:
    """The HELPERS a rule's code calls."""
    return [name for name in HELPERS if f"{name}(" in rule["probabilities"]]


def applied(rule: dict[str, Any], outputs: np.ndarray, temperature: float) -> dict[str, Any]:
    """The rule's code run on `outputs`: `predicted` and `probabilities`, exactly as README.txt
    shows them (the check runs the text a user copies, not a copy of it)."""
    scope: dict[str, Any] = {"np": np, "outputs": outputs, "T": temperature}
    exec("\n".join(HELPERS[name] for name in helpers_of(rule)), scope)  # our own constants
    return {key: eval(rule[key], scope) for key in ("predicted", "probabilities")}


def bundle(run: TrainedRun, model_file: str, stored_dtype: str) -> dict[str, Any]:
    """bundle.json's content for `run`'s model exported as `model_file`."""
    return {
        "model": model_file,
        "class_names": run.class_names,
        INPUT: {
            "name": INPUT,
            "shape": ["N", *run.input_shape],
            "dtype": "float32",
            "layout": "NCHW" if len(run.input_shape) == 3 else "N, features",
        },
        OUTPUT: {"name": OUTPUT, "shape": ["N", run.head.width], **output_rule(run.head)},
        "temperature": run.temperature,
        "preprocessing": preprocessing(run, stored_dtype),
        "run": {
            "run_dir": str(run.run_dir),
            "checkpoint": run.checkpoint.name,
            "dataset": str(run.config.dataset.get("_target_")),
            "model": str(run.config.model.get("_target_")),
            "loss": str(run.config.loss.get("_target_")),
            "weights_sha256": weights_sha256(run.task.model),
        },
    }


def bundle_json(content: Any, indent: str = "") -> str:
    """JSON indented by two spaces, but a list that fits in a line of LINE characters on one
    (class names, a shape): the file stays short to read."""
    inner = indent + "  "
    if isinstance(content, dict) and content:
        items = [f"{inner}{json.dumps(k)}: {bundle_json(v, inner)}" for k, v in content.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" + ("" if indent else "\n")
    one_line = json.dumps(content)
    if isinstance(content, list) and len(inner + one_line) > LINE:
        items = [f"{inner}{bundle_json(v, inner)}" for v in content]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return one_line


LOADERS = {
    "onnx": (
        "import onnxruntime",
        'session = onnxruntime.InferenceSession("{model}")',
        'outputs = session.run(None, {{"{input}": x}})[0]',
    ),
    "torchscript": (
        "import torch",
        'model = torch.jit.load("{model}")',
        "outputs = model(torch.from_numpy(x)).detach().numpy()",
    ),
}


def readme(content: dict[str, Any], fmt: str) -> str:
    """README.txt: the files, the input and its preprocessing, the output rule (a docstring),
    then a minimal snippet (NumPy and the format's runtime only) that predicts a batch: the
    file runs as it is, `python README.txt`."""
    shape = content[INPUT]["shape"]
    out = content[OUTPUT]
    steps = "\n".join(
        textwrap.fill(step, LINE, initial_indent="  - ", subsequent_indent="    ")
        for step in content["preprocessing"]["steps"]
    )
    importer, loader, runner = (
        line.format(model=content["model"], input=INPUT) for line in LOADERS[fmt]
    )
    helpers = "\n\n\n".join(HELPERS[name] for name in helpers_of(out))
    example = ", ".join(["2", *map(str, shape[1:])])
    return f'''"""A classifier exported by multiclass-export ({fmt}). This file is also a Python
script: `python {README}` predicts a batch of zeros, the snippet below.

Files: {content["model"]} (the model), {BUNDLE} (everything below, as JSON).

Input "{INPUT}": float32, shape ({", ".join(map(str, shape))}), N any batch size.
Preprocessing ({content["preprocessing"]["kind"]}):
{quoted(steps)}

Output "{OUTPUT}": shape ({", ".join(map(str, out["shape"]))}), {out["outputs"]}.
  predicted class index: {out["predicted"]}
  probabilities: {out["probabilities"]}, T = temperature = {content["temperature"]:g}
  class names, by index: {quoted(", ".join(content["class_names"]))}
"""

import json

import numpy as np
{importer}


{helpers}


bundle = json.load(open("{BUNDLE}"))
T = bundle["temperature"]
{loader}
x = np.zeros(({example}), dtype=np.float32)  # your inputs, preprocessed as above
{runner}
predicted = {out["predicted"]}
probabilities = {out["probabilities"]}
print([bundle["class_names"][i] for i in predicted], probabilities.max(axis=1).round(3))
'''


def quoted(text: str) -> str:
    """`text` as it may stand in a docstring: a class name or step with a backslash or three
    quotes would end it early."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
