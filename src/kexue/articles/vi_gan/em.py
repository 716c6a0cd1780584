"""E4: EM for a Gaussian mixture, the article's "alternating optimisation of the joint KL".

E-step: the posterior p(k|x) under the current parameters; M-step: the weighted maximum
likelihood estimates. The implementation follows the textbook updates (full covariances, the
same ``reg_covar`` ridge as scikit-learn) so that, from the same start, its log-likelihood can be
checked against ``sklearn.mixture.GaussianMixture``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass
class Mixture:
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    covariances: np.ndarray  # (K, d, d)


def synthetic_mixture_data(n: int, seed: int) -> np.ndarray:
    """2-D data from three anisotropic Gaussians (synthetic; fixed centres and shapes)."""
    rng = np.random.default_rng(seed)
    means = np.array([[-3.0, 0.0], [2.0, 2.0], [2.0, -2.5]])
    covs = np.array([[[1.0, 0.6], [0.6, 0.8]], [[0.4, -0.2], [-0.2, 0.6]],
                     [[1.2, 0.0], [0.0, 0.3]]])
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    noise = rng.standard_normal((n, 2))
    chol = np.linalg.cholesky(covs)
    return means[labels] + np.einsum("nij,nj->ni", chol[labels], noise)


def initial_mixture(x: np.ndarray, k: int, seed: int) -> Mixture:
    """Uniform weights, k distinct data points as means, the data covariance for each."""
    rng = np.random.default_rng(seed)
    means = x[rng.choice(len(x), size=k, replace=False)]
    cov = np.cov(x, rowvar=False)
    return Mixture(np.full(k, 1.0 / k), means.copy(), np.repeat(cov[None], k, axis=0))


def log_joint(x: np.ndarray, mix: Mixture) -> np.ndarray:
    """log w_k + log N(x_n | μ_k, Σ_k), shape (n, K)."""
    d = x.shape[1]
    out = np.empty((len(x), len(mix.weights)))
    for k, (mean, cov) in enumerate(zip(mix.means, mix.covariances)):
        chol = np.linalg.cholesky(cov)
        white = np.linalg.solve(chol, (x - mean).T)  # L⁻¹(x − μ)
        log_det = 2 * np.log(np.diag(chol)).sum()
        out[:, k] = (np.log(mix.weights[k]) - 0.5 * (white**2).sum(axis=0)
                     - 0.5 * (d * np.log(2 * np.pi) + log_det))
    return out


def mean_log_likelihood(x: np.ndarray, mix: Mixture) -> float:
    return float(logsumexp(log_joint(x, mix), axis=1).mean())


def em_step(x: np.ndarray, mix: Mixture, reg_covar: float = 1e-6) -> Mixture:
    joint = log_joint(x, mix)
    resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))  # E-step: p(k | x_n)
    nk = resp.sum(axis=0) + 10 * np.finfo(float).eps  # as scikit-learn: no empty component
    means = resp.T @ x / nk[:, None]
    covs = np.empty_like(mix.covariances)
    for k in range(len(nk)):
        diff = x - means[k]
        covs[k] = (resp[:, k, None] * diff).T @ diff / nk[k] + reg_covar * np.eye(x.shape[1])
    return Mixture(nk / len(x), means, covs)


def fit_em(x: np.ndarray, mix: Mixture, iterations: int,
           reg_covar: float = 1e-6) -> tuple[Mixture, list[float]]:
    """``iterations`` EM steps; returns the final mixture and the mean log-likelihood before
    each step and after the last (non-decreasing: EM's guarantee)."""
    history = [mean_log_likelihood(x, mix)]
    for _ in range(iterations):
        mix = em_step(x, mix, reg_covar)
        history.append(mean_log_likelihood(x, mix))
    return mix, history


def sklearn_log_likelihood(x: np.ndarray, init: Mixture, iterations: int,
                           reg_covar: float = 1e-6) -> float:
    """scikit-learn's GaussianMixture from the same start, for the same number of steps."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(len(init.weights), covariance_type="full", tol=0.0,
                         max_iter=iterations, reg_covar=reg_covar, weights_init=init.weights,
                         means_init=init.means,
                         precisions_init=np.linalg.inv(init.covariances))
    with warnings.catch_warnings():  # tol=0 runs every step and then "fails to converge"
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)
    return float(gm.score(x))
