"""Exact theory of the categorical family on any graph (docs/theory.md, "Categorical
data"): the first and second moments of the fitted frequencies follow an exact affine
recursion in every regime, and the probability that a symbol is lost is exact for a
lone self-consuming model.

Why it is exact and small
-------------------------
Fix one symbol of true probability ``x``. Its count in a multinomial sample of size
``n`` from a law giving it probability ``q`` is ``Binomial(n, q)``: conditional mean
``n q`` and variance ``n q (1 - q)``, both polynomials of degree <= 2 in the previous
fits. So the means ``m_u = E Y_u`` and the second moments ``S_uv = E Y_u Y_v`` of every
node's frequency of that symbol (a model's pooled frequency, or a reused real sample's)
follow an affine recursion whose coefficients do not depend on ``x``, and every moment is
a polynomial of degree <= 2 in ``x``. We therefore run the recursion for three *virtual*
symbols ``x = 0, 1/2, 1`` and read every symbol's moments off the interpolating
quadratic; sums over symbols need only ``K``, ``sum 1/p_k`` and ``sum p_k^2``.

Imports only numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy import stats

from .._errors import ConfigError
from .._graph import InteractionGraph
from .._graphalg import entry_rows
from .._regime import Regime

__all__ = ["categorical_moments", "categorical_survival", "CategoricalMoments"]

_X = np.array([0.0, 0.5, 1.0])
SURVIVAL_LIMIT = 5000
"""Largest sample size for which the exact symbol-loss chain is iterated."""
STEADY_LIMIT = 2_000_000
"""Most unknowns (``3 (nodes + nodes^2)``) of the steady-state Krylov solve."""
NODE_LIMIT = 2000
"""Most nodes (models, plus one per reused real sample) the exact recursion tracks: it
holds every pairwise second moment (``24 nodes^2`` bytes)."""


def _quad(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients ``c0 + c1 x + c2 x^2`` from values at ``x = 0, 1/2, 1`` (axis 0)."""
    c0 = f[0]
    c2 = 2.0 * (f[0] - 2.0 * f[1] + f[2])
    return c0, f[2] - f[0] - c2, c2


@dataclass
class _State:
    gen: int
    m: np.ndarray  # (L, nodes)
    S: np.ndarray  # (L, nodes, nodes)
    N: np.ndarray  # (M,) pool size of each model's current fit
    beta: np.ndarray = field(init=False)
    gamma: np.ndarray = field(init=False)


@dataclass(frozen=True)
class _Setup:
    graph: InteractionGraph
    regime: Regime
    K: int
    alpha: float
    fixed: np.ndarray  # (M,) node index of model i's reused real sample, -1 if none

    @property
    def M(self) -> int:
        return self.graph.n_models

    @property
    def nodes(self) -> int:
        return self.M + int((self.fixed >= 0).sum())

    def smooth(self, st: _State) -> None:
        st.beta = st.N / (st.N + self.K * self.alpha)
        st.gamma = self.alpha / (st.N + self.K * self.alpha)


def _setup(graph: InteractionGraph, family, regime: Regime) -> _Setup:
    M = graph.n_models
    fixed = np.full(M, -1, dtype=np.int64)
    if regime.real == "reused":
        has = np.flatnonzero(graph.real > 0)
        fixed[has] = M + np.arange(has.size)
    s = _Setup(graph, regime, int(family.k), float(family.smoothing), fixed)
    if s.nodes > NODE_LIMIT:
        raise ConfigError(
            f"theory, field 'graph': the exact categorical theory tracks every pairwise "
            f"moment of {s.nodes} nodes (limit {NODE_LIMIT}, models plus reused real "
            "samples); simulate this graph instead"
        )
    return s


def _initial(s: _Setup) -> _State:
    """Generation 0: every model fit on its ``initial_real`` real symbols."""
    g, L, n = s.graph, _X.size, s.nodes
    m = np.zeros((L, n))
    S = np.zeros((L, n, n))
    fx = s.fixed[s.fixed >= 0]
    if fx.size:  # reused real samples: independent, frequency mean x, variance x(1-x)/r
        r = g.real[s.fixed >= 0].astype(np.float64)
        m[:, fx] = _X[:, None]
        S[np.ix_(np.arange(L), fx, fx)] = (_X**2)[:, None, None]
        S[:, fx, fx] += (_X * (1 - _X))[:, None] / r[None, :]
    st = _State(-1, m, S, np.zeros(s.M))
    st.beta = np.zeros(s.M)
    st.gamma = np.zeros(s.M)
    return _advance(s, st, 0)


def _advance(s: _Setup, st: _State, t: int) -> _State:
    """Moments at generation ``t`` from those at ``t - 1`` (exact)."""
    g, M, L, n = s.graph, s.M, _X.size, s.nodes
    reused = s.regime.real == "reused"
    acc = s.regime.data == "accumulate" and t > 0
    shared = s.regime.synthetic == "shared"
    real = g.real.astype(np.float64)
    n0 = g.initial_real.astype(np.float64)
    Syn = g.synthetic
    syn_tot = np.asarray(Syn.sum(axis=1)).reshape(-1).astype(np.float64)

    # What enters each model's pool this generation.
    fresh = np.zeros(M)  # fresh real symbols
    fixed_w = np.zeros(M)  # symbols of the reused real sample included
    if t == 0:
        has_fixed = s.fixed >= 0
        take = has_fixed & (n0 >= real)
        fixed_w[take] = real[take]
        fresh = n0 - fixed_w
        N = n0.copy()
    else:
        if not reused:
            fresh = real.copy()
        elif not acc:
            fixed_w = np.where(s.fixed >= 0, real, 0.0)
        elif t == 1:
            fixed_w = np.where((s.fixed >= 0) & (n0 < real), real, 0.0)
        N = (st.N if acc else 0.0) + fresh + fixed_w + syn_tot

    rows, cols, vals = [], [], []
    a = np.zeros((L, n))
    a[:, :M] = (fresh / N)[None, :] * _X[:, None]
    if t > 0:
        if acc:  # the previous pool is kept
            rows.append(np.arange(M))
            cols.append(np.arange(M))
            vals.append(st.N / N)
        cr = entry_rows(Syn)
        prod = Syn.indices
        nij = Syn.data.astype(np.float64)
        rows.append(cr)
        cols.append(prod)
        vals.append(nij * st.beta[prod] / N[cr])
        np.add.at(a, (slice(None), cr), (nij * st.gamma[prod] / N[cr])[None, :])
    fi = np.flatnonzero(fixed_w > 0)
    rows.append(fi)
    cols.append(s.fixed[fi])
    vals.append(fixed_w[fi] / N[fi])
    keep = np.arange(M, n)  # reused real samples do not change
    rows.append(keep)
    cols.append(keep)
    vals.append(np.ones(keep.size))
    A = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )

    # Conditional covariance of the multinomial draws: x(1-x) per fresh real symbol,
    # E q(1-q) per symbol from producer j, q = beta_j Y_j + gamma_j.
    noise = np.zeros((L, n, n))
    di = np.arange(M)
    noise[:, di, di] = (fresh / N**2)[None, :] * (_X * (1 - _X))[:, None]
    if t > 0 and Syn.nnz:
        b, c = st.beta[:M], st.gamma[:M]
        mq = b * st.m[:, :M] + c
        sq = b**2 * np.diagonal(st.S, axis1=1, axis2=2)[:, :M] + 2 * b * c * st.m[:, :M] + c**2
        e = mq - sq  # (L, M): E q_j (1 - q_j)
        if shared:
            cols_ = Syn.tocsc()
            for j in range(M):
                lo, hi = cols_.indptr[j], cols_.indptr[j + 1]
                if lo == hi:
                    continue
                ci = cols_.indices[lo:hi]
                nn = cols_.data[lo:hi].astype(np.float64)
                ov = np.minimum(nn[:, None], nn[None, :]) / np.outer(N[ci], N[ci])
                noise[np.ix_(np.arange(L), ci, ci)] += e[:, j, None, None] * ov[None]
        else:
            np.add.at(
                noise,
                (slice(None), cr, cr),
                e[:, prod] * (nij / N[cr] ** 2)[None, :],
            )

    out = _State(t, *_apply(A, a, noise, st.m, st.S), N)
    s.smooth(out)
    return out


def _apply(A, a, noise, m, S):
    """``m' = A m + a``, ``S' = A S A^T + A m a^T + a m^T A^T + a a^T + noise``."""
    m_new = np.empty_like(m)
    S_new = np.empty_like(S)
    for ll in range(m.shape[0]):
        Am = A @ m[ll]
        U = A @ S[ll]
        AS = A @ U.T
        outer = np.outer(Am, a[ll])
        S_new[ll] = AS + outer + outer.T + np.outer(a[ll], a[ll]) + noise[ll]
        m_new[ll] = Am + a[ll]
    return m_new, S_new


def _observe(s: _Setup, st: _State, p: np.ndarray, cross: bool = False):
    """Mean risk, heterozygosity (and the error cross-moment matrix) of every model."""
    M = s.M
    b, c = st.beta, st.gamma
    m = st.m[:, :M]
    Sd = np.diagonal(st.S, axis1=1, axis2=2)[:, :M]
    ep = b * m + c
    ep2 = b**2 * Sd + 2 * b * c * m + c**2
    X = _X[:, None]
    err = ep2 - 2 * X * ep + X**2
    inv, K, s2 = float(np.sum(1.0 / p)), float(p.size), float(np.sum(p * p))
    c0, c1, c2 = _quad(err)
    risk = 0.5 * (c0 * inv + c1 * K + c2)
    risk = np.maximum(risk, 0.0)
    d0, d1, d2 = _quad(ep2)
    het = np.clip(1.0 - (d0 * K + d1 + d2 * s2), 0.0, 1.0)
    if not cross:
        return risk, het, None
    Sm = st.S[:, :M, :M]
    bb = b[:, None] * b[None, :]
    cov = (
        bb[None] * Sm
        + (b[:, None] * c[None, :])[None] * m[:, :, None]
        + (c[:, None] * b[None, :])[None] * m[:, None, :]
        + (c[:, None] * c[None, :])[None]
        - X[:, :, None] * (ep[:, :, None] + ep[:, None, :])
        + (X**2)[:, :, None]
    )
    q0, q1, q2 = _quad(cov)
    C = 0.5 * (q0 * inv + q1 * K + q2)
    return risk, het, C


@dataclass(frozen=True, eq=False)
class CategoricalMoments:
    """Exact moments of a categorical ecosystem at the recorded generations.

    Attributes
    ----------
    generations : ndarray (T',)
    risk : ndarray (T', M)
        ``E risk`` (half the Pearson chi-square of each fit).
    heterozygosity : ndarray (T', M)
        ``E (1 - sum_k p_hat_k^2)``.
    error_cov : ndarray (T', M, M)
        ``1/2 sum_k E[(p_hat_ik - p_k)(p_hat_jk - p_k)] / p_k``: its diagonal is ``risk``.
    steady_risk, steady_heterozygosity : ndarray (M,)
        Limits as ``t -> inf`` (replace regime; NaN where not reached, see ``notes``).
    notes : tuple of str

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._categorical import categorical_moments
    >>> g = gc.InteractionGraph(["A"], [[100]], real=[0], initial_real=[100])
    >>> mo = categorical_moments(g, gc.Categorical(k=4), generations=2)
    >>> mo.heterozygosity[:, 0].round(6).tolist()  # 0.75 (1 - 1/100)^(t + 1)
    [0.7425, 0.735075, 0.727724]
    >>> round(float(mo.steady_risk[0]), 6)  # fixation: (K - 1) / 2
    1.5
    """

    generations: np.ndarray
    risk: np.ndarray
    heterozygosity: np.ndarray
    error_cov: np.ndarray
    steady_risk: np.ndarray
    steady_heterozygosity: np.ndarray
    notes: tuple[str, ...] = ()


def categorical_moments(
    graph: InteractionGraph,
    family,
    *,
    generations: int,
    regime: Regime | None = None,
    record: np.ndarray | None = None,
    steady: bool = True,
) -> CategoricalMoments:
    """Exact mean risk, heterozygosity and error cross-moments of a categorical family
    on any graph, in every regime (see the module docstring).

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._categorical import categorical_moments
    >>> g = gc.InteractionGraph(["A"], [[0]], real=[50])
    >>> float(categorical_moments(g, gc.Categorical(k=3), generations=1).risk[1, 0])
    0.02
    """
    regime = Regime() if regime is None else regime
    rec = np.arange(generations + 1) if record is None else np.asarray(record, np.int64)
    s = _setup(graph, family, regime)
    p = np.asarray(family.p, dtype=np.float64)
    M = s.M
    risk = np.empty((rec.size, M))
    het = np.empty((rec.size, M))
    cov = np.empty((rec.size, M, M))
    st = _initial(s)
    want = {int(t): k for k, t in enumerate(rec)}
    for t in range(int(generations) + 1):
        if t > 0:
            st = _advance(s, st, t)
        if t in want:
            k = want[t]
            risk[k], het[k], cov[k] = _observe(s, st, p, cross=True)
    notes: list[str] = []
    sr = np.full(M, np.nan)
    sh = np.full(M, np.nan)
    if steady and regime.data == "replace":
        sr, sh, note = _steady(s, st, p)
        if note:
            notes.append(note)
    elif steady:
        notes.append(
            "accumulate regime: the pools grow without bound and the moments converge "
            "like 1/t; steady states not computed"
        )
    return CategoricalMoments(rec, risk, het, cov, sr, sh, tuple(notes))


def _steady(s: _Setup, st: _State, p: np.ndarray, *, tol: float = 1e-9):
    """Limits of risk and heterozygosity under replace, where the moment map
    ``z -> T z + b`` is the same at every generation ``t >= 1``.

    The iteration's limit from ``z_t`` is ``z_t + y`` with ``(I - T) y = T z_t + b - z_t``
    solved by GMRES from ``y = 0``: the Krylov space stays in the range of ``I - T``, so
    where ``T`` has the eigenvalue 1 (a periodic class whose cross moments keep their
    initial values) GMRES still returns the iteration's limit. The result is accepted
    only if one more step moves it by less than ``tol`` (relative)."""
    if st.gen < 1:
        st = _advance(s, st, 1)
    L, n = st.m.shape
    size = L * (n + n * n)
    M = s.M
    if size > STEADY_LIMIT:
        return (
            np.full(M, np.nan),
            np.full(M, np.nan),
            f"steady states not computed: {n} nodes need a Krylov solve of {size} unknowns "
            f"(limit {STEADY_LIMIT}); iterate the curves further instead",
        )
    restart = int(max(20, min(200, 400e6 / 8 / size)))  # Krylov basis within ~400 MB

    def split(z):
        return z[: L * n].reshape(L, n), z[L * n :].reshape(L, n, n)

    def F(z):
        m, S = split(z)
        tmp = _State(st.gen, m, S, st.N)
        tmp.beta, tmp.gamma = st.beta, st.gamma
        nx = _advance(s, tmp, max(st.gen, 2))
        return np.concatenate([nx.m.ravel(), nx.S.ravel()])

    b = F(np.zeros(size))
    z0 = np.concatenate([st.m.ravel(), st.S.ravel()])
    rhs = F(z0) - z0
    note = "steady states not found (GMRES did not converge); iterate the curves further"
    y = _gmres(lambda v: v - (F(v) - b), rhs, restart=min(size, restart), cycles=20)
    z = z0 + y
    scale = max(1e-300, float(np.max(np.abs(z))))
    if not np.all(np.isfinite(z)) or np.max(np.abs(F(z) - z)) > tol * scale:
        return np.full(M, np.nan), np.full(M, np.nan), note
    m, S = split(z)
    fin = _State(st.gen, m, S, st.N)
    fin.beta, fin.gamma = st.beta, st.gamma
    r, h, _ = _observe(s, fin, p)
    return r, h, None


def _gmres(op, rhs: np.ndarray, *, restart: int, cycles: int, rtol: float = 1e-13):
    """Restarted GMRES from 0 (Arnoldi with classical Gram-Schmidt applied twice, as
    matrix products); returns the last iterate (the caller checks the answer)."""
    y = np.zeros_like(rhs)
    bnorm = float(np.linalg.norm(rhs))
    if bnorm == 0.0:
        return y
    V = np.empty((restart + 1, rhs.size))
    for _ in range(cycles):
        r = rhs - op(y)
        beta = float(np.linalg.norm(r))
        if beta <= rtol * bnorm:
            break
        V[0] = r / beta
        H = np.zeros((restart + 1, restart))
        res = beta
        for k in range(restart):
            w = op(V[k])
            for _rep in range(2):
                h = V[: k + 1] @ w
                w -= h @ V[: k + 1]
                H[: k + 1, k] += h
            H[k + 1, k] = float(np.linalg.norm(w))
            e1 = np.zeros(k + 2)
            e1[0] = beta
            c, *_ = np.linalg.lstsq(H[: k + 2, : k + 1], e1, rcond=None)
            res = float(np.linalg.norm(H[: k + 2, : k + 1] @ c - e1))
            if H[k + 1, k] <= 1e-300 or res <= rtol * bnorm:
                break
            V[k + 1] = w / H[k + 1, k]
        y = y + c @ V[: c.size]
        if res <= rtol * bnorm:
            break
    return y


# ---------------------------------------------------------------------- symbol loss
def categorical_survival(
    n: int, p: np.ndarray, *, generations: int, n0: int | None = None, smoothing: float = 0.0
) -> np.ndarray:
    """Exact probability that each symbol is present (count > 0) in a lone
    self-consuming model's training sample at generations ``0..T``, ``(T+1, K)``.

    Generation 0 draws ``n0`` (default ``n``) real symbols; generation ``t >= 1``
    draws ``n`` symbols from the previous fit ``(c + alpha)/(n_prev + K alpha)``. A
    symbol's count is then a Markov chain on ``0..n`` (``Binomial(n, q(c))``, the
    Wright-Fisher chain when ``alpha = 0``), iterated exactly: ``O(n^2)`` memory and
    time per generation, refused above ``n = 5000`` (:data:`SURVIVAL_LIMIT`).

    >>> import numpy as np
    >>> from graphcollapse._theory._categorical import categorical_survival
    >>> categorical_survival(4, np.array([0.5, 0.5]), generations=2).round(3).tolist()
    [[0.938, 0.938], [0.834, 0.834], [0.751, 0.751]]
    """
    p = np.asarray(p, dtype=np.float64)
    K = p.size
    n = int(n)
    n0 = n if n0 is None else int(n0)
    if max(n, n0) > SURVIVAL_LIMIT:
        raise ConfigError(
            f"categorical_survival, field 'n': the exact chain on 0..n needs n <= "
            f"{SURVIVAL_LIMIT}, got {max(n, n0)}; simulate instead"
        )
    a = float(smoothing)
    out = np.empty((generations + 1, K))
    # Distribution of each symbol's count at generation 0: Binomial(n0, p_k), (K, n0+1).
    dist = stats.binom.pmf(np.arange(n0 + 1)[None, :], n0, p[:, None])
    out[0] = 1.0 - dist[:, 0]
    prev_n = n0
    T = None
    for t in range(1, generations + 1):
        if T is None or T.shape[0] != prev_n + 1:  # generation 1 leaves n0 != n
            T = _binomial_rows(prev_n, n, a, K)
        dist = dist @ T
        out[t] = 1.0 - dist[:, 0]
        prev_n = n
    return np.clip(out, 0.0, 1.0)


def _binomial_rows(prev_n: int, n: int, a: float, K: int) -> np.ndarray:
    """Transition matrix ``(prev_n + 1, n + 1)`` of one symbol's count, built in row
    chunks to bound the temporaries."""
    q = (np.arange(prev_n + 1) + a) / (prev_n + K * a)
    T = np.empty((prev_n + 1, n + 1))
    j = np.arange(n + 1)
    step = max(1, 2_000_000 // (n + 1))
    for lo in range(0, prev_n + 1, step):
        T[lo : lo + step] = stats.binom.pmf(j[None, :], n, q[lo : lo + step, None])
    return T


# ---------------------------------------------------------------------- theory()
def categorical_theory(
    graph: InteractionGraph, family, *, generations: int, regime: Regime, record: np.ndarray
):
    """The :class:`TheoryResult` of a categorical family (called by ``theory()``).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[100]], real=[0], initial_real=[100])
    >>> res = gc.theory(g, gc.Categorical(k=4), generations=2)
    >>> res.kind, res.collapses.tolist(), res.slope.tolist(), res.steady_state.tolist()
    ('exact_categorical', [True], [0.0], [1.5])
    """
    from .._curves import RiskCurves
    from .._verdict import diagnose
    from ._api import TheoryResult
    from ._asymptotics import linear_growth_factor

    mo = categorical_moments(graph, family, generations=generations, regime=regime, record=record)
    K = graph.n_models
    risk = RiskCurves(
        graph.names,
        mo.generations,
        mo.risk,
        source="theory",
        summaries={"heterozygosity": mo.heterozygosity},
        info={"theory": "exact_categorical", "regime": regime.label},
    )
    collapses = diagnose(graph).collapses.copy()
    notes = [
        f"categorical family: exact moment recursion in the {regime.label} regime; the "
        f"risk is bounded (a fit fixed on one symbol has mean risk (K - 1)/2 = "
        f"{0.5 * (family.k - 1):g}), so `collapses` means loss of diversity (the "
        "fits of a closed class fix on one symbol when smoothing = 0) and slopes are 0"
    ]
    notes.extend(mo.notes)
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(np.zeros(K)),
        _ro(mo.steady_risk),
        _ro(linear_growth_factor(graph)),
        "exact_categorical",
        True,
        regime,
        tuple(notes),
        cross_covariance=_ro(mo.error_cov),
    )


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64 if a.dtype != bool else bool)
    a.setflags(write=False)
    return a
