"""Saliency metrics of the Atari-HEAD benchmark: NSS, KL divergence and shuffled AUC.

Pure numpy (plus OpenCV for the Gaussian blur of the fixation maps), following protocol.md
section 5 and the original's ``metrics.py`` / ``benchmark_atari_head.py``:

* every metric is NaN ("undefined") where the original returned ``None``: a map without
  fixations, a saliency map with a non-finite value, a constant saliency map (NSS, sAUC), a
  saliency map that is ~0 where the blurred fixation map is positive or ~0 everywhere (KL);
* the shuffled AUC is the exact weighted AUC by default (``shuffled_auc_exact``), i.e. the
  expectation of the original's 100-split Monte Carlo estimate, which ``shuffled_auc_sampled``
  reproduces bit for bit (same ``RandomState`` draws, same ROC/trapezoid arithmetic as
  scikit-learn's ``roc_auc_score``).

Floating saliency maps are used in their own dtype (as the original did), other dtypes are
converted to float64. Fixation maps are non-negative integer counts.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fl_saliency.errors import FlSaliencyError

__all__ = [
    "nss",
    "kl_divergence",
    "shuffled_auc_exact",
    "shuffled_auc_sampled",
    "other_maps_for_sauc",
    "shuffled_auc_maps",
    "score_maps",
    "nanmean_std_count",
    "SAUC_MODES",
]

SAUC_MODES = ("exact", "sampled")
NAN = float("nan")


# --------------------------------------------------------------------------- input checks

def _as_saliency(saliency) -> np.ndarray:
    s = np.asarray(saliency)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    return s


def _as_counts(fixations, name: str = "fixations") -> np.ndarray:
    f = np.asarray(fixations)
    if f.dtype == np.bool_:
        return f.astype(np.int64)
    if not np.issubdtype(f.dtype, np.integer):
        if not np.issubdtype(f.dtype, np.floating) or not np.all(np.isfinite(f)) \
                or not np.array_equal(f, np.round(f)):
            raise FlSaliencyError(f"{name} must be a map of integer counts, got dtype {f.dtype}")
        f = f.astype(np.int64)
    if f.size and f.min() < 0:
        raise FlSaliencyError(f"{name} has negative counts")
    return f.astype(np.int64, copy=False)


def _check_same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise FlSaliencyError(f"maps differ in shape: {shapes}")


def _undefined_map(s: np.ndarray, f: np.ndarray) -> bool:
    """The original's per-map guard: no fixation, or a non-finite saliency value."""
    return not f.any() or not bool(np.isfinite(s).all())


# --------------------------------------------------------------------------- NSS

def nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalized scanpath saliency: mean of the z-scored map (population std) over the
    fixations, each pixel weighted by its count. NaN without fixations, with a non-finite
    saliency value, or when ``numpy.isclose(std, 0)``."""
    s, f = _as_saliency(saliency), _as_counts(fixations)
    _check_same_shape(saliency=s, fixations=f)
    if _undefined_map(s, f):
        return NAN
    std = np.std(s)
    if np.isclose(std, 0):
        return NAN
    z = (s - np.mean(s)) / std
    return float(np.average(z, weights=f))  # = sum(z * F) / sum(F), as the original


# --------------------------------------------------------------------------- KL divergence

def blur_fixations(fixations: np.ndarray, sigma: float) -> np.ndarray:
    """The fixation counts as float64, blurred by OpenCV's GaussianBlur with the kernel size
    derived from sigma and the default border (the original's P before normalisation)."""
    f = _as_counts(fixations).astype(np.float64)
    return cv2.GaussianBlur(f, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma))


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy.special.rel_entr: x*log(x/y) for x>0, y>0; 0 for x==0, y>=0; inf otherwise."""
    out = np.full(np.broadcast(x, y).shape, np.inf)
    both = (x > 0) & (y > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        out[both] = x[both] * np.log(x[both] / y[both])
    out[(x == 0) & (y >= 0)] = 0.0
    return out


def _entropy(p: np.ndarray, q: np.ndarray) -> float:
    """scipy.stats.entropy(p, q): both normalised to sum 1 (after promotion to a common float
    dtype, as current scipy does), sum of rel_entr, natural log."""
    dtype = np.result_type(p.dtype, q.dtype, np.float32)
    p = p.astype(dtype, copy=False)
    q = q.astype(dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / np.sum(p)
        q = q / np.sum(q)
    return float(np.sum(_rel_entr(p, q)))


def kl_divergence(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """KL(P || Q) with P the Gaussian-blurred fixation map (``blur_fixations``) and Q the
    saliency map, as ``scipy.stats.entropy(P.ravel(), Q.ravel())``.

    NaN without fixations, with a non-finite saliency value, when the whole saliency map is ~0
    (``numpy.allclose(Q, 0)``), or when Q is ~0 (``numpy.isclose(Q, 0)``) anywhere P > 0."""
    s, f = _as_saliency(saliency), _as_counts(fixations)
    _check_same_shape(saliency=s, fixations=f)
    if _undefined_map(s, f) or np.allclose(s, 0):
        return NAN
    p = blur_fixations(f, sigma)
    if np.isclose(s[p > 0], 0).any():
        return NAN
    return _entropy(p.ravel(), s.ravel())


# --------------------------------------------------------------------------- shuffled AUC

def _isclose(a, b) -> bool:
    """``numpy.isclose(a, b)`` for two finite scalars (rtol 1e-5, atol 1e-8), in float64."""
    a, b = float(a), float(b)
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


def _sparse_counts(counts, name: str, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat counts, indices of the non-zero pixels, their counts): one pass over the map for
    integer maps; the sign check only looks at the non-zero pixels."""
    c = np.asarray(counts)
    if not np.issubdtype(c.dtype, np.integer):
        c = _as_counts(c, name)
    if c.shape != shape:
        raise FlSaliencyError(f"maps differ in shape: saliency {shape}, {name} {c.shape}")
    c = c.ravel()
    idx = np.flatnonzero(c != 0)  # (much faster on a bool map than on the counts)
    weights = c[idx].astype(np.int64, copy=False)
    if weights.size and weights.min() < 0:
        raise FlSaliencyError(f"{name} has negative counts")
    return c, idx, weights


def _sauc_inputs(saliency, fixations, other_fixations):
    """Everything the sAUC needs, or None where it is undefined: no fixation, an empty omap, a
    non-finite saliency value, or ``isclose(min, max)`` (the original's guard before its
    min-max normalisation ``(s - s_min) / scale``). Few passes over the maps: they are large
    and the fixations few."""
    s = _as_saliency(saliency)
    f, pos_idx, pos_w = _sparse_counts(fixations, "fixations", s.shape)
    o, neg_idx, neg_w = _sparse_counts(other_fixations, "other_fixations", s.shape)
    if s.size == 0 or pos_idx.size == 0 or neg_idx.size == 0:
        return None
    s_min, s_max = np.min(s), np.max(s)
    if not (np.isfinite(s_min) and np.isfinite(s_max)):  # a NaN or inf anywhere shows here
        return None
    if _isclose(s_min, s_max):
        return None
    return s.ravel(), s_min, s_max - s_min, f, pos_idx, pos_w, o, neg_idx, neg_w


def shuffled_auc_exact(saliency: np.ndarray, fixations: np.ndarray,
                       other_fixations: np.ndarray) -> float:
    """Exact AUC of the min-max normalised saliency with positive weights = ``fixations``
    counts and negative weights = ``other_fixations`` counts per pixel; ties count 1/2.

    Equals ``roc_auc_score(y, s, sample_weight=w)`` over the pixels and is the expectation of
    ``shuffled_auc_sampled``. Only the P pixels with a positive or a negative count are
    normalised and sorted: a few passes over the map plus O(P log P). NaN without fixations,
    with an empty ``other_fixations``, a non-finite or a constant saliency map."""
    prepared = _sauc_inputs(saliency, fixations, other_fixations)
    if prepared is None:
        return NAN
    s, s_min, scale, _, pos_idx, pos_w, _, neg_idx, neg_w = prepared
    return _auc_exact_sparse(s, s_min, scale, pos_idx, pos_w, neg_idx, neg_w)


def _auc_exact_sparse(s: np.ndarray, s_min, scale, pos_idx: np.ndarray, pos_w: np.ndarray,
                      neg_idx: np.ndarray, neg_w: np.ndarray) -> float:
    """The exact weighted AUC from the flat saliency map and the (pixel, count) lists of the
    positives and negatives (a pixel may repeat in a list: its counts add up)."""
    pos_val = (s[pos_idx] - s_min) / scale  # elementwise as the original normalises the map
    neg_val = (s[neg_idx] - s_min) / scale
    order = np.argsort(neg_val)
    neg_val = neg_val[order]
    neg_cum = np.zeros(neg_w.size + 1, np.int64)
    np.cumsum(neg_w[order], out=neg_cum[1:])  # negative weight below each cut
    below = neg_cum[np.searchsorted(neg_val, pos_val, side="left")]
    below_or_tied = neg_cum[np.searchsorted(neg_val, pos_val, side="right")]
    # 2 * sum_p F_p * (W_neg(s < s_p) + W_neg(s == s_p) / 2), in exact integer arithmetic
    num2 = int(np.dot(pos_w, below + below_or_tied))
    return num2 / (2 * int(pos_w.sum()) * int(neg_cum[-1]))


def _roc_auc_binary(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """scikit-learn's ``roc_auc_score(y_true, y_score)`` for 0/1 labels without sample weights,
    with the same arithmetic (distinct thresholds, drop_intermediate, trapezoid), hence the
    same bits: all counts are exact integers in float64 and the tie order inside a threshold
    does not change them."""
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
    d = fpr[1:] - fpr[:-1]  # non-decreasing: direction 1
    return float(np.sum(d * (tpr[1:] + tpr[:-1]) / 2.0, axis=-1, dtype=np.float64))


def shuffled_auc_sampled(saliency: np.ndarray, fixations: np.ndarray,
                         other_fixations: np.ndarray, n_splits: int = 100,
                         seed: int | None = 42) -> float:
    """The original's Monte Carlo sAUC (``metrics.auc_shuffled``), bit for bit.

    Positives: the min-max normalised saliency at each fixated pixel, repeated by its count
    (pixel order). With a fresh ``numpy.random.RandomState(seed)``, ``n_splits`` rows of
    ``sum(F)`` negative pixels are drawn at once by ``choice(num_pixels, size=(n_splits,
    sum(F)), p=omap / omap.sum())``; each split's ROC AUC (negatives labelled 0 and placed
    first, positives 1) is computed as scikit-learn does, and the mean is returned.
    NaN where ``shuffled_auc_exact`` is NaN (the original asserted on an empty omap)."""
    prepared = _sauc_inputs(saliency, fixations, other_fixations)
    if prepared is None:
        return NAN
    s, s_min, scale, f, pos_idx, pos_w, o, _, _ = prepared
    s = (s - s_min) / scale
    num_fixations = int(pos_w.sum())
    positives = np.repeat(s[pos_idx], pos_w)  # pixel order, each repeated by its count
    random_fixations = np.random.RandomState(seed=seed).choice(
        s.shape[0], size=(int(n_splits), num_fixations), p=o / o.sum())
    y_true = np.zeros(num_fixations * 2, dtype=np.uint8)
    y_true[num_fixations:] = 1
    aucs = [_roc_auc_binary(y_true, np.concatenate([s[random_fixations[k]], positives]))
            for k in range(int(n_splits))]
    return float(np.mean(aucs))


def other_maps_for_sauc(fixation_counts_per_map: Sequence[int] | np.ndarray, seed: int | None = 42,
                        n_other: int = 10,
                        valid: Sequence[bool] | np.ndarray | None = None) -> list[np.ndarray | None]:
    """Indices of the maps whose fixation maps form map k's ``omap``, drawn as the original
    (``auc_shuffled_many``): one ``RandomState(seed)`` for the trial, used in map order; for a
    map with fixations (count > 0) and ``valid[k]`` (finite saliency map; default all True),
    ``idx = randint(K - 1, size=n_other); idx[idx >= k] += 1`` (uniform with replacement over
    the other maps, which may themselves lack fixations). Maps skipped get None and consume no
    random numbers. With K == 1 there is no other map: None (the original raised)."""
    counts = np.asarray(fixation_counts_per_map).reshape(-1)
    n_maps = counts.shape[0]
    ok = np.ones(n_maps, bool) if valid is None else np.asarray(valid, bool).reshape(-1)
    if ok.shape[0] != n_maps:
        raise FlSaliencyError(f"valid has {ok.shape[0]} entries for {n_maps} maps")
    drawn = np.flatnonzero((counts > 0) & ok) if n_maps >= 2 else np.zeros(0, np.int64)
    # The legacy stream draws randint(K-1, size=(M, n)) exactly as M successive calls with
    # size=(n,) (same bound each time), so one call serves all maps, in map order.
    raw = np.random.RandomState(seed=seed).randint(n_maps - 1 if n_maps >= 2 else 1,
                                                   size=(drawn.size, n_other))
    raw[raw >= drawn[:, None]] += 1
    result: list[np.ndarray | None] = [None] * n_maps
    for row, k in enumerate(drawn):
        result[k] = raw[row]
    return result


# --------------------------------------------------------------------------- all maps of a trial

def _trial_inputs(saliency_maps, fixation_maps):
    smaps = _as_saliency(saliency_maps)
    fmaps = np.asarray(fixation_maps)
    if smaps.ndim != 3 or smaps.shape != fmaps.shape:
        raise FlSaliencyError(f"expected saliency and fixation maps of one shape (K, H, W), got "
                              f"{smaps.shape} and {fmaps.shape}")
    if not np.issubdtype(fmaps.dtype, np.integer):
        fmaps = _as_counts(fmaps, "fixation_maps")
    return smaps, fmaps


def shuffled_auc_maps(saliency_maps: np.ndarray, fixation_maps: np.ndarray,
                      sauc_mode: str = "exact", *, seed: int | None = 42, n_other: int = 10,
                      n_splits: int = 100) -> np.ndarray:
    """The sAUC of each of the K maps of one trial (float64, NaN where undefined), as the
    original's ``auc_shuffled_many``: map k's ``omap`` is the sum of the fixation maps chosen
    by ``other_maps_for_sauc`` (repeats counted), scored by ``shuffled_auc_exact``
    (``"exact"``) or ``shuffled_auc_sampled`` (``"sampled"``, ``RandomState(seed)`` per map).

    The exact mode never builds the dense omaps: it reads each saliency map once (min, max)
    and the fixation maps once (their non-zero pixels), and gives the same bits as
    ``shuffled_auc_exact`` on the dense maps."""
    if sauc_mode not in SAUC_MODES:
        raise FlSaliencyError(f"unknown sAUC mode {sauc_mode!r}; choose from {', '.join(SAUC_MODES)}")
    smaps, fmaps = _trial_inputs(saliency_maps, fixation_maps)
    n_maps = smaps.shape[0]
    out = np.full(n_maps, np.nan)
    if n_maps == 0 or smaps[0].size == 0:
        return out
    flat_s = smaps.reshape(n_maps, -1)
    flat_f = fmaps.reshape(n_maps, -1)
    flat_idx = np.flatnonzero(flat_f != 0)  # sorted by map, then pixel (faster than 2-D nonzero)
    map_of, pixel = np.divmod(flat_idx, flat_f.shape[1])
    weight = flat_f.ravel()[flat_idx].astype(np.int64, copy=False)
    if weight.size and weight.min() < 0:
        raise FlSaliencyError("fixation_maps has negative counts")
    bounds = np.searchsorted(map_of, np.arange(n_maps + 1))
    counts = np.diff(bounds)  # fixated pixels per map: > 0 iff the map has fixations
    s_min = np.empty(n_maps, flat_s.dtype)
    s_max = np.empty(n_maps, flat_s.dtype)
    for lo in range(0, n_maps, 4):  # a few maps at a time: the second pass reads from cache
        flat_s[lo:lo + 4].min(axis=1, out=s_min[lo:lo + 4])
        flat_s[lo:lo + 4].max(axis=1, out=s_max[lo:lo + 4])
    finite = np.isfinite(s_min) & np.isfinite(s_max)  # NaN / inf anywhere shows here
    others = other_maps_for_sauc(counts, seed=seed, n_other=n_other, valid=finite)
    if sauc_mode == "sampled":
        for k, idx in enumerate(others):
            if idx is not None:
                out[k] = shuffled_auc_sampled(smaps[k], fmaps[k], fmaps[idx].sum(axis=0),
                                              n_splits=n_splits, seed=seed)
        return out
    return _auc_exact_trial(flat_s, s_min, s_max, pixel, weight, bounds, others)


def _auc_exact_trial(flat_s: np.ndarray, s_min: np.ndarray, s_max: np.ndarray,
                     pixel: np.ndarray, weight: np.ndarray, bounds: np.ndarray,
                     others: list[np.ndarray | None]) -> np.ndarray:
    """``_auc_exact_sparse`` for all maps of a trial at once (same integers, same division,
    hence the same bits), without a Python loop over the maps.

    ``pixel`` / ``weight``: the fixated pixels and their counts of all maps, map k's in
    ``bounds[k]:bounds[k+1]``. Every map k with ``others[k]`` gets one entry per fixated pixel
    of its own (positive) and of each chosen other map (negative, repeats included), valued by
    its own normalised saliency; a lexicographic sort by (map, value) groups equal values into
    runs, and the exact weighted AUC follows from the negative weight below each run."""
    n_maps = flat_s.shape[0]
    out = np.full(n_maps, np.nan)
    counts = np.diff(bounds)
    s_min64, s_max64 = s_min.astype(np.float64), s_max.astype(np.float64)
    constant = np.abs(s_min64 - s_max64) <= 1e-8 + 1e-5 * np.abs(s_max64)  # == _isclose
    owners = [k for k, idx in enumerate(others) if idx is not None and not constant[k]]
    if not owners:
        return out
    owners = np.asarray(owners)
    chosen = np.stack([others[k] for k in owners])  # (n_owners, n_other)
    # negatives: owner of each (owner, chosen map) pair, then the chosen map's pixels
    pair_owner = np.repeat(owners, chosen.shape[1])
    pair_map = chosen.ravel()
    seg = counts[pair_map]
    neg_pos = np.repeat(bounds[pair_map] - (np.cumsum(seg) - seg), seg) + np.arange(seg.sum())
    neg_owner = np.repeat(pair_owner, seg)
    # positives: the owners' own fixated pixels
    own = counts[owners]
    pos_pos = np.repeat(bounds[owners] - (np.cumsum(own) - own), own) + np.arange(own.sum())
    pos_owner = np.repeat(owners, own)

    entry_owner = np.concatenate([pos_owner, neg_owner])
    entry_pixel = pixel[np.concatenate([pos_pos, neg_pos])]
    w = weight[np.concatenate([pos_pos, neg_pos])]
    n_pos = pos_pos.size
    w_pos = np.where(np.arange(w.size) < n_pos, w, 0)
    w_neg = w - w_pos
    scale = s_max - s_min
    value = (flat_s[entry_owner, entry_pixel] - s_min[entry_owner]) / scale[entry_owner]

    order = np.argsort(value)  # then a stable (radix) sort by owner: = lexsort, but faster
    order = order[np.argsort(entry_owner[order], kind="stable")]
    entry_owner, value, w_pos, w_neg = entry_owner[order], value[order], w_pos[order], w_neg[order]
    new_run = np.ones(value.size, bool)
    new_run[1:] = (entry_owner[1:] != entry_owner[:-1]) | (value[1:] != value[:-1])
    run_start = np.flatnonzero(new_run)
    run_owner = entry_owner[run_start]
    run_pos = np.add.reduceat(w_pos, run_start)
    run_neg = np.add.reduceat(w_neg, run_start)
    below = np.cumsum(run_neg) - run_neg  # negative weight before the run, all owners so far
    first = np.ones(run_owner.size, bool)
    first[1:] = run_owner[1:] != run_owner[:-1]
    owner_start = np.flatnonzero(first)
    below -= np.repeat(below[owner_start], np.diff(np.r_[owner_start, run_owner.size]))
    num2 = np.add.reduceat(run_pos * (2 * below + run_neg), owner_start)
    w_pos_total = np.add.reduceat(run_pos, owner_start)
    w_neg_total = np.add.reduceat(run_neg, owner_start)
    k = run_owner[owner_start]
    ok = w_neg_total > 0  # an omap of maps without fixations is empty: undefined
    out[k[ok]] = [int(a) / (2 * int(b) * int(c))
                  for a, b, c in zip(num2[ok], w_pos_total[ok], w_neg_total[ok])]
    return out


def score_maps(saliency_maps: np.ndarray, fixation_maps: np.ndarray, sigma: float,
               sauc_mode: str = "exact", *, seed: int | None = 42, n_other: int = 10,
               n_splits: int = 100) -> dict[str, np.ndarray]:
    """NSS, KL divergence (blur ``sigma``: 5 raw, 2 processed) and shuffled AUC
    (``shuffled_auc_maps``) of the K maps of one trial, as float64 arrays of length K with NaN
    where undefined. A map without fixations or with a non-finite saliency value has all three
    undefined; the KL also where the saliency map is ~0 everywhere."""
    if sauc_mode not in SAUC_MODES:
        raise FlSaliencyError(f"unknown sAUC mode {sauc_mode!r}; choose from {', '.join(SAUC_MODES)}")
    smaps, fmaps = _trial_inputs(saliency_maps, fixation_maps)
    out = {key: np.full(smaps.shape[0], np.nan) for key in ("nss", "kldiv")}
    for k in range(smaps.shape[0]):
        s, f = smaps[k], fmaps[k]
        if _undefined_map(s, f):
            continue
        out["nss"][k] = nss(s, f)
        out["kldiv"][k] = kl_divergence(s, f, sigma)
    out["sauc"] = shuffled_auc_maps(smaps, fmaps, sauc_mode, seed=seed, n_other=n_other,
                                    n_splits=n_splits)
    return out


def nanmean_std_count(values) -> tuple[float, float, int]:
    """Mean, population std and number of the defined values (NaN and None are undefined and
    left out, never counted as 0); (nan, nan, 0) when none is defined."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return NAN, NAN, 0
    return float(np.mean(v)), float(np.std(v)), int(v.size)
