"""fl_saliency.scoring.gaze_metrics against independent references: hand computations, scipy,
scikit-learn, OpenCV in the test, pysaliency, and a literal re-statement of the original's
Monte Carlo sAUC (metrics.auc_shuffled / benchmark_atari_head.auc_shuffled_many) on sklearn."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import scipy.stats

from fl_saliency.scoring.gaze_metrics import (
    SAUC_MODES,
    SHUFFLED_AUC,
    auc_judd,
    blur_fixations,
    bootstrap_ci,
    cc,
    information_gain,
    kl_divergence,
    mit_kl_divergence,
    nanmean_std_count,
    nss,
    other_maps_for_sauc,
    shuffled_auc_exact,
    saliency_density,
    shuffled_auc_sampled,
    sim,
)
from fl_saliency.common.errors import FlSaliencyError
from sauc_reference import ref_auc_shuffled, sklearn_weighted_auc


# --------------------------------------------------------------------------- generators

def _smap(rng, shape=(21, 16), levels=None, dtype=np.float64):
    """Non-negative smooth-ish saliency; with ``levels`` quantised so that ties abound."""
    s = rng.random(shape)
    s = cv2.GaussianBlur(s, (0, 0), 2.0) + 0.05
    if levels:
        s = np.floor(s / s.max() * levels) / levels + 0.1
    return s.astype(dtype)


def _fmap(rng, shape=(21, 16), n=15):
    f = np.zeros(shape, np.int64)
    ys = rng.integers(0, shape[0], n)
    xs = rng.integers(0, shape[1], n)
    np.add.at(f, (ys, xs), 1)
    return f


def _omap(rng, shape=(21, 16), n_maps=10, n=15):
    return sum(_fmap(rng, shape, n) for _ in range(n_maps))


# --------------------------------------------------------------------------- NSS

def test_nss_by_hand():
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    f = np.array([[1, 0], [0, 2]])
    mean, std = 1.5, math.sqrt(1.25)  # population std of 0, 1, 2, 3
    expected = (1 * (0 - mean) / std + 2 * (3 - mean) / std) / 3
    assert nss(s, f) == pytest.approx(expected, rel=1e-14)
    assert nss(s, np.array([[0, 0], [1, 0]])) == pytest.approx((2 - mean) / std, rel=1e-14)


def test_nss_matches_pysaliency():
    pm = pytest.importorskip("pysaliency.metrics")
    rng = np.random.default_rng(1)
    for _ in range(5):
        s, f = _smap(rng, (30, 20)), _fmap(rng, (30, 20), 25)
        ys, xs = np.nonzero(f)
        reps = f[ys, xs]
        # pysaliency returns one z-score per fixation; repeated fixations are listed repeatedly
        ref = np.mean(pm.NSS(s, np.repeat(xs, reps), np.repeat(ys, reps)))
        assert nss(s, f) == pytest.approx(ref, rel=1e-12)


# --------------------------------------------------------------------------- KL divergence

@pytest.mark.parametrize("shape,sigma", [((210, 160), 5.0), ((84, 84), 2.0), ((21, 16), 1.5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kl_matches_scipy_entropy(shape, sigma, dtype):
    rng = np.random.default_rng(2)
    s, f = _smap(rng, shape, dtype=dtype), _fmap(rng, shape, 18)
    p = cv2.GaussianBlur(f.astype(np.float64), (0, 0), sigmaX=sigma)
    ref = scipy.stats.entropy(p.ravel(), s.ravel())
    assert kl_divergence(s, f, sigma) == pytest.approx(ref, rel=1e-12)


def test_kl_matches_pysaliency_where_comparable():
    """pysaliency's image_based_kl_divergence(Q, P) is KL(P||Q) of the maps normalised after
    adding 1e-20 to every pixel, MIT_KLDiv the same with 2.2204e-16 inside the log and the
    quotient; both agree with ours up to those regularisations when Q > 0 everywhere."""
    pm = pytest.importorskip("pysaliency.metrics")
    rng = np.random.default_rng(3)
    for _ in range(3):
        s, f = _smap(rng, (210, 160)), _fmap(rng, (210, 160), 20)
        p = cv2.GaussianBlur(f.astype(np.float64), (0, 0), sigmaX=5.0)
        ours = kl_divergence(s, f, 5.0)
        assert ours == pytest.approx(pm.image_based_kl_divergence(s, p), rel=1e-10)
        with np.errstate(divide="ignore"):  # MIT_KLDiv takes log(0) where P == 0, weighted by 0
            assert ours == pytest.approx(pm.MIT_KLDiv(s, p), rel=1e-6)


# --------------------------------------------------------------------------- sAUC, exact

@pytest.mark.parametrize("levels", [None, 3, 6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sauc_exact_matches_weighted_sklearn(levels, dtype):
    rng = np.random.default_rng(4)
    for _ in range(4):
        s = _smap(rng, levels=levels, dtype=dtype)
        f, o = _fmap(rng), _omap(rng)
        o[np.nonzero(f)] += rng.integers(0, 2, np.count_nonzero(f))  # shared pixels too
        ref = sklearn_weighted_auc(s.astype(np.float64) if dtype == np.float64 else s, f, o)
        assert shuffled_auc_exact(s, f, o) == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_sauc_exact_ties_by_hand():
    s = np.array([[0.0, 0.5], [0.5, 1.0]])
    f = np.array([[0, 2], [0, 1]])   # positives: 0.5 (x2), 1.0
    o = np.array([[1, 0], [3, 0]])   # negatives: 0.0, 0.5 (x3)
    # 0.5 vs {0.0: win, 0.5 x3: half each} = 1 + 1.5; 1.0 beats all 4
    expected = (2 * (1 + 1.5) + 4) / (3 * 4)
    assert shuffled_auc_exact(s, f, o) == pytest.approx(expected, rel=1e-15)


# --------------------------------------------------------------------------- sAUC, sampled

@pytest.mark.parametrize("levels", [None, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sauc_sampled_is_the_original_bit_for_bit(levels, dtype):
    rng = np.random.default_rng(5)
    for _ in range(3):
        s, f, o = _smap(rng, levels=levels, dtype=dtype), _fmap(rng), _omap(rng)
        ref = ref_auc_shuffled(s, f, o, num_splits=100, random_state=42)
        got = shuffled_auc_sampled(s, f, o)
        assert got == ref  # same bits, not approximately
        assert shuffled_auc_sampled(s, f, o, seed=42) == got  # deterministic
        assert shuffled_auc_sampled(s, f, o, n_splits=7, seed=3) == \
            ref_auc_shuffled(s, f, o, num_splits=7, random_state=3)


@pytest.mark.slow
def test_sauc_sampled_mean_over_seeds_approaches_exact():
    rng = np.random.default_rng(6)
    for levels in (None, 5):
        s, f, o = _smap(rng, levels=levels), _fmap(rng, n=12), _omap(rng)
        exact = shuffled_auc_exact(s, f, o)
        samples = [shuffled_auc_sampled(s, f, o, seed=seed) for seed in range(200)]
        assert np.mean(samples) == pytest.approx(exact, abs=0.01)
        assert len(set(samples)) > 1  # the seed matters


# --------------------------------------------------------------------------- undefined cases

def test_undefined_cases_are_nan():
    rng = np.random.default_rng(7)
    s, f, o = _smap(rng), _fmap(rng), _omap(rng)
    const = np.full_like(s, 0.3)
    none = np.zeros_like(f)

    assert math.isnan(nss(const, f))
    assert math.isnan(shuffled_auc_exact(const, f, o))
    assert math.isnan(shuffled_auc_sampled(const, f, o))
    assert not math.isnan(kl_divergence(const, f, 1.5))  # a constant positive Q is fine

    for fn in (lambda m, fx: nss(m, fx), lambda m, fx: kl_divergence(m, fx, 1.5),
               lambda m, fx: shuffled_auc_exact(m, fx, o),
               lambda m, fx: shuffled_auc_sampled(m, fx, o)):
        assert math.isnan(fn(s, none))  # no fixations
        bad = s.copy()
        bad[3, 4] = np.nan
        assert math.isnan(fn(bad, f))  # non-finite saliency
        bad[3, 4] = np.inf
        assert math.isnan(fn(bad, f))

    assert math.isnan(kl_divergence(np.zeros_like(s), f, 1.5))  # the whole map ~0
    q = s.copy()
    q[:, :8] = 0.0
    f_left = np.zeros_like(f)
    f_left[10, 2] = 3
    assert math.isnan(kl_divergence(q, f_left, 1.5))  # Q ~0 where P > 0
    q[:, :8] = 1e-9  # ~0 by isclose as well
    assert math.isnan(kl_divergence(q, f_left, 1.5))

    assert math.isnan(shuffled_auc_exact(s, f, none))  # empty omap
    assert math.isnan(shuffled_auc_sampled(s, f, none))


def test_bad_input_raises():
    rng = np.random.default_rng(8)
    s, f = _smap(rng), _fmap(rng)
    with pytest.raises(FlSaliencyError):
        nss(s, f[:-1])
    with pytest.raises(FlSaliencyError):
        nss(s, f + 0.5)
    with pytest.raises(FlSaliencyError, match="negative"):
        shuffled_auc_exact(s, f, -f)
    with pytest.raises(FlSaliencyError, match="negative"):
        shuffled_auc_sampled(s, f, -f)
    assert SAUC_MODES == ("exact", "sampled")
    assert SHUFFLED_AUC == {"exact": shuffled_auc_exact, "sampled": shuffled_auc_sampled}


# --------------------------------------------------------------------------- other maps

def test_other_maps_for_sauc_uses_randomstate_42_in_map_order():
    counts = [0, 3, 5, 0, 2, 1, 4]
    k_maps = len(counts)
    got = other_maps_for_sauc(counts)

    gen = np.random.RandomState(42)
    expected = []
    for k, c in enumerate(counts):
        if c == 0:
            expected.append(None)
            continue
        raw = gen.randint(k_maps - 1, size=10)
        expected.append(np.array([j if j < k else j + 1 for j in raw]))
    for k in range(k_maps):
        if expected[k] is None:
            assert got[k] is None
        else:
            np.testing.assert_array_equal(got[k], expected[k])
            assert k not in got[k]
            assert got[k].min() >= 0 and got[k].max() < k_maps
    # the legacy stream itself is pinned: map 1 draws RandomState(42).randint(6, size=10)
    np.testing.assert_array_equal(np.random.RandomState(42).randint(6, size=10),
                                  [3, 4, 2, 4, 4, 1, 2, 2, 2, 4])
    np.testing.assert_array_equal(got[1], [4, 5, 3, 5, 5, 2, 3, 3, 3, 5])  # raw >= 1 shifted

    # a skipped map (non-finite saliency) consumes no random numbers
    skip = other_maps_for_sauc(counts, valid=[True, False, True, True, True, True, True])
    assert skip[1] is None
    np.testing.assert_array_equal(skip[2], _shift(np.random.RandomState(42).randint(6, size=10), 2))
    assert other_maps_for_sauc([4]) == [None]  # no other map to draw from

    # a long trial, map by map with one generator, as the original's loop
    rng = np.random.default_rng(11)
    counts = rng.integers(0, 3, 300) * rng.integers(0, 2, 300)
    valid = rng.random(300) > 0.1
    gen = np.random.RandomState(42)
    got = other_maps_for_sauc(counts, valid=valid)
    for k in range(300):
        if counts[k] == 0 or not valid[k]:
            assert got[k] is None
        else:
            np.testing.assert_array_equal(got[k], _shift(gen.randint(299, size=(10,)), k))


def _shift(raw, k):
    raw = raw.copy()
    raw[raw >= k] += 1
    return raw


def test_nanmean_std_count():
    mean, std, count = nanmean_std_count([1.0, np.nan, 3.0, None, 5.0])
    assert (mean, count) == (3.0, 3)
    assert std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    mean, std, count = nanmean_std_count([np.nan, None])
    assert math.isnan(mean) and math.isnan(std) and count == 0
    assert nanmean_std_count(np.array([0.0, 0.0, np.nan]))[:2] == (0.0, 0.0)


def test_other_maps_and_sampled_sauc_with_another_seed_and_split_count():
    rng = np.random.default_rng(10)
    smaps = np.stack([_smap(rng) for _ in range(3)])
    fmaps = np.zeros((3, 21, 16), np.int64)
    fmaps[1] = _fmap(rng)
    fmaps[2, 5, 5] = 4
    others = other_maps_for_sauc(fmaps.sum(axis=(1, 2)), seed=7)
    assert others[0] is None
    for k in (1, 2):
        omap = fmaps[others[k]].sum(axis=0)
        assert shuffled_auc_sampled(smaps[k], fmaps[k], omap, n_splits=5, seed=7) == \
            ref_auc_shuffled(smaps[k], fmaps[k], omap, 5, 7)


def test_exact_sauc_agrees_with_sklearn_on_raw_size_maps():
    """Random 210x160 maps as the benchmark scores them (blurred saliency, 10-20 fixations, an
    omap of 10 maps): exact == weighted roc_auc_score, and the sampled mean is near it."""
    rng = np.random.default_rng(12)
    for _ in range(3):
        s = _smap(rng, (210, 160))
        f, o = _fmap(rng, (210, 160), 15), _omap(rng, (210, 160), 10, 15)
        assert shuffled_auc_exact(s, f, o) == pytest.approx(sklearn_weighted_auc(s, f, o), rel=1e-12)


# --------------------------------------------------------------------------- MIT/Tuebingen set vs pysaliency

SEEDS = range(5)


def _cases(seed, shape=(30, 20)):
    """Random maps: smooth, quantised (ties), with negative values; the fixations as counts."""
    rng = np.random.default_rng(100 + seed)
    f = _fmap(rng, shape, 25)
    return f, [_smap(rng, shape), _smap(rng, shape, levels=4), _smap(rng, shape) - 0.3]


def _pysaliency_model(array, kind="saliency"):
    """A pysaliency model whose saliency map (kind "saliency") or log density ("log_density") is ``array``."""
    import pysaliency

    base, method = {"saliency": (pysaliency.SaliencyMapModel, "_saliency_map"),
                    "log_density": (pysaliency.Model, "_log_density")}[kind]
    return type("Fixed", (base,), {method: lambda self, stimulus: array})(caching=False)


def _pysaliency_inputs(f):
    """One stimulus of f's shape and its fixations, a pixel with count c listed c times."""
    import pysaliency

    ys, xs = np.nonzero(f)
    reps = f[ys, xs]
    xs, ys = np.repeat(xs, reps).astype(float), np.repeat(ys, reps).astype(float)
    stimuli = pysaliency.Stimuli([np.zeros(f.shape + (3,), np.uint8)])
    return stimuli, pysaliency.Fixations.create_without_history(xs, ys, np.zeros(len(xs), int))


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_judd_matches_pysaliency(seed, monkeypatch):
    pytest.importorskip("pysaliency")
    # pysaliency 0.2.22's compiled ROC calls numpy.trapz, which NumPy 2.4 removed (trapezoid: same sum)
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    f, maps = _cases(seed)
    stimuli, fixations = _pysaliency_inputs(f)
    for s in maps:
        ref = _pysaliency_model(s).AUC_Judd(stimuli, fixations, jitter=False)
        assert auc_judd(s, f) == pytest.approx(ref, abs=1e-12)
        # pysaliency's default jitter (1e-7 noise) changes nothing on maps without ties
        if np.unique(s).size == s.size:
            assert auc_judd(s, f) == pytest.approx(_pysaliency_model(s).AUC_Judd(stimuli, fixations), abs=1e-6)


def test_auc_judd_by_hand():
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    # fixation on 3 (top): at theta 3 TPR 1, FPR 0 -> AUC 1; fixation on 0 (bottom) -> AUC 0 + the last step
    assert auc_judd(s, np.array([[0, 0], [0, 1]])) == 1.0
    assert auc_judd(s, np.array([[1, 0], [0, 0]])) == 0.5  # one segment from (0, 0) to (1, 1)
    assert auc_judd(np.ones((3, 3)), np.eye(3, dtype=int)) == 0.5  # a constant map is chance
    assert np.isnan(auc_judd(s, np.ones((2, 2), int)))  # no unfixated pixel
    assert np.isnan(auc_judd(s, np.zeros((2, 2), int)))


@pytest.mark.parametrize("seed", SEEDS)
def test_cc_sim_mit_kl_match_pysaliency(seed):
    pm = pytest.importorskip("pysaliency.metrics")
    f, maps = _cases(seed)
    p = cv2.GaussianBlur(f.astype(np.float64), (0, 0), sigmaX=1.5)
    for s in maps:
        assert cc(s, f, 1.5) == pytest.approx(pm.CC(s, p), abs=1e-12)
        assert sim(s, f, 1.5) == pytest.approx(pm.SIM(s, p), abs=1e-12)
        with np.errstate(divide="ignore"):
            assert mit_kl_divergence(s, f, 1.5) == pytest.approx(pm.MIT_KLDiv(s, p), rel=1e-9, abs=1e-12)
    assert cc(np.ones(f.shape), f, 1.5) == pm.CC(np.ones(f.shape), p) == 0.0


def test_map_metrics_by_hand():
    s = np.array([[1.0, 3.0], [0.0, 0.0]])
    f = np.array([[0, 1], [0, 0]])
    p = blur_fixations(f, 0.3)
    np.testing.assert_array_equal(saliency_density(s), [[0.25, 0.75], [0.0, 0.0]])
    np.testing.assert_array_equal(saliency_density(np.zeros((2, 2))), np.full((2, 2), 0.25))
    q = p / p.sum()
    assert sim(s, f, 0.3) == pytest.approx(np.minimum(q, [[0.25, 0.75], [0, 0]]).sum(), rel=1e-14)
    assert cc(s, f, 0.3) == pytest.approx(scipy.stats.pearsonr(s.ravel(), p.ravel())[0], rel=1e-12)
    assert mit_kl_divergence(s * 7, f, 0.3) == pytest.approx(
        np.sum(q * np.log(2.2204e-16 + q / (saliency_density(s) + 2.2204e-16))), rel=1e-14)
    assert mit_kl_divergence(p, f, 0.3) == pytest.approx(0.0, abs=1e-12)  # a perfect map
    for metric in (cc, sim, mit_kl_divergence):
        assert np.isnan(metric(s, np.zeros((2, 2), int), 0.3))
        assert np.isnan(metric(np.array([[np.nan, 1.0], [0, 0]]), f, 0.3))
        with pytest.raises(FlSaliencyError, match="differ in shape"):
            metric(s, np.zeros((3, 2), int), 0.3)


@pytest.mark.parametrize("seed", SEEDS)
def test_information_gain_matches_pysaliency(seed):
    """pysaliency's model-based information gain (bits per fixation) with models whose log density
    is log(eps + the map made a density), the MIT benchmark's InfoGain regularisation."""
    pytest.importorskip("pysaliency")
    f, maps = _cases(seed)
    stimuli, fixations = _pysaliency_inputs(f)
    baseline = maps[0]
    base_model = _pysaliency_model(np.log(2.2204e-16 + saliency_density(baseline)), "log_density")
    for s in maps[1:] + [np.zeros(f.shape)]:
        model = _pysaliency_model(np.log(2.2204e-16 + saliency_density(s)), "log_density")
        ref = model.information_gain(stimuli, fixations, baseline_model=base_model)
        assert information_gain(s, f, baseline) == pytest.approx(ref, abs=1e-9)
    assert information_gain(baseline, f, baseline) == 0.0
    # a map that puts all mass on the fixated pixels of a 2-pixel image: 1 bit over uniform
    assert information_gain(np.array([[1.0, 0.0]]), np.array([[3, 0]]), np.ones((1, 2))) == pytest.approx(1.0)
    with pytest.raises(FlSaliencyError, match="baseline"):
        information_gain(baseline, f, np.ones((2, 2)))


@pytest.mark.parametrize("seed", range(3))
def test_bootstrap_ci_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(1.0, 2.0, 200 + 37 * seed)
    v[::9] = np.nan  # undefined values are left out
    defined = v[~np.isnan(v)]
    for batch in (None, 64):
        ours = bootstrap_ci(v, seed=seed, batch_rows=batch)
        ref = scipy.stats.bootstrap((defined,), np.mean, method="percentile", confidence_level=0.95,
                                    n_resamples=1000, batch=batch or 1000, rng=np.random.default_rng(seed))
        np.testing.assert_allclose(ours, [ref.confidence_interval.low, ref.confidence_interval.high],
                                   rtol=0, atol=1e-12)
    assert bootstrap_ci(v, seed=seed) == bootstrap_ci(v, seed=seed)  # reproducible
    assert bootstrap_ci(v, seed=seed)[0] < np.mean(defined) < bootstrap_ci(v, seed=seed)[1]
    assert all(np.isnan(bootstrap_ci([1.0, np.nan])))
