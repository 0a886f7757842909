"""Brute-force computations written only from the definitions of docs/theory.md.

Nothing here imports graphcollapse: an ecosystem is a :class:`Spec` (plain arrays of
sample counts and, optionally, loss shares), and every quantity is computed by the most
literal route the specification allows, so that the tests in
``tests/test_bruteforce_independent.py`` can compare the library with something that
shares none of its code (issue 9: "keep that kind of independent check in the tests").

* :func:`retrain` -- the retraining loop of docs/theory.md §1.1 and §1.3 for a family
  given as three plain functions (draw, fit, risk), in every data regime (replace /
  accumulate, fresh / reused real data, private / shared synthetic samples) and with
  loss shares (§2.8). Replicates run side by side on a leading axis, but every sample is
  drawn explicitly (no sufficient statistics, no Wishart shortcut).
* :data:`OLS`, :data:`GAUSSIAN`, :data:`CATEGORICAL` -- least squares (§3), the
  Gaussian fit by maximum likelihood or with the unbiased covariance (§5.1, §12), the
  categorical law fit by (smoothed) frequencies (§9).
* :func:`verdict` -- which models collapse (§2.2), by enumerating every subset of
  models, keeping the closed ones, and searching forward from them.
* :func:`ols_recursion` -- the exact finite-sample least-squares recursion of §3.1,
  from its formulas; :func:`ols_operator` the map ``T`` of §3.2 as an explicit matrix.
* :func:`threshold`, :func:`t_threshold`, :func:`mean_sem`, :func:`z` -- the comparison
  statistics every brute-force test module uses (Bonferroni at family-wise level
  :data:`ALPHA` per test and seed).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

ALPHA = 2e-5
"""Family-wise level of one brute-force test (one seed): its cells share it (Bonferroni)."""


def threshold(cells: int, alpha: float = ALPHA) -> float:
    """Two-sided Bonferroni threshold on |z| over ``cells`` comparisons."""
    return float(stats.norm.isf(alpha / (2 * max(cells, 1))))


def t_threshold(cells: int, dof: int, alpha: float = ALPHA) -> float:
    """The same for Student-t statistics with ``dof`` degrees of freedom."""
    return float(stats.t.isf(alpha / (2 * max(cells, 1)), dof))


def mean_sem(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the leading (replicate) axis."""
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def z(m1, s1, m2, s2) -> np.ndarray:
    """Two-sample z statistics (1e-12: deterministic cells, e.g. a fit on one symbol,
    agree to rounding with standard error 0)."""
    return (np.asarray(m1) - np.asarray(m2)) / (np.sqrt(np.square(s1) + np.square(s2)) + 1e-12)


# --------------------------------------------------------------------------- graphs


@dataclass
class Spec:
    """An ecosystem from docs/theory.md §1.1: ``syn[i, j] = n_ij`` (row = consumer).

    ``shares`` maps a model index to its loss shares (§2.8): ``{"real": s_i0, j: s_ij}``
    over every part the model has; models absent from it weigh samples by count.
    """

    syn: np.ndarray
    real: np.ndarray
    init: np.ndarray
    shares: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.real)

    @property
    def names(self) -> list[str]:
        return [f"m{i}" for i in range(self.k)]

    def total(self) -> np.ndarray:
        return self.real + self.syn.sum(axis=1)

    def producers(self, i: int) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.syn[i] > 0)]

    def to_dict(self) -> dict:
        """The ecosystem-file form (README "Describing an ecosystem")."""
        models = {}
        for i, name in enumerate(self.names):
            entry: dict = {"real": int(self.real[i]), "initial_real": int(self.init[i])}
            frm = {self.names[j]: int(self.syn[i, j]) for j in self.producers(i)}
            if frm:
                entry["from"] = frm
            if i in self.shares:
                entry["weights"] = {
                    self.names[j]: float(s) for j, s in self.shares[i].items() if j != "real"
                }
            models[name] = entry
        return {"models": models}


def random_spec(
    rng: np.random.Generator,
    *,
    max_models: int = 6,
    min_total: int = 1,
    max_count: int = 12,
    edge_prob: float = 0.4,
    real_prob: float = 0.5,
    weighted_prob: float = 0.0,
) -> Spec:
    """A random ecosystem: self-loops, real-only and isolated models all occur.

    Every model ends with at least ``min_total`` samples per generation and at
    generation 0 (counts are topped up on the real side, or on a random producer for
    models without real data). ``weighted_prob``: chance that a model with at least two
    parts gets random loss shares (a model without per-generation real data never does:
    accumulate refuses it, docs/theory.md §2.8).
    """
    k = int(rng.integers(1, max_models + 1))
    syn = np.where(rng.random((k, k)) < edge_prob, rng.integers(1, max_count + 1, (k, k)), 0)
    real = np.where(rng.random(k) < real_prob, rng.integers(1, max_count + 1, k), 0)
    for i in range(k):
        deficit = min_total - (real[i] + syn[i].sum())
        if deficit > 0:
            if real[i] > 0 or syn[i].sum() == 0 and rng.random() < 0.5:
                real[i] += deficit
            elif syn[i].sum() > 0:
                j = int(rng.choice(np.flatnonzero(syn[i])))
                syn[i, j] += deficit
            else:
                syn[i, i] += deficit
    tot = real + syn.sum(axis=1)
    init = np.where(rng.random(k) < 0.5, tot, np.maximum(min_total, tot + rng.integers(-3, 4, k)))
    shares = {}
    for i in range(k):
        parts = (["real"] if real[i] > 0 else []) + [int(j) for j in np.flatnonzero(syn[i])]
        if real[i] > 0 and len(parts) >= 2 and rng.random() < weighted_prob:
            s = rng.dirichlet(np.full(len(parts), 2.0))
            s = np.round(np.maximum(s, 0.05) / np.maximum(s, 0.05).sum(), 3)
            shares[i] = {p: float(v) for p, v in zip(parts[1:], s[1:], strict=True)}
            shares[i]["real"] = 1.0 - sum(shares[i].values())
    return Spec(syn.astype(int), real.astype(int), init.astype(int), shares)


def share_matrix(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The loss shares ``(W, s_0)`` of §2.8 (count shares where none are given)."""
    n = spec.total().astype(float)
    w = spec.syn / n[:, None]
    r = spec.real / n
    for i, s in spec.shares.items():
        w[i] = 0.0
        for p, v in s.items():
            if p == "real":
                r[i] = v
            else:
                w[i, p] = v
    return w, r


# --------------------------------------------------------------------------- verdict


def verdict(spec: Spec) -> dict:
    """docs/theory.md §2.2 by enumeration (at most ~12 models).

    A closed class is a non-empty set of models none of which takes real data and none
    of which takes data from outside the set; a model collapses iff a closed class
    reaches it. Every subset is tried; ``minimal`` are the closed sets with no closed
    proper subset; reachability is a breadth-first search along data flow.
    """
    k = spec.k
    edges = spec.syn > 0  # edges[i, j]: j -> i
    closed = []
    for size in range(1, k + 1):
        for sub in itertools.combinations(range(k), size):
            s = set(sub)
            if any(spec.real[i] > 0 for i in s):
                continue
            if any(edges[i, j] and j not in s for i in s for j in range(k)):
                continue
            closed.append(frozenset(s))
    minimal = [c for c in closed if not any(o < c for o in closed)]
    collapses = np.zeros(k, bool)
    for c in closed:
        seen = set(c)
        queue = deque(c)
        while queue:
            j = queue.popleft()
            for i in range(k):
                if edges[i, j] and i not in seen:
                    seen.add(i)
                    queue.append(i)
        collapses[list(seen)] = True
    in_closed = np.zeros(k, bool)
    for c in minimal:
        in_closed[list(c)] = True
    w, _ = share_matrix(spec)
    return {
        "collapses": collapses,
        "minimal": sorted(sorted(c) for c in minimal),
        "in_closed": in_closed,
        "rho": float(np.max(np.abs(np.linalg.eigvals(w)))) if k else 0.0,
        "real_fraction": spec.real / spec.total(),
    }


def ancestors(spec: Spec, i: int) -> list[int]:
    """Models with a directed path to ``i`` (``i`` included), by breadth-first search."""
    seen = {i}
    queue = deque([i])
    while queue:
        u = queue.popleft()
        for j in spec.producers(u):
            if j not in seen:
                seen.add(j)
                queue.append(j)
    return sorted(seen)


# --------------------------------------------------------------------------- families


@dataclass(frozen=True)
class BFFamily:
    """A family as three functions on replicate-first arrays.

    ``draw(theta, n, rng)`` returns ``(R, n, ...)`` samples from each replicate's law;
    ``fit(data, omega)`` fits ``(R, N, ...)`` data with per-sample weights ``omega``
    (``(N,)``, averaging 1); ``risk(theta)`` and each summary return ``(R,)``.
    """

    draw: object
    fit: object
    risk: object
    summaries: dict


def _ols(dim: int, noise: float, theta: np.ndarray) -> BFFamily:
    def draw(th, n, rng):
        x = rng.standard_normal((th.shape[0], n, dim))
        y = np.einsum("rnd,rd->rn", x, th) + noise * rng.standard_normal((th.shape[0], n))
        return np.concatenate([x, y[..., None]], axis=2)

    def fit(data, omega):
        # weighted least squares: argmin sum_a omega_a (y_a - x_a' theta)^2, solved by
        # lstsq on the rows scaled by sqrt(omega), every replicate at once
        sw = np.sqrt(omega)[None, :, None]
        xs, ys = data[..., :dim] * sw, data[..., dim:] * sw
        u, s, vt = np.linalg.svd(xs, full_matrices=False)
        return np.einsum("rji,rj,rnj,rn->ri", vt, 1.0 / s, u, ys[..., 0])

    def risk(th):
        return np.sum((th - theta) ** 2, axis=1)  # Sigma = I

    return BFFamily(draw, fit, risk, {})


def _gaussian(dim: int, unbiased: bool) -> BFFamily:
    # truth: N(0, I); parameters packed as (mean, cov) in one (R, d + d*d) array
    def draw(th, n, rng):
        mu, cov = th[:, :dim], th[:, dim:].reshape(-1, dim, dim)
        chol = np.linalg.cholesky(cov)
        z = rng.standard_normal((th.shape[0], n, dim))
        return mu[:, None, :] + np.einsum("rij,rnj->rni", chol, z)

    def fit(data, omega):
        tot = omega.sum()
        mu = np.einsum("n,rnd->rd", omega, data) / tot
        dev = data - mu[:, None, :]
        scatter = np.einsum("n,rni,rnj->rij", omega, dev, dev)
        denom = tot - (omega**2).sum() / tot if unbiased else tot
        return np.concatenate([mu, (scatter / denom).reshape(len(mu), -1)], axis=1)

    def risk(th):  # KL(N(0, I) || N(mu, S))
        mu, cov = th[:, :dim], th[:, dim:].reshape(-1, dim, dim)
        inv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        quad = np.einsum("ri,rij,rj->r", mu, inv, mu)
        return 0.5 * (np.trace(inv, axis1=1, axis2=2) + quad - dim + logdet)

    def var(th):
        return np.trace(th[:, dim:].reshape(-1, dim, dim), axis1=1, axis2=2)

    def mean_sq(th):
        return np.sum(th[:, :dim] ** 2, axis=1)

    return BFFamily(draw, fit, risk, {"cov_trace": var, "mean_sq": mean_sq})


def _categorical(probs: np.ndarray, alpha: float) -> BFFamily:
    k = len(probs)

    def draw(th, n, rng):  # symbols one by one, by inverting each replicate's CDF
        cdf = np.cumsum(th, axis=1)
        cdf[:, -1] = 1.0
        u = rng.random((th.shape[0], n))
        sym = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)  # first k with u < cdf_k
        return sym.astype(float)[..., None]

    def fit(data, omega):
        sym = data[..., 0].astype(np.int64)
        counts = np.einsum("rnk,n->rk", sym[..., None] == np.arange(k), omega)
        return (counts + alpha) / (omega.sum() + k * alpha)

    def risk(th):
        return 0.5 * np.sum((th - probs) ** 2 / probs, axis=1)

    def het(th):
        return 1.0 - np.sum(th**2, axis=1)

    def support(th):
        return np.sum(th > 0, axis=1).astype(float)

    return BFFamily(draw, fit, risk, {"heterozygosity": het, "support": support})


OLS = _ols
GAUSSIAN = _gaussian
CATEGORICAL = _categorical


# --------------------------------------------------------------------------- the loop


def _omega(types: list, sizes: list[int], shares: dict | None) -> np.ndarray:
    """Per-sample weights of a pool (§2.8): part ``p`` shares ``s_p`` over its samples."""
    n = sum(sizes)
    if shares is None:
        return np.ones(n)
    count: dict = {}
    for p, m in zip(types, sizes, strict=True):
        count[p] = count.get(p, 0) + m
    w = np.concatenate(
        [np.full(m, shares[p] / count[p]) for p, m in zip(types, sizes, strict=True)]
    )
    return w * n / w.sum()


def retrain(
    spec: Spec,
    fam: BFFamily,
    truth: np.ndarray,
    *,
    generations: int,
    replicates: int,
    rng: np.random.Generator,
    data: str = "replace",
    real: str = "fresh",
    synthetic: str = "private",
    keep_params: bool = False,
) -> dict:
    """Run the retraining loop; returns per-replicate risks ``(R, T + 1, K)`` and summaries.

    With ``keep_params`` also ``"params"``: every generation's fits, ``(T + 1, K, R, p)``.

    docs/theory.md §1.1 and §1.3, docs/simulation.md "Data regimes": generation 0 fits
    each model on ``init[i]`` real samples (under reused data, the fixed sample of
    ``real[i]`` rows plus ``init[i] - real[i]`` fresh ones when ``init >= real``);
    generation ``t`` refits it on ``real[i]`` real samples (fresh, or the fixed ones) and
    ``syn[i, j]`` samples from each producer's generation ``t - 1`` fit (private: drawn by
    the consumer; shared: the first ``syn[i, j]`` of the ``max_i syn[i, j]`` that ``j``
    publishes). Under accumulate the fit is on everything the model was ever given (a
    fixed real sample entering once).
    """
    k, big_r = spec.k, replicates
    star = np.broadcast_to(truth, (big_r, len(truth))).copy()
    fixed = [fam.draw(star, int(spec.real[i]), rng) for i in range(k)] if real == "reused" else None
    pools: list[list] = []
    theta = []
    for i in range(k):
        if real == "reused" and spec.init[i] >= spec.real[i]:
            extra = fam.draw(star, int(spec.init[i] - spec.real[i]), rng)
            parts = [("real", fixed[i]), ("real", extra)]
        else:
            parts = [("real", fam.draw(star, int(spec.init[i]), rng))]
        pools.append(parts)
        theta.append(_fit(fam, parts, None))
    fixed_in_pool = [real == "reused" and spec.init[i] >= spec.real[i] for i in range(k)]
    names = list(fam.summaries)
    risks = np.empty((big_r, generations + 1, k))
    summ = {s: np.empty((big_r, generations + 1, k)) for s in names}
    kept = []

    def record(t):
        if keep_params:
            kept.append(np.stack(theta))
        for i in range(k):
            risks[:, t, i] = fam.risk(theta[i])
            for s in names:
                summ[s][:, t, i] = fam.summaries[s](theta[i])

    record(0)
    for t in range(1, generations + 1):
        published = {}
        if synthetic == "shared":
            for j in range(k):
                m = int(spec.syn[:, j].max()) if k else 0
                if m > 0:
                    published[j] = fam.draw(theta[j], m, rng)
        new_theta = []
        for i in range(k):
            new = []
            if spec.real[i] > 0:
                if real == "fresh":
                    new.append(("real", fam.draw(star, int(spec.real[i]), rng)))
                elif data == "replace" or not fixed_in_pool[i]:
                    new.append(("real", fixed[i]))
                    if data == "accumulate":
                        fixed_in_pool[i] = True
            for j in spec.producers(i):
                n_ij = int(spec.syn[i, j])
                if synthetic == "shared":
                    new.append((j, published[j][:, :n_ij]))
                else:
                    new.append((j, fam.draw(theta[j], n_ij, rng)))
            if data == "accumulate":
                pools[i] = pools[i] + new
                parts = pools[i]
            else:
                parts = new
            new_theta.append(_fit(fam, parts, spec.shares.get(i)))
        theta = new_theta
        record(t)
    out = {"risk": risks, **summ}
    if keep_params:
        out["params"] = np.stack(kept)
    return out


def _fit(fam: BFFamily, parts: list, shares: dict | None) -> np.ndarray:
    types = [p for p, _ in parts]
    sizes = [a.shape[1] for _, a in parts]
    data = np.concatenate([a for _, a in parts], axis=1)
    return fam.fit(data, _omega(types, sizes, shares))


# --------------------------------------------------------------------------- OLS theory


def ols_coefficients(n: int, d: int) -> tuple[float, float]:
    """``(alpha, beta)`` of docs/theory.md §3.1 from its formulas for tau, alpha, beta."""
    tau = d * (n * d - 2) / (n - d - 1)
    alpha = (2 * d + tau) / (d * n * (n + 2))
    beta = (d - (tau - d) / (n - 1)) / (d * n * (n + 2))
    return alpha, beta


def ols_operator(spec: Spec, dim: int, models: list[int] | None = None) -> np.ndarray:
    """The map ``T`` of §3.2 (the recursion without its constant) on ``models``, as a matrix.

    Acting on ``vec(c)`` for ``c`` over ``models`` x ``models``; ``models`` must contain
    every producer of its members (an ancestor-closed set).
    """
    models = list(range(spec.k)) if models is None else models
    m = len(models)
    pos = {u: a for a, u in enumerate(models)}
    n = spec.total()
    big_t = np.zeros((m * m, m * m))
    for a, i in enumerate(models):
        for b, k in enumerate(models):
            row = a * m + b
            if i != k:
                for j in spec.producers(i):
                    for l in spec.producers(k):
                        big_t[row, pos[j] * m + pos[l]] += (
                            spec.syn[i, j] * spec.syn[k, l] / (n[i] * n[k])
                        )
            else:
                al, be = ols_coefficients(int(n[i]), dim)
                for j in spec.producers(i):
                    for l in spec.producers(i):
                        big_t[row, pos[j] * m + pos[l]] += be * spec.syn[i, j] * spec.syn[i, l]
                    big_t[row, pos[j] * m + pos[j]] += (al - be) * spec.syn[i, j]
    return big_t


def ols_recursion(spec: Spec, dim: int, sigma: float, generations: int) -> np.ndarray:
    """Exact least-squares risks ``(T + 1, K)``: §3.1 iterated from ``c⁽⁰⁾``."""
    k = spec.k
    n = spec.total()
    c = np.diag(sigma**2 * dim / (spec.init - dim - 1.0))
    q = sigma**2 * dim / (n - dim - 1.0)
    big_t = ols_operator(spec, dim)
    out = [np.diag(c).copy()]
    for _ in range(generations):
        c = (big_t @ c.ravel()).reshape(k, k) + np.diag(q)
        out.append(np.diag(c).copy())
    return np.array(out)


def linear_recursion(w: np.ndarray, v: np.ndarray, v0: np.ndarray, generations: int) -> np.ndarray:
    """§2.1: ``C' = W C Wᵀ + diag(v)``, ``C⁽⁰⁾ = diag(v0)``; risks ``(T + 1, K)``."""
    c = np.diag(v0)
    out = [v0.copy()]
    for _ in range(generations):
        c = w @ c @ w.T + np.diag(v)
        out.append(np.diag(c).copy())
    return np.array(out)


def subspec(spec: Spec, models: list[int]) -> Spec:
    """The ecosystem restricted to an ancestor-closed set of models (same order)."""
    idx = np.asarray(models)
    shares = {}
    for a, i in enumerate(models):
        if i in spec.shares:
            shares[a] = {
                (p if p == "real" else models.index(p)): v for p, v in spec.shares[i].items()
            }
    return Spec(spec.syn[np.ix_(idx, idx)], spec.real[idx], spec.init[idx], shares)


def _location() -> BFFamily:
    """The first-order model itself: samples ``N(theta_j, 1)``, fit = weighted mean.

    For this family the linear recursion of docs/theory.md §2.1 (and its regime and
    loss-weight variants, §2.8, §4.2-§4.4) is exact with ``V = 1``, so a Monte Carlo
    of this loop checks the linear theory in every regime from the definitions.
    """

    def draw(th, n, rng):
        return th[:, None, :] + rng.standard_normal((th.shape[0], n, 1))

    def fit(data, omega):
        return np.einsum("n,rnd->rd", omega, data) / omega.sum()

    def risk(th):
        return th[:, 0] ** 2

    return BFFamily(draw, fit, risk, {})


LOCATION = _location


def shared_noise(spec: Spec, v: float = 1.0) -> np.ndarray:
    """``Q`` of §4.2 / §2.8 for shared samples.

    ``Q_ik = V Σ_j min(n_ij, n_kj) s_ij s_kj / (n_ij n_kj)`` between consumers ``i != k``.

    The diagonal is ``V Σ_p s_ip² / n_ip`` over every part (real included).
    """
    w, r = share_matrix(spec)
    k = spec.k
    q = np.zeros((k, k))
    for i in range(k):
        for kk in range(k):
            for j in range(k):
                if spec.syn[i, j] and spec.syn[kk, j]:
                    q[i, kk] += (
                        min(spec.syn[i, j], spec.syn[kk, j])
                        * w[i, j]
                        * w[kk, j]
                        / (spec.syn[i, j] * spec.syn[kk, j])
                    )
        if spec.real[i]:
            q[i, i] += r[i] ** 2 / spec.real[i]
    return v * q


def private_noise(spec: Spec, v: float = 1.0) -> np.ndarray:
    """``diag(V / n_eff)``: ``V Σ_p s_ip² / n_ip`` over the parts of each model (§2.8)."""
    w, r = share_matrix(spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        syn = np.where(spec.syn > 0, w**2 / np.maximum(spec.syn, 1), 0.0).sum(axis=1)
        real = np.where(spec.real > 0, r**2 / np.maximum(spec.real, 1), 0.0)
    return v * np.diag(syn + real)


def linear_cov(w: np.ndarray, q: np.ndarray, c0: np.ndarray, generations: int) -> np.ndarray:
    """§2.1 with a general noise covariance: ``C' = W C Wᵀ + Q``; risks ``(T + 1, K)``."""
    c = c0.copy()
    out = [np.diag(c).copy()]
    for _ in range(generations):
        c = w @ c @ w.T + q
        out.append(np.diag(c).copy())
    return np.array(out)


# ------------------------------------------------------ second round (large verdict)


def tarjan(k: int, succ: list[list[int]]) -> np.ndarray:
    """Strong components by an iterative Tarjan (1972): ``comp[v]`` for each node.

    ``succ[v]`` lists the successors of ``v``. Written for the tests; no scipy.
    """
    index = [-1] * k
    low = [0] * k
    on_stack = [False] * k
    comp = [-1] * k
    stack: list[int] = []
    counter = 0
    ncomp = 0
    for root in range(k):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, pos = work[-1]
            nbrs = succ[v]
            if pos < len(nbrs):
                work[-1] = (v, pos + 1)
                w = nbrs[pos]
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return np.array(comp)


def large_verdict(k: int, producers: np.ndarray, consumers: np.ndarray, real: np.ndarray):
    """docs/theory.md §2.2 on a big graph: closed classes and BFS distances from them.

    Edges ``producers[e] -> consumers[e]`` (data flow). Returns ``(comp, closed, dist)``:
    each model's strong component, a boolean per component (closed class: no member
    takes real data, no edge enters from another component), and the number of edges
    on a shortest chain from a closed-class member (0 inside one, -1 when stable).
    """
    succ: list[list[int]] = [[] for _ in range(k)]
    for p, c in zip(producers.tolist(), consumers.tolist(), strict=True):
        succ[p].append(c)
    comp = tarjan(k, succ)
    ncomp = int(comp.max()) + 1 if k else 0
    closed = np.ones(ncomp, bool)
    for v in range(k):
        if real[v] > 0:
            closed[comp[v]] = False
    for p, c in zip(producers.tolist(), consumers.tolist(), strict=True):
        if comp[p] != comp[c]:
            closed[comp[c]] = False
    dist = [-1] * k
    queue = deque()
    for v in range(k):
        if closed[comp[v]]:
            dist[v] = 0
            queue.append(v)
    while queue:
        u = queue.popleft()
        for w in succ[u]:
            if dist[w] == -1:
                dist[w] = dist[u] + 1
                queue.append(w)
    return comp, closed, np.array(dist)


# ------------------------------------------------ second round (M-estimators, GLMs)


def glm_fit_scipy(kind: str, x: np.ndarray, y: np.ndarray, theta0: np.ndarray, delta=None):
    """Fit ``R`` independent data sets at once with scipy.optimize (Newton-CG).

    The objective is the sum over replicates of each one's mean loss, separable, so its
    minimiser is every replicate's own M-estimate. ``kind``: ``logistic`` (log-loss),
    ``poisson`` (Poisson log-likelihood, log link), ``huber`` (Huber loss with
    threshold ``delta`` on the residual). Returns ``(theta (R, d), max |score|)``.
    """
    from scipy import optimize

    reps, n, d = x.shape

    def parts(flat):
        t = flat.reshape(reps, d)
        eta = np.einsum("rnd,rd->rn", x, t)
        if kind == "logistic":
            loss = np.logaddexp(0.0, eta) - y * eta
            mu = 1.0 / (1.0 + np.exp(-eta))
            g = mu - y
            h = mu * (1.0 - mu)
        elif kind == "poisson":
            lam = np.exp(eta)
            loss = lam - y * eta
            g = lam - y
            h = lam
        else:
            res = eta - y
            a = np.abs(res)
            loss = np.where(a <= delta, 0.5 * res**2, delta * a - 0.5 * delta**2)
            g = np.clip(res, -delta, delta)
            h = (a <= delta).astype(float)
        return loss, g, h

    def fun(flat):
        loss, g, _ = parts(flat)
        grad = np.einsum("rn,rnd->rd", g, x) / n
        return loss.sum() / n, grad.ravel()

    def hessp(flat, p):
        _, _, h = parts(flat)
        xp = np.einsum("rnd,rd->rn", x, p.reshape(reps, d))
        return (np.einsum("rn,rnd->rd", h * xp, x) / n).ravel()

    out = optimize.minimize(
        fun,
        np.tile(theta0, reps).astype(float),
        jac=True,
        hessp=hessp,
        method="Newton-CG",
        options={"xtol": 1e-12, "maxiter": 200},
    )
    _, score = fun(out.x)
    return out.x.reshape(reps, d), float(np.max(np.abs(score)))


def glm_newton(kind: str, x: np.ndarray, y: np.ndarray, theta0: np.ndarray, iters: int = 30):
    """Batched Newton for the canonical GLMs (logistic, Poisson), with step halving.

    Used in the retraining loop where scipy per generation would be too slow; each
    replicate is its own problem. Returns ``theta (R, d)``.
    """
    reps, n, d = x.shape
    t = np.broadcast_to(theta0, (reps, d)).astype(float).copy()

    def loss(t):
        eta = np.einsum("rnd,rd->rn", x, t)
        if kind == "logistic":
            return (np.logaddexp(0.0, eta) - y * eta).mean(axis=1)
        return (np.exp(eta) - y * eta).mean(axis=1)

    cur = loss(t)
    for _ in range(iters):
        eta = np.einsum("rnd,rd->rn", x, t)
        if kind == "logistic":
            mu = 1.0 / (1.0 + np.exp(-eta))
            h = mu * (1.0 - mu)
        else:
            mu = np.exp(eta)
            h = mu
        g = np.einsum("rn,rnd->rd", mu - y, x) / n
        hess = np.einsum("rn,rnd,rne->rde", h, x, x) / n + 1e-12 * np.eye(d)
        step = np.linalg.solve(hess, g[..., None])[..., 0]
        lr = np.ones(reps)
        new = t - step
        nl = loss(new)
        for _ in range(30):
            bad = ~(nl <= cur + 1e-15)
            if not bad.any():
                break
            lr[bad] /= 2
            new[bad] = t[bad] - lr[bad, None] * step[bad]
            nl = np.where(bad, loss(new), nl)
        t, cur = new, nl
        if np.max(np.abs(step)) < 1e-10:
            break
    return t


def glm_draw(kind: str, theta: np.ndarray, n: int, chol: np.ndarray, rng) -> tuple:
    """``n`` samples per replicate from the GLM with parameter ``theta (R, d)``:
    ``x ~ N(0, Sigma)`` fresh, ``y`` from the conditional law at ``x``."""
    reps, d = theta.shape
    x = rng.standard_normal((reps, n, d)) @ chol.T
    eta = np.einsum("rnd,rd->rn", x, theta)
    if kind == "logistic":
        y = (rng.random(eta.shape) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return x, y


def glm_excess_loss(kind: str, theta: np.ndarray, theta_star: np.ndarray, cov: np.ndarray):
    """Excess expected log-loss ``E_x KL(P*(y|x) || P_theta(y|x))``, ``x ~ N(0, Sigma)``.

    ``(x^T theta*, x^T theta)`` is bivariate normal; Poisson in closed form
    (``E e^{x^T t} = e^{t^T Sigma t / 2}``, ``E[e^{x^T a} x] = e^{..} Sigma a``),
    logistic by a 60 x 60 Gauss-Hermite rule on the pair.
    """
    s_star = float(theta_star @ cov @ theta_star)
    s_hat = np.einsum("rd,de,re->r", theta, cov, theta)
    c = theta @ cov @ theta_star
    if kind == "poisson":
        e = np.exp(s_star / 2)
        return e * (s_star - c) - e + np.exp(s_hat / 2)
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    z1 = np.sqrt(s_star) * z  # x^T theta*
    # x^T theta = (c / s*) z1 + sqrt(s_hat - c^2 / s*) z2
    b = c / s_star
    res = np.sqrt(np.maximum(s_hat - c**2 / s_star, 0.0))
    eta1 = z1[None, :, None]
    eta2 = b[:, None, None] * eta1 + res[:, None, None] * z[None, None, :]
    p = 1.0 / (1.0 + np.exp(-eta1))
    kl = p * (eta1 - eta2) + np.logaddexp(0.0, eta2) - np.logaddexp(0.0, eta1)
    return np.einsum("i,j,rij->r", w, w, kl)


def stein(w: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``C = W C Wᵀ + Q`` as the linear system ``(I - W ⊗ W) vec C = vec Q`` (small K)."""
    k = w.shape[0]
    c = np.linalg.solve(np.eye(k * k) - np.kron(w, w), q.ravel())
    return c.reshape(k, k)


# ------------------------------------------ third round (homogenisation, second order)


def cross_products(err: np.ndarray) -> np.ndarray:
    """Per-replicate cross products ``e_i · e_k`` of the models' errors (§10).

    ``err`` is ``(T + 1, K, R, q)``: every generation's error vector of every model in the
    metric of the risk; returns ``(R, T + 1, K, K)``, whose mean over replicates is ``C``.
    """
    return np.einsum("tirq,tkrq->rtik", err, err)


def homogenization_indices(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """§10 from a cross-covariance ``c`` (``(..., K, K)``), written out literally.

    ``ρ_ij = C_ij / √(C_ii C_jj)``; the mean of ``ρ_ij`` over ordered pairs ``i != j``;
    the participation ratio ``(Σ_i C_ii)² / Σ_ij C_ij²``.
    """
    k = c.shape[-1]
    rho = np.empty_like(c)
    for i in range(k):
        for j in range(k):
            rho[..., i, j] = c[..., i, j] / np.sqrt(c[..., i, i] * c[..., j, j])
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    mean = sum(rho[..., i, j] for i, j in pairs) / len(pairs)
    trace = sum(c[..., i, i] for i in range(k))
    squares = sum(c[..., i, j] ** 2 for i in range(k) for j in range(k))
    return rho, mean, trace**2 / squares


def jackknife(stat, x: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``stat`` of the replicate mean of ``x`` (``(R, ...)``) and its delete-one-group
    jackknife standard error over ``groups`` equal groups of consecutive replicates."""
    r = x.shape[0] - x.shape[0] % groups
    x = x[:r]
    total = x.sum(axis=0)
    size = r // groups
    parts = [x[g * size : (g + 1) * size].sum(axis=0) for g in range(groups)]
    loo = np.stack([stat((total - part) / (r - size)) for part in parts])
    se = np.sqrt((groups - 1) / groups * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    return stat(total / r), se


def gaussian_mix_stationary(r: int, o: int) -> tuple[float, float]:
    """Stationary ``(E σ², E μ²)`` of a 1-d Gaussian MLE refit on ``r`` fresh real
    samples of ``N(0, 1)`` and ``o`` of its own, from the conditional moments.

    Given ``(μ, σ²)``, the pooled mean ``μ'`` has mean ``o μ / n`` and variance
    ``(r + o σ²) / n²``; the MLE variance is ``(1/n) Σ z² − μ'²`` with
    ``E Σ z² = r + o (σ² + μ²)``. Taking expectations gives two linear equations in the
    stationary ``s = E σ²``, ``m = E μ²``, solved here.
    """
    n = r + o
    # m = (r + o s + o² m) / n²
    # s = (r + o (s + m)) / n − (r + o s + o² m) / n²
    a = np.array(
        [
            [-o / n**2, 1 - o**2 / n**2],
            [1 - o / n + o / n**2, -o / n + o**2 / n**2],
        ]
    )
    b = np.array([r / n**2, r / n - r / n**2])
    s, m = np.linalg.solve(a, b)
    return float(s), float(m)


def separable(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether labels ``y`` (0/1) of the rows ``x`` are linearly separable through the
    origin (the logistic MLE does not exist): a ``w`` with ``(2y − 1) xᵀw >= 1`` for every
    row, by linear programming (scipy.optimize.linprog feasibility)."""
    from scipy import optimize

    sgn = 2.0 * y - 1.0
    out = optimize.linprog(
        np.zeros(x.shape[1]),
        A_ub=-(sgn[:, None] * x),
        b_ub=-np.ones(len(y)),
        bounds=[(None, None)] * x.shape[1],
        method="highs",
    )
    return out.status == 0


def logistic_separated(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Which of the ``R`` data sets ``(x, y)`` have no logistic MLE (separated classes).

    A fit ``theta`` (``glm_newton``'s) at which the mean score is below ``1e-8`` and the
    mean Hessian's smallest eigenvalue above ``1e-4`` is a strict local (hence the global)
    minimum: the MLE exists. Every other data set is decided by :func:`separable`.
    """
    eta = np.einsum("rnd,rd->rn", x, theta)
    mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -700, 700)))
    n = x.shape[1]
    grad = np.einsum("rn,rnd->rd", mu - y, x) / n
    hess = np.einsum("rn,rnd,rne->rde", mu * (1 - mu), x, x) / n
    found = (np.abs(grad).max(axis=1) < 1e-8) & (np.linalg.eigvalsh(hess)[:, 0] > 1e-4)
    out = np.zeros(len(x), bool)
    for r in np.flatnonzero(~found):
        out[r] = separable(x[r], y[r])
    return out


def wright_fisher(spec: Spec, generations: int) -> np.ndarray:
    """``H_ii`` per generation, ``(T + 1, K)``, of the categorical fit by frequencies
    (replace / fresh / private, §9): ``Cov(p̂_i, p̂_k) = H_ik (diag p − p pᵀ)`` with
    ``H' = W H Wᵀ + diag((1 − Σ_j w_ij H_jj) / n_i)``, ``H⁽⁰⁾ = diag(1 / n⁽⁰⁾)`` (a
    multinomial draw of ``n`` from ``p̂`` has ``E p̂p̂ᵀ`` mixing in ``(diag p̂ − p̂p̂ᵀ)/n``)."""
    w, _ = share_matrix(spec)
    h = np.diag(1.0 / spec.init)
    out = [np.diag(h).copy()]
    for _ in range(generations):
        h = w @ h @ w.T + np.diag((1 - w @ np.diag(h)) / spec.total())
        out.append(np.diag(h).copy())
    return np.array(out)


def huber_irls(x: np.ndarray, y: np.ndarray, delta: float, iters: int = 100) -> np.ndarray:
    """Huber regression of ``R`` data sets at once by iteratively reweighted least
    squares (weights ``min(1, delta / |residual|)``, from the least-squares fit), each
    step a weighted ``lstsq`` per replicate; stops when no coefficient moves by 1e-12."""
    t = np.linalg.solve(np.einsum("rnd,rne->rde", x, x), np.einsum("rnd,rn->rd", x, y)[..., None])
    t = t[..., 0]
    for _ in range(iters):
        res = y - np.einsum("rnd,rd->rn", x, t)
        w = np.minimum(1.0, delta / np.maximum(np.abs(res), 1e-300))
        xtw = np.einsum("rnd,rn->rdn", x, w)
        new = np.linalg.solve(xtw @ x, np.einsum("rdn,rn->rd", xtw, y)[..., None])[..., 0]
        done = np.max(np.abs(new - t)) < 1e-12
        t = new
        if done:
            break
    return t


def regression_loop(
    kind: str,
    syn: np.ndarray,
    real: np.ndarray,
    init: np.ndarray,
    theta: np.ndarray,
    cov: np.ndarray,
    *,
    generations: int,
    reps: int,
    rng,
    data: str = "replace",
    real_mode: str = "fresh",
    noise=None,
) -> np.ndarray:
    """The retraining loop of §1.1 / §1.3 for a regression family, private synthetic
    samples, explicit rows: ``kind`` ``poisson`` (Newton, :func:`glm_newton`; risk the
    excess log-loss) or ``huber`` (``y = xᵀθ + noise(rng, shape)``, :func:`huber_irls`
    with threshold ``delta = 1.345``, unit noise scale; risk ``eᵀΣe``). Reused real
    data: one real sample per model and replicate, kept; generation 0 is it plus
    ``init - real`` fresh rows (when ``init >= real``). Accumulate: every row a model was
    given stays in its pool (a reused sample entering once). Returns risks ``(T + 1, R, K)``."""
    k = len(real)
    chol = np.linalg.cholesky(cov)
    star = np.tile(theta, (reps, 1))

    def draw(th, n):
        if kind == "poisson":
            return glm_draw("poisson", th, n, chol, rng)
        x = rng.standard_normal((reps, n, len(theta))) @ chol.T
        return x, np.einsum("rnd,rd->rn", x, th) + noise(rng, (reps, n))

    def fit(x, y):
        if kind == "poisson":
            return glm_newton("poisson", x, y, theta)
        return huber_irls(x, y, 1.345)

    def risk(th):
        if kind == "poisson":
            return glm_excess_loss("poisson", th, theta, cov)
        e = th - theta
        return np.einsum("rd,de,re->r", e, cov, e)

    fixed = [draw(star, int(real[i])) for i in range(k)] if real_mode == "reused" else None
    pools, fits, fixed_in = [], [], []
    for i in range(k):
        if real_mode == "reused" and init[i] >= real[i]:
            extra = draw(star, int(init[i] - real[i]))
            parts = [fixed[i], extra]
            fixed_in.append(True)
        else:
            parts = [draw(star, int(init[i]))]
            fixed_in.append(False)
        pools.append(parts)
        fits.append(fit(*(np.concatenate(a, axis=1) for a in zip(*parts, strict=True))))
    risks = [np.stack([risk(f) for f in fits], axis=1)]
    for _ in range(generations):
        new_fits = []
        for i in range(k):
            new = []
            if real[i]:
                if real_mode == "fresh":
                    new.append(draw(star, int(real[i])))
                elif data == "replace" or not fixed_in[i]:
                    new.append(fixed[i])
                    fixed_in[i] = True
            for j in np.flatnonzero(syn[i]):
                new.append(draw(fits[j], int(syn[i, j])))
            if data == "accumulate":
                pools[i] = pools[i] + new
                new = pools[i]
            new_fits.append(fit(*(np.concatenate(a, axis=1) for a in zip(*new, strict=True))))
        fits = new_fits
        risks.append(np.stack([risk(f) for f in fits], axis=1))
    return np.array(risks)


def sampled_indices(c: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
    """§10 "Above 2,000 models": the indices of ``population`` models estimated from the
    cross-covariance ``c`` (``(..., m, m)``) of a uniform sample of ``m`` of them: the mean
    correlation over the sampled pairs, and the ratio estimate ``N c̄² / (d̄ + (N − 1) ō)``
    of the effective number (``c̄``, ``d̄`` the means of ``C_ii`` and ``C_ii²`` over the
    sample, ``ō`` the mean of ``C_ij²`` over its pairs)."""
    m = c.shape[-1]
    _, mean, _ = homogenization_indices(c)
    diag = [c[..., i, i] for i in range(m)]
    cbar = sum(diag) / m
    dbar = sum(v**2 for v in diag) / m
    obar = sum(c[..., i, j] ** 2 for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return mean, population * cbar**2 / (dbar + (population - 1) * obar)


def model_jackknife(c: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
    """Sampling errors of :func:`sampled_indices`: the textbook delete-one-model jackknife
    over the ``m`` sampled models times the finite-population factor ``√(1 − m/N)``."""
    m = c.shape[-1]
    loo = []
    for u in range(m):
        keep = [v for v in range(m) if v != u]
        sub = c[..., keep, :][..., :, keep]
        loo.append(np.stack(sampled_indices(sub, population)))
    loo = np.stack(loo)
    se = np.sqrt((m - 1) / m * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    return se[0] * np.sqrt(1 - m / population), se[1] * np.sqrt(1 - m / population)


def linear_cov_full(w: np.ndarray, q: np.ndarray, c0: np.ndarray, generations: int):
    """§2.1's ``C' = W C Wᵀ + Q``, every generation's whole matrix ``(T + 1, K, K)``."""
    c = c0.copy()
    out = [c.copy()]
    for _ in range(generations):
        c = w @ c @ w.T + q
        out.append(c.copy())
    return np.array(out)


def location_accumulate(spec: Spec, generations: int, replicates: int, rng) -> np.ndarray:
    """The accumulate / fresh / private loop of §1.3 for the weighted-mean family of
    :func:`LOCATION` (truth 0, unit variance), long horizons: each model's fit is the mean
    of every sample it was ever given, kept as its pool's running sum and count (every
    sample still drawn, one by one, from its producer's fit). Returns the risks at the
    last generation, ``(R, K)``."""
    k = spec.k
    total = np.zeros((replicates, k))
    count = np.zeros(k)
    for i in range(k):
        total[:, i] = rng.standard_normal((replicates, int(spec.init[i]))).sum(axis=1)
        count[i] = spec.init[i]
    fit = total / count
    for _ in range(generations):
        for i in range(k):
            total[:, i] += rng.standard_normal((replicates, int(spec.real[i]))).sum(axis=1)
            for j in spec.producers(i):
                n = int(spec.syn[i, j])
                total[:, i] += (fit[:, j : j + 1] + rng.standard_normal((replicates, n))).sum(1)
        count += spec.total()
        fit = total / count
    return fit**2
