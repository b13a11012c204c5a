"""Saliency metrics of the Atari-HEAD benchmark: the original's NSS, KL divergence and shuffled
AUC, and the MIT/Tuebingen benchmark's AUC-Judd, CC, SIM, MIT KL and information gain.

Each metric scores one saliency map against one map of fixation counts (docs/spec/protocol.md, section 5,
the original's ``metrics.py``) and is NaN ("undefined") where the original returned ``None``:
no fixation, a non-finite saliency value, a constant saliency map (NSS, sAUC), a saliency map
that is ~0 where the blurred fixations are positive or ~0 everywhere (KL). The sAUC has two
modes (``SHUFFLED_AUC``): ``exact``, the count-weighted AUC, which is the expectation of
``sampled``, the original's 100-split Monte Carlo estimate reproduced bit for bit.

Floating saliency maps are used in their own dtype (as the original did), other dtypes are
converted to float64. Fixation maps are non-negative integer counts.

The MIT/Tuebingen metrics follow pysaliency's ``metrics.py`` and models (Kümmerer et al. 2018,
"Saliency Benchmarking Made Easy"; Bylinskii et al. 2019, "What do different evaluation metrics
tell us about saliency models?"), computed in float64: a fixation map of counts stands for its
fixations (a pixel with count c is c fixations), and the map-to-map metrics (CC, SIM, MIT KL)
compare the saliency map with the fixations blurred as for KL (``blur_fixations``). They are NaN
where the original's guard says so (no fixation, a non-finite saliency value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from fl_saliency.common.errors import FlSaliencyError

NAN = float("nan")


# --------------------------------------------------------------------------- inputs

def _saliency(saliency) -> np.ndarray:
    s = np.asarray(saliency)
    return s if np.issubdtype(s.dtype, np.floating) else s.astype(np.float64)


def _counts(fixations, shape: tuple, name: str = "fixations") -> np.ndarray:
    """The fixation map as int64 counts of ``shape``; the sign is checked by the caller."""
    f = np.asarray(fixations)
    if f.shape != shape:
        raise FlSaliencyError(f"maps differ in shape: saliency {shape}, {name} {f.shape}")
    if f.dtype == np.bool_:
        return f.astype(np.int64)
    if not np.issubdtype(f.dtype, np.integer):
        if not np.issubdtype(f.dtype, np.floating) or not np.all(np.isfinite(f)) \
                or not np.array_equal(f, np.round(f)):
            raise FlSaliencyError(f"{name} must be a map of integer counts, got dtype {f.dtype}")
    return f.astype(np.int64, copy=False)


def _fixated(fixations, shape: tuple, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the pixels with a count, and their counts."""
    f = _counts(fixations, shape, name).ravel()
    idx = np.flatnonzero(f != 0)  # much faster on a bool map than on the counts
    weights = f[idx]
    if weights.size and weights.min() < 0:
        raise FlSaliencyError(f"{name} has negative counts")
    return idx, weights


def _dense_counts(fixations, shape: tuple) -> np.ndarray:
    f = _counts(fixations, shape)
    if f.size and f.min() < 0:
        raise FlSaliencyError("fixations has negative counts")
    return f


def _undefined(s: np.ndarray, f: np.ndarray) -> bool:
    """The original's per-map guard: no fixation, or a non-finite saliency value."""
    return not f.any() or not bool(np.isfinite(s).all())


# --------------------------------------------------------------------------- NSS and KL

def nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalized scanpath saliency: the z-scored map (population std) averaged over the
    fixations, each pixel weighted by its count; undefined when ``numpy.isclose(std, 0)``."""
    s = _saliency(saliency)
    f = _dense_counts(fixations, s.shape)
    if _undefined(s, f) or np.isclose(std := np.std(s), 0):
        return NAN
    return float(np.average((s - np.mean(s)) / std, weights=f))  # = sum(z * F) / sum(F)


def blur_fixations(fixations: np.ndarray, sigma: float) -> np.ndarray:
    """The fixation counts as float64, blurred by OpenCV's GaussianBlur with the kernel size
    derived from sigma and the default border (the original's P before normalisation)."""
    f = np.asarray(fixations)
    return cv2.GaussianBlur(_dense_counts(f, f.shape).astype(np.float64), (0, 0),
                            sigmaX=float(sigma), sigmaY=float(sigma))


def _entropy(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.stats.entropy(p, q)`` (scipy is not a runtime dependency): both normalised to sum
    1 in their common float dtype, then the sum of ``rel_entr`` (x log(x/y) for x, y > 0; 0 for
    x == 0 <= y; inf otherwise), natural log."""
    dtype = np.result_type(p.dtype, q.dtype, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        p = p.astype(dtype, copy=False)
        q = q.astype(dtype, copy=False)
        p = p / np.sum(p)
        q = q / np.sum(q)
        terms = np.full(p.shape, np.inf)
        both = (p > 0) & (q > 0)
        terms[both] = p[both] * np.log(p[both] / q[both])
    terms[(p == 0) & (q >= 0)] = 0.0
    return float(np.sum(terms))


def kl_divergence(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """KL(P || Q), P the fixations blurred with ``sigma`` (``blur_fixations``), Q the saliency
    map, as ``scipy.stats.entropy(P.ravel(), Q.ravel())``; undefined when Q is ~0 everywhere
    (``numpy.allclose(Q, 0)``) or anywhere P > 0 (``numpy.isclose(Q, 0)``)."""
    s = _saliency(saliency)
    f = _dense_counts(fixations, s.shape)
    if _undefined(s, f) or np.allclose(s, 0):
        return NAN
    p = blur_fixations(f, sigma)
    if np.isclose(s[p > 0], 0).any():
        return NAN
    return _entropy(p.ravel(), s.ravel())


# --------------------------------------------------------------------------- shuffled AUC

def _normalised_at(saliency, *index_lists):
    """The original's min-max normalisation ``(s - min) / (max - min)`` of the saliency at each
    list of flat pixel indices, or None where the sAUC is undefined: a non-finite value, or
    ``numpy.isclose(min, max)`` (in float64, rtol 1e-5, atol 1e-8)."""
    s = _saliency(saliency).ravel()
    s_min, s_max = np.min(s), np.max(s)
    if not (np.isfinite(s_min) and np.isfinite(s_max)):  # a NaN or inf anywhere shows here
        return None
    if abs(float(s_min) - float(s_max)) <= 1e-8 + 1e-5 * abs(float(s_max)):
        return None
    scale = s_max - s_min
    return [(s[idx] - s_min) / scale for idx in index_lists]


def shuffled_auc_exact(saliency: np.ndarray, fixations: np.ndarray,
                       other_fixations: np.ndarray) -> float:
    """Exact AUC of the min-max normalised saliency with positive weights = ``fixations`` counts
    and negative weights = ``other_fixations`` counts per pixel, ties counting 1/2: that is
    ``roc_auc_score(y, s, sample_weight=w)`` over the pixels, and the expectation of
    ``shuffled_auc_sampled``. Only the pixels with a count are sorted."""
    shape = np.shape(saliency)
    pos_idx, pos_w = _fixated(fixations, shape, "fixations")
    neg_idx, neg_w = _fixated(other_fixations, shape, "other_fixations")
    if pos_idx.size == 0 or neg_idx.size == 0:
        return NAN
    values = _normalised_at(saliency, pos_idx, neg_idx)
    if values is None:
        return NAN
    pos_val, neg_val = values
    order = np.argsort(neg_val)
    neg_val = neg_val[order]
    neg_below = np.zeros(neg_w.size + 1, np.int64)
    np.cumsum(neg_w[order], out=neg_below[1:])  # negative weight below each cut
    below = neg_below[np.searchsorted(neg_val, pos_val, side="left")]
    below_or_tied = neg_below[np.searchsorted(neg_val, pos_val, side="right")]
    # 2 * sum_p F_p * (W_neg(s < s_p) + W_neg(s == s_p) / 2), in exact integers
    return int(np.dot(pos_w, below + below_or_tied)) / (2 * int(pos_w.sum()) * int(neg_below[-1]))


def _roc_auc_binary(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """scikit-learn's ``roc_auc_score(y_true, y_score)`` for 0/1 labels (not a runtime
    dependency) with its arithmetic (distinct thresholds, drop_intermediate, trapezoid), hence
    its bits: the counts are exact integers in float64, the tie order within a threshold
    changes none of them."""
    order = np.argsort(y_score, kind="stable")[::-1]
    y_score = y_score[order]
    y_true = y_true[order].astype(np.float64)
    threshold_idxs = np.r_[np.flatnonzero(np.diff(y_score)), y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[threshold_idxs]
    fps = 1 + threshold_idxs.astype(np.float64) - tps
    if fps.shape[0] > 2:  # drop_intermediate=True
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[keep], tps[keep]
    fpr = np.r_[0.0, fps] / fps[-1]
    tpr = np.r_[0.0, tps] / tps[-1]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0, dtype=np.float64))


def shuffled_auc_sampled(saliency: np.ndarray, fixations: np.ndarray,
                         other_fixations: np.ndarray, n_splits: int = 100,
                         seed: int | None = 42) -> float:
    """The original's Monte Carlo sAUC (``metrics.auc_shuffled``), bit for bit: positives are
    the normalised saliency at each fixated pixel repeated by its count (pixel order); with a
    fresh ``RandomState(seed)``, ``choice(num_pixels, size=(n_splits, sum(F)), p=omap /
    omap.sum())`` draws each split's negatives; the mean of the splits' ROC AUCs (negatives
    first, labelled 0). Undefined where ``shuffled_auc_exact`` is."""
    shape = np.shape(saliency)
    pos_idx, pos_w = _fixated(fixations, shape, "fixations")
    o = _counts(other_fixations, shape, "other_fixations").ravel()
    if o.size and o.min() < 0:
        raise FlSaliencyError("other_fixations has negative counts")
    if pos_idx.size == 0 or not o.any():
        return NAN
    values = _normalised_at(saliency, slice(None))
    if values is None:
        return NAN
    (s,) = values
    n_fix = int(pos_w.sum())
    positives = np.repeat(s[pos_idx], pos_w)
    negatives = np.random.RandomState(seed=seed).choice(s.size, size=(int(n_splits), n_fix),
                                                        p=o / o.sum())
    y_true = np.r_[np.zeros(n_fix, np.uint8), np.ones(n_fix, np.uint8)]
    return float(np.mean([_roc_auc_binary(y_true, np.concatenate([s[row], positives]))
                          for row in negatives]))


# --------------------------------------------------------------------------- MIT/Tuebingen set

MATLAB_EPS = 2.2204e-16  # the MIT benchmark's regularisation constant (MATLAB's eps), as pysaliency


def saliency_density(saliency) -> np.ndarray:
    """pysaliency's ``convert_saliency_map_to_density(map, minimum_value=0)``: shifted to a minimum
    of 0 when it has negative values, divided by its sum; a map summing to 0 becomes uniform."""
    s = np.array(saliency, dtype=np.float64)
    if s.min() < 0:
        s -= s.min()
    total = s.sum()
    return s / total if total else np.full(s.shape, 1.0 / s.size)


def _fixation_inputs(saliency, fixations) -> tuple[np.ndarray, np.ndarray] | None:
    """The saliency map as float64 and the counts, or None where the metric is undefined."""
    s = np.asarray(saliency, dtype=np.float64)
    f = _dense_counts(fixations, s.shape)
    return None if _undefined(s, f) else (s, f)


def auc_judd(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """AUC-Judd (pysaliency ``AUC_Judd(jitter=False)``: nonfixations 'unfixated', thresholds
    'fixations'): positives the saliency at each fixation (repeated by count), negatives at every
    pixel without a fixation; the ROC has one threshold per positive value (plus one above and one
    at the minimum of all), a pixel counting as detected when its value is >= the threshold,
    integrated with the trapezoid rule. Ties therefore count 1/2; chance is 0.5, perfect 1.
    No jitter: a constant map scores exactly 0.5. Undefined when every pixel is fixated."""
    inputs = _fixation_inputs(saliency, fixations)
    if inputs is None:
        return NAN
    s, f = inputs
    positives = np.sort(np.repeat(s.ravel(), f.ravel()))
    negatives = np.sort(s[f == 0])
    if negatives.size == 0:
        return NAN
    thresholds = np.r_[max(positives[-1], negatives[-1]) + 1, positives[::-1], min(positives[0], negatives[0])]
    above = lambda values: values.size - np.searchsorted(values, thresholds, side="left")  # count of >= theta
    tpr = np.r_[0.0, above(positives) / positives.size]
    fpr = np.r_[0.0, above(negatives) / negatives.size]
    return float(np.add.reduce(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))  # numpy.trapz's arithmetic


def cc(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """Pearson's correlation of the saliency map with the blurred fixations (pysaliency ``CC``):
    in [-1, 1], chance 0; a constant saliency map scores 0."""
    inputs = _fixation_inputs(saliency, fixations)
    if inputs is None:
        return NAN
    s, f = inputs
    if np.std(s) == 0:
        return 0.0
    return float(np.corrcoef(s.ravel(), blur_fixations(f, sigma).ravel())[0, 1])


def sim(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """Similarity (histogram intersection, pysaliency ``SIM``): the sum over pixels of the minimum
    of the two maps each made a density (``saliency_density``); in [0, 1], 1 for identical maps."""
    inputs = _fixation_inputs(saliency, fixations)
    if inputs is None:
        return NAN
    s, f = inputs
    return float(np.minimum(saliency_density(s), saliency_density(blur_fixations(f, sigma))).sum())


def mit_kl_divergence(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """The MIT benchmark's KL (pysaliency ``MIT_KLDiv``): P the blurred fixations and Q the saliency
    map, each made a density, sum P log(eps + P / (Q + eps)) with eps = 2.2204e-16 (natural log);
    0 for a perfect map, lower is better. Unlike the original's KL it is defined where Q is 0."""
    inputs = _fixation_inputs(saliency, fixations)
    if inputs is None:
        return NAN
    s, f = inputs
    q, p = saliency_density(s), saliency_density(blur_fixations(f, sigma))
    return float((p * np.log(MATLAB_EPS + p / (q + MATLAB_EPS))).sum())


def information_gain(saliency: np.ndarray, fixations: np.ndarray, baseline: np.ndarray) -> float:
    """Information gain over ``baseline`` in bits per fixation (pysaliency ``information_gain``,
    average 'fixation'): both maps made densities (``saliency_density``), the mean over the
    fixations (count-weighted) of log2(eps + p_map) - log2(eps + p_baseline), eps = 2.2204e-16
    as the MIT benchmark's ``InfoGain``. 0 for a map as good as the baseline, > 0 better."""
    inputs = _fixation_inputs(saliency, fixations)
    if inputs is None:
        return NAN
    s, f = inputs
    b = np.asarray(baseline, dtype=np.float64)
    if b.shape != s.shape:
        raise FlSaliencyError(f"maps differ in shape: saliency {s.shape}, baseline {b.shape}")
    gain = np.log2(MATLAB_EPS + saliency_density(s)) - np.log2(MATLAB_EPS + saliency_density(b))
    return float(np.average(gain, weights=f))


SHUFFLED_AUC = {"exact": shuffled_auc_exact, "sampled": shuffled_auc_sampled}
SAUC_MODES = tuple(SHUFFLED_AUC)


# --------------------------------------------------------------------------- one signature

@dataclass(frozen=True)
class Gaze:
    """What a gaze metric scores one saliency map against.

    Args:
        fixations: fixation counts on the saliency map's grid (integers >= 0).
        sigma: the Gaussian blur, in pixels of that grid, that makes the fixations a density
            (KL, CC, SIM, MIT KL).
        other_fixations: the summed fixation counts of other frames of the trial, the shuffled
            AUC's negatives; None where there are none (the metric is then NaN).
        baseline: a reference saliency map (information gain over it); None: NaN.
        sauc_mode: ``"exact"`` or ``"sampled"`` (``SHUFFLED_AUC``).

    Example:
        >>> import numpy as np
        >>> fixations = np.zeros((4, 4), int); fixations[1, 2] = 1
        >>> Gaze(fixations, sigma=1.0).fixations.sum()
        np.int64(1)
    """

    fixations: np.ndarray
    sigma: float
    other_fixations: np.ndarray | None = None
    baseline: np.ndarray | None = None
    sauc_mode: str = "exact"


GazeMetric = Callable[[np.ndarray, Gaze], float]
"""The one signature: ``metric(saliency_map, gaze) -> float``, NaN where undefined."""


def _nss(saliency: np.ndarray, gaze: Gaze) -> float:
    return nss(saliency, gaze.fixations)


def _kldiv(saliency: np.ndarray, gaze: Gaze) -> float:
    return kl_divergence(saliency, gaze.fixations, gaze.sigma)


def _sauc(saliency: np.ndarray, gaze: Gaze) -> float:
    if gaze.other_fixations is None:
        return NAN
    return SHUFFLED_AUC[gaze.sauc_mode](saliency, gaze.fixations, gaze.other_fixations)


def _auc_judd(saliency: np.ndarray, gaze: Gaze) -> float:
    return auc_judd(saliency, gaze.fixations)


def _cc(saliency: np.ndarray, gaze: Gaze) -> float:
    return cc(saliency, gaze.fixations, gaze.sigma)


def _sim(saliency: np.ndarray, gaze: Gaze) -> float:
    return sim(saliency, gaze.fixations, gaze.sigma)


def _mit_kldiv(saliency: np.ndarray, gaze: Gaze) -> float:
    return mit_kl_divergence(saliency, gaze.fixations, gaze.sigma)


def _info_gain(saliency: np.ndarray, gaze: Gaze) -> float:
    return NAN if gaze.baseline is None else information_gain(saliency, gaze.fixations, gaze.baseline)


ORIGINAL_METRICS = ("nss", "kldiv", "sauc")  # the original benchmark's three, in its saliency.pkl
METRICS: dict[str, GazeMetric] = {
    "nss": _nss, "kldiv": _kldiv, "sauc": _sauc,
    "auc_judd": _auc_judd, "cc": _cc, "sim": _sim, "mit_kldiv": _mit_kldiv, "info_gain": _info_gain,
}
"""Every gaze metric by name, built-in and registered (``register_metric``), in scoring order."""
BUILTIN_METRICS = tuple(METRICS)


def register_metric(name: str, metric: GazeMetric) -> None:
    """Score ``metric`` beside the built-in gaze metrics (``saliency`` and ``score`` use ``METRICS``).

    Args:
        name: the metric's name in outputs (``saliency.json`` keys); not a built-in one.
        metric: ``metric(saliency_map, gaze: Gaze) -> float``, NaN where undefined.

    Raises:
        FlSaliencyError: for a built-in name or a name that is not an identifier-like string.

    Example:
        >>> import numpy as np
        >>> register_metric("peak_hit", lambda s, g: float(g.fixations.ravel()[np.argmax(s)] > 0))
        >>> "peak_hit" in METRICS
        True
        >>> del METRICS["peak_hit"]
    """
    from fl_saliency.common.settings import register

    register(METRICS, BUILTIN_METRICS, "gaze metric", name, metric, allowed="_-.")


def other_maps_for_sauc(fixation_counts_per_map: Sequence[int] | np.ndarray, seed: int | None = 42,
                        n_other: int = 10,
                        valid: Sequence[bool] | np.ndarray | None = None) -> list[np.ndarray | None]:
    """Indices of the maps whose fixation maps form map k's ``other_fixations``, drawn as the
    original's ``auc_shuffled_many``: one ``RandomState(seed)`` for the trial, used in map
    order; a map with fixations (count > 0) and ``valid[k]`` (a finite saliency map; default
    all) draws ``idx = randint(K - 1, size=n_other); idx[idx >= k] += 1`` (the other maps,
    with replacement, with or without fixations). Maps skipped get None and draw nothing; with
    K == 1 there is no other map (the original raised): None."""
    counts = np.asarray(fixation_counts_per_map).reshape(-1)
    n_maps = counts.shape[0]
    ok = np.ones(n_maps, bool) if valid is None else np.asarray(valid, bool).reshape(-1)
    if ok.shape[0] != n_maps:
        raise FlSaliencyError(f"valid has {ok.shape[0]} entries for {n_maps} maps")
    drawn = np.flatnonzero((counts > 0) & ok) if n_maps >= 2 else np.zeros(0, np.int64)
    # The legacy stream draws randint(K-1, size=(M, n)) exactly as M successive calls with
    # size=(n,) (same bound each time), so one call serves all maps, in map order.
    raw = np.random.RandomState(seed=seed).randint(max(n_maps - 1, 1), size=(drawn.size, n_other))
    raw[raw >= drawn[:, None]] += 1
    result: list[np.ndarray | None] = [None] * n_maps
    for row, k in enumerate(drawn):
        result[k] = raw[row]
    return result


def nanmean_std_count(values) -> tuple[float, float, int]:
    """Mean, population std and number of the defined values (NaN and None are undefined and
    left out, never counted as 0); (nan, nan, 0) when none is defined."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return NAN, NAN, 0
    return float(np.mean(v)), float(np.std(v)), int(v.size)


def bootstrap_ci(values, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                 batch_rows: int | None = None) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of the defined values (NaN left out):
    ``scipy.stats.bootstrap((v,), np.mean, method='percentile', confidence_level=confidence,
    n_resamples=n_resamples, batch=batch_rows, rng=numpy.random.default_rng(seed))`` computed the
    same way (resamples drawn ``batch_rows`` at a time; by default as many as keep one batch near
    4 million indices). (nan, nan) with fewer than 2 defined values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size < 2:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    batch_rows = batch_rows or max(1, 4_000_000 // v.size)
    means = np.concatenate([v[rng.integers(0, v.size, (min(batch_rows, n_resamples - start), v.size))].mean(axis=-1)
                            for start in range(0, n_resamples, batch_rows)])
    alpha = (1 - confidence) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def parse_metrics(text: str) -> list[str]:
    """``--metric``: comma-separated ``package.module:function`` -> their names, each registered
    (``register_metric``) under the function's name; ValueError naming the problem."""
    from fl_saliency.common.settings import import_callable

    names = []
    for spec in (part.strip() for part in text.split(",")):
        if ":" not in spec:
            raise ValueError(f"--metric takes package.module:function (the built-in metrics are always scored), got {spec!r}")
        name = spec.rpartition(":")[2]
        try:
            register_metric(name, import_callable(spec))
        except FlSaliencyError as exc:
            raise ValueError(str(exc)) from None
        names.append(name)
    return names


def score_each(maps: Iterable[np.ndarray], fixations_of: Callable[[int], np.ndarray], counts: Sequence[int],
               sigma: float, metrics: dict[str, GazeMetric] | None = None, baseline: np.ndarray | None = None,
               sauc_mode: str = "exact") -> dict[str, np.ndarray]:
    """Each metric of ``metrics`` (default: all of ``METRICS``) for each of K maps, float64 (K,), NaN
    where undefined. Map k is scored against ``fixations_of(k)``, the fixation counts of its frame
    (``counts[k]`` their total; 0 skips the map: no fixation, or a map known to be non-finite), and
    its shuffled AUC against the summed fixations of the other maps ``other_maps_for_sauc`` draws.
    The maps are consumed one at a time and a fixation map is asked for only when needed."""
    metrics = METRICS if metrics is None else metrics
    others = other_maps_for_sauc(counts)
    result = {name: np.full(len(counts), np.nan) for name in metrics}
    for k, smap in enumerate(maps):
        if counts[k] == 0:
            continue
        # None: a trial of one map, where the original's sAUC crashed
        other = None if others[k] is None else sum(fixations_of(j) for j in others[k])
        gaze = Gaze(fixations_of(k), sigma, other, baseline, sauc_mode)
        for name, metric in metrics.items():
            result[name][k] = metric(smap, gaze)
    return result


def score(maps: np.ndarray, fixations: np.ndarray, metric: str | GazeMetric = "nss", *, sigma: float = 5.0,
          baseline: np.ndarray | None = None, sauc_mode: str = "exact") -> np.ndarray:
    """Score saliency maps against the human fixations on their frames with any gaze metric.

    Args:
        maps: saliency maps (N, H, W), larger = more salient (``fl_saliency.methods``'s output, or yours).
        fixations: fixation counts (N, H, W) on the same grid: how often people looked at each pixel.
        metric: a name in ``METRICS`` (``"nss"``, ``"kldiv"``, ``"sauc"``, ``"auc_judd"``, ``"cc"``,
            ``"sim"``, ``"mit_kldiv"``, ``"info_gain"`` or one you registered) or a function
            ``metric(saliency_map, gaze: Gaze) -> float``.
        sigma: the Gaussian blur in pixels that makes fixations a density: 5.0 at Atari's 210x160,
            2.0 at 84x84, as the benchmark.
        baseline: the reference map of information gain (NaN without one).
        sauc_mode: ``"exact"`` or ``"sampled"`` shuffled AUC; its negatives are the fixations of 10
            other maps, drawn as the original benchmark draws them (fixed seed).

    Returns:
        float64 (N,): one value per map, NaN where the metric is undefined (no fixation, a
        non-finite or constant map).

    Raises:
        FlSaliencyError: for an unknown metric name, or maps and fixations of other shapes.

    Example:
        >>> import numpy as np
        >>> fixations = np.zeros((2, 84, 84), int); fixations[:, 40, 40] = 1
        >>> maps = np.zeros((2, 84, 84)); maps[0, 40, 40] = 1.0; maps[1, 10, 10] = 1.0
        >>> score(maps, fixations, "nss", sigma=2.0).round(1)  # sqrt(84 * 84 - 1) at the fixation
        array([84., -0.])
    """
    maps, fixations = np.asarray(maps), np.asarray(fixations)
    if maps.ndim != 3 or maps.shape != fixations.shape:
        raise FlSaliencyError(f"maps {maps.shape} and fixations {fixations.shape} must both be (N, H, W)")
    if not callable(metric) and metric not in METRICS:
        raise FlSaliencyError(f"unknown gaze metric {metric!r}; choose from: {', '.join(METRICS)}")
    if sauc_mode not in SHUFFLED_AUC:
        raise FlSaliencyError(f"unknown sauc_mode {sauc_mode!r}; choose from: {', '.join(SHUFFLED_AUC)}")
    if not sigma > 0:
        raise FlSaliencyError(f"sigma is the blur in pixels, above 0; got {sigma}")
    function = metric if callable(metric) else METRICS[metric]
    counts = [int(_dense_counts(f, f.shape).sum()) for f in fixations]
    return score_each(maps, fixations.__getitem__, counts, sigma, {"metric": function}, baseline, sauc_mode)["metric"]
