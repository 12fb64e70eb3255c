"""Export LightGBM models to ONNX and check that the export predicts what the model does.

Both models are LightGBM (a regressor for demand, a binary classifier for the ranker), converted
by onnxmltools (opset 15, the highest its converters support here). The input is one float32
tensor named :data:`INPUT` with one column per feature, in the order of the model's feature list.

ONNX tree ensembles keep split thresholds as float32 while LightGBM keeps doubles: a threshold
that rounds *up* onto a value the data can take sends that value the other way (we saw
prediction gaps of 0.09 units). :func:`float32_thresholds` first moves every threshold down to
the largest float32 not above it, which changes no native prediction on float32 inputs
(no float32 lies in between) and makes the ONNX comparison exact.

>>> float(floor32(0.1)) <= 0.1 < float(np.nextafter(floor32(0.1), np.float32(1)))
True
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT = "input"
OPSET = 15
SPLIT = 50  # trees per float32 partial sum of a regressor


@dataclass(frozen=True)
class Checked:
    """A converted model whose ONNX bytes onnxruntime has loaded and scored: all an export
    holds but the latencies, which :func:`export` measures after it."""

    onnx: bytes
    native: str
    output: str
    max_abs_diff: float
    check_scores: np.ndarray


@dataclass(frozen=True)
class Export:
    """An exported model and how it compares with the native one."""

    onnx: bytes
    native: str  # the booster (float32 thresholds) the ONNX file was converted from, as text
    output: str  # the output tensor holding the score
    max_abs_diff: float  # between ONNX and native predictions on the checked rows
    onnx_row_us: float  # median latency of one-row predictions
    native_row_us: float
    check_scores: np.ndarray  # ONNX scores of the checked rows, in their order


def floor32(value: float) -> np.float32:
    """The largest float32 that is not above ``value``."""
    f = np.float32(value)
    return np.nextafter(f, np.float32(-np.inf)) if float(f) > value else f


def float32_thresholds(model: Any) -> None:
    """Rewrite ``model``'s split thresholds to float32 values (in place; see the module doc)."""
    lines = []
    for line in model.booster_.model_to_string().splitlines():
        if line.startswith("tree_sizes="):
            continue  # byte sizes of the trees: stale once thresholds are rewritten
        if line.startswith("threshold="):
            values = line.removeprefix("threshold=").split()
            line = "threshold=" + " ".join(repr(float(floor32(float(v)))) for v in values)
        lines.append(line)
    model._Booster = lgb.Booster(model_str="\n".join(lines) + "\n")


def _has_stump(native: str) -> bool:
    r"""A tree that is a single leaf, read from the booster's text (LightGBM's JSON dump of
    the whole model, ~25 ms for the demand model, would say the same): onnxmltools cannot
    split such an ensemble into chunks (partial sums in double, :data:`SPLIT`), so it is
    converted whole.

    >>> _has_stump("Tree=0\nnum_leaves=3\n\nTree=1\nnum_leaves=1\n"), _has_stump("num_leaves=7")
    (True, False)
    """
    return "num_leaves=1" in native.splitlines()


def score_output(classifier: bool) -> str:
    return "probabilities" if classifier else "variable"


def session(onnx: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the classifier's label output warns about its shape
    options.intra_op_num_threads = 1
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


def onnx_scores(sess: ort.InferenceSession, output: str, rows: np.ndarray) -> np.ndarray:
    """The model's score per row: the prediction, or P(class 1) for a classifier."""
    (out,) = sess.run([output], {INPUT: rows.astype(np.float32, copy=False)})
    scores = np.asarray(out)
    return scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 else scores.ravel()


def native_scores(model: Any, rows: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(rows)[:, 1])
    return np.asarray(model.predict(rows))


def export(
    model: Any,
    check_rows: np.ndarray,
    latency_rows: int = 200,
    checked: Callable[[Checked], None] = lambda _: None,
) -> Export:
    """Convert ``model``; compare ONNX and native predictions on ``check_rows`` (held out);
    measure both one-row latencies. ``checked`` receives the model as soon as its ONNX file
    has been loaded and compared, before the latencies are measured: a trainer logs the model
    files meanwhile."""
    classifier = hasattr(model, "predict_proba")
    width = check_rows.shape[1]
    float32_thresholds(model)
    native = model.booster_.model_to_string()
    proto = convert_lightgbm(
        model,
        initial_types=[(INPUT, FloatTensorType([None, width]))],
        target_opset=OPSET,
        zipmap=False,
        split=None if classifier or _has_stump(native) else SPLIT,
    )
    onnx = proto.SerializeToString()
    output = score_output(classifier)
    sess = session(onnx)
    rows = check_rows.astype(np.float32)
    scores = onnx_scores(sess, output, rows)
    diff = float(np.max(np.abs(scores - native_scores(model, rows))))
    checked(Checked(onnx, native, output, diff, scores))
    sample = rows[: max(1, min(latency_rows, len(rows)))]
    onnx_us = _row_latency_us(lambda r: onnx_scores(sess, output, r), sample)
    native_us = _row_latency_us(lambda r: native_scores(model, r), sample)
    return Export(onnx, native, output, diff, onnx_us, native_us, scores)


def _row_latency_us(predict: Any, rows: np.ndarray) -> float:
    timings = []
    for i in range(len(rows)):
        row = rows[i : i + 1]
        start = time.perf_counter()
        predict(row)
        timings.append((time.perf_counter() - start) * 1e6)
    return float(statistics.median(timings))
