"""Fits per second of each family's vectorised fit against one-at-a-time loops.

``python -m benchmarks.run families [-- --quick] [-- --reps R] [-- --gap]``

For every family, one batch of ``R`` replicates (the simulator's block size, 256, by
default) of ``n`` real samples is drawn once; then, interleaved in the same run:

* **batched**: ``family.fit(batch)``, all replicates at once (the simulator's path);
* **loop**: the same family's ``fit`` called on one replicate at a time (the slow,
  obvious reference; identical results, see ``check_family``);
* **scikit-learn** where it has the estimator, fit replicate by replicate on the same
  data: ``LogisticRegression(penalty=None)``, ``PoissonRegressor(alpha=0)``,
  ``HuberRegressor(alpha=0)`` (it also estimates the scale, so it solves a slightly
  different problem), ``GaussianMixture`` started from our initial parameters,
  ``np.cov`` per replicate for the Gaussian. No intercepts anywhere.

For the KDE the fit is the identity, so the timed operation is the held-out scoring
(the cost of its risk and summaries); for the n-gram model it is generation of the
synthetic text (``sample``), whose loop baseline generates replicate by replicate.

Each time is the best of ``--repeats`` runs (the least disturbed on a shared machine);
results are fits per second and ratios to the loop. BLAS is limited to one thread by
default (``--threads all`` lifts it): the machine is shared, and multi-threaded BLAS on
small matrices mostly measures contention.

``--gap`` instead measures the n-scaling of the gap between simulation and the
asymptotic theory (``n E risk / noise_scale - 1`` against ``n``) and fits its exponent.
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np

import graphcollapse as gc
from benchmarks._timing import blas_threads, timed


def _loop(fit, batch, reps):
    from graphcollapse.families._check import take_replicates as take

    return [fit(take(batch, np.array([r]), reps)) for r in range(reps)]


def _sk_logistic(batch):
    from sklearn.linear_model import LogisticRegression

    X, y = batch
    for r in range(X.shape[0]):
        LogisticRegression(penalty=None, fit_intercept=False, tol=1e-8, max_iter=200).fit(
            X[r], y[r]
        )


def _sk_poisson(batch):
    from sklearn.linear_model import PoissonRegressor

    X, y = batch
    for r in range(X.shape[0]):
        PoissonRegressor(alpha=0.0, fit_intercept=False, tol=1e-8, max_iter=200).fit(X[r], y[r])


def _sk_huber(batch):
    from sklearn.linear_model import HuberRegressor

    X, y = batch
    for r in range(X.shape[0]):
        HuberRegressor(epsilon=1.345, alpha=0.0, fit_intercept=False, max_iter=200).fit(X[r], y[r])


def _np_cov(batch):
    for r in range(batch.shape[0]):
        np.mean(batch[r], axis=0)
        np.cov(batch[r].T, bias=True)


def _sk_gmm(fam):
    def run(batch):
        from sklearn.mixture import GaussianMixture

        for r in range(batch.shape[0]):
            x = batch[r : r + 1]
            F = fam._features(x)
            w, mu, cov = fam._m_step(x, F, fam._initial_resp(x).swapaxes(1, 2))
            prec = np.linalg.inv(cov[0]) if fam.covariance == "full" else 1.0 / cov[0]
            GaussianMixture(
                fam.components, covariance_type=fam.covariance, tol=fam.tol,
                max_iter=fam.max_iter, reg_covar=fam.reg_covar, weights_init=w[0],
                means_init=mu[0], precisions_init=prec,
            ).fit(batch[r])  # fmt: skip

    return run


def cases(n: int, quick: bool):
    """``(label, family, timed operation name, baselines)`` of the benchmark."""
    out = [
        ("gaussian d=5 (mle)", gc.Gaussian(dim=5), "fit", {"numpy cov loop": _np_cov}),
        ("logistic d=5", gc.LogisticRegression(dim=5), "fit", {"sklearn": _sk_logistic}),
        ("poisson d=5", gc.PoissonRegression(dim=5), "fit", {"sklearn": _sk_poisson}),
        ("huber d=5 (laplace)", gc.HuberRegression(dim=5, noise="laplace"), "fit",
         {"sklearn": _sk_huber}),
    ]  # fmt: skip
    if not quick:
        gmm = gc.GaussianMixture(data="digits", dim=5, components=4)
        out += [
            ("gmm digits d=5 k=4", gmm, "fit", {"sklearn": _sk_gmm(gmm)}),
            ("kde digits d=5 (score)", gc.KernelDensity(data="digits", dim=5), "score", {}),
            ("ngram order 2 (sample)", gc.NGramModel(order=2), "sample", {}),
        ]
    return out


def _operations(fam, op: str, batch, n: int, reps: int):
    """The timed operation, batched and replicate by replicate."""
    if op == "fit":

        def subject():
            return fam.fit(batch)

        def loop():
            return _loop(fam.fit, batch, reps)

        return subject, loop
    params = fam.fit(batch)
    if op == "score":
        fam.heldout_loglik(params[:1])  # load the data outside the timing

        def subject():
            return fam.heldout_loglik(params)

        def loop():
            return [fam.heldout_loglik(params[r : r + 1]) for r in range(reps)]

        return subject, loop
    g = np.random.default_rng(1)

    def subject():
        return fam.sample(params, n, g)

    def loop():
        return [fam.sample(params[r : r + 1], n, g) for r in range(reps)]

    return subject, loop


def run_speed(n: int, reps: int, repeats: int, quick: bool) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for label, fam, op, baselines in cases(n, quick):
        batch = fam.sample_real(n, reps, rng)
        subject, loop = _operations(fam, op, batch, n, reps)
        fam.fit(batch)  # warm caches (reference fits, data)
        t_sub, t_loop = np.inf, np.inf
        t_base = {k: np.inf for k in baselines}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn convergence chatter
            for _ in range(repeats):  # interleaved
                t_sub = min(t_sub, timed(subject))
                t_loop = min(t_loop, timed(loop))
                for k, fn in baselines.items():
                    t_base[k] = min(t_base[k], timed(lambda fn=fn, b=batch: fn(b)))
        row = {"case": label, "op": op, "batched": reps / t_sub, "loop": reps / t_loop}
        row.update({k: reps / t for k, t in t_base.items()})
        rows.append(row)
        extra = "".join(f"  {k}: {reps / t:,.0f}/s ({t / t_sub:.1f}x)" for k, t in t_base.items())
        print(
            f"{label:26s} {op:6s} batched {reps / t_sub:11,.0f}/s   loop {reps / t_loop:9,.0f}/s "
            f"({t_loop / t_sub:5.1f}x){extra}",
            flush=True,
        )
    return rows


def run_gap(reps: int, seed: int = 0) -> list[dict]:
    """The relative gap ``n E risk / noise_scale - 1`` against ``n``; fitted exponent."""
    from scipy.optimize import curve_fit

    fams = [
        ("logistic d=3", gc.LogisticRegression(dim=3), 48),
        ("poisson d=3", gc.PoissonRegression(dim=3), 24),
        ("huber d=3 laplace", gc.HuberRegression(dim=3, noise="laplace"), 24),
        ("gaussian d=2 mle", gc.Gaussian(dim=2), 24),
    ]
    rows = []
    rng = np.random.default_rng(seed)
    for label, fam, n0 in fams:
        ns = np.array([n0 * 2**k for k in range(5)])
        gaps, sems = [], []
        for n in ns:
            r = fam.risk(fam.fit(fam.sample_real(int(n), reps, rng)))
            ns_ = fam.noise_scale()
            gaps.append(n * r.mean() / ns_ - 1)
            sems.append(n * r.std(ddof=1) / np.sqrt(reps) / ns_)

        def power(n, c, a):
            return c * n ** (-a)

        (c, a), cov = curve_fit(power, ns, gaps, p0=(gaps[0] * n0, 1.0), sigma=sems,
                                absolute_sigma=True, maxfev=10_000)  # fmt: skip
        # the asymptotic range only (n >= 2 n0): O(1/n^2) terms matter less
        (c2, a2), cov2 = curve_fit(power, ns[1:], gaps[1:], p0=(c, a), sigma=sems[1:],
                                   absolute_sigma=True, maxfev=10_000)  # fmt: skip
        se, se2 = float(np.sqrt(cov[1, 1])), float(np.sqrt(cov2[1, 1]))
        rows.append({"case": label, "exponent": a, "se": se, "c": c,
                     "exponent_large_n": a2, "se_large_n": se2})  # fmt: skip
        pts = ", ".join(f"n={n}: {g:+.3f}±{s:.3f}" for n, g, s in zip(ns, gaps, sems, strict=True))
        print(f"{label:20s} exponent {a:.2f} ± {se:.2f} (c = {c:.1f}); n >= {2 * n0}: "
              f"{a2:.2f} ± {se2:.2f} (c = {c2:.1f})   {pts}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="benchmarks.run families",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="regression families only, R=8")
    parser.add_argument("--reps", type=int, default=256, help="replicates per batch")
    parser.add_argument("--n", type=int, default=500, help="samples per replicate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", choices=("one", "all"), default="one")
    parser.add_argument("--gap", action="store_true", help="n-scaling of the theory gap")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"numpy {np.__version__}, python {platform.python_version()}")  # fmt: skip
    limit = blas_threads(args.threads)
    print(f"BLAS threads: {args.threads}")
    with limit:
        if args.gap:
            return run_gap(4000 if args.quick else 40_000)
        reps = 8 if args.quick else args.reps
        print(f"R = {reps} replicates, n = {args.n} samples each; fits (or ops) per second")
        return run_speed(args.n, reps, args.repeats, args.quick)


if __name__ == "__main__":
    main()
