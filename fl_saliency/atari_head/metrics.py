"""Saliency metrics of the Atari-HEAD benchmark: NSS, KL divergence and shuffled AUC.

Each metric scores one saliency map against one map of fixation counts (protocol.md section 5,
the original's ``metrics.py``) and is NaN ("undefined") where the original returned ``None``:
no fixation, a non-finite saliency value, a constant saliency map (NSS, sAUC), a saliency map
that is ~0 where the blurred fixations are positive or ~0 everywhere (KL). The sAUC has two
modes (``SHUFFLED_AUC``): ``exact``, the count-weighted AUC, which is the expectation of
``sampled``, the original's 100-split Monte Carlo estimate reproduced bit for bit.

Floating saliency maps are used in their own dtype (as the original did), other dtypes are
converted to float64. Fixation maps are non-negative integer counts.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fl_saliency.errors import FlSaliencyError

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


SHUFFLED_AUC = {"exact": shuffled_auc_exact, "sampled": shuffled_auc_sampled}
SAUC_MODES = tuple(SHUFFLED_AUC)


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
