"""vaebook.bounds against oracles: closed forms, the exact log p(x) of a linear-Gaussian model, and each other.

- The bound from log-weights is a log-mean-exp: checked against float64 arithmetic; with ``k = 1``
  it is the single-sample ELBO of ``vb.model_elbo`` for the same noise.
- On a linear-Gaussian model with an exact ``log p(x)``, the mean of the bound lies below it, rises
  with ``k`` and approaches it; where ``q`` is the exact posterior it equals it for every draw.
- The two gradient estimators are checked against their closed forms on a model whose every
  derivative is known (a linear-Gaussian decoder with free variational parameters), against each
  other (the same decoder gradient for the same noise; the same mean for the encoder) and against
  the exact gradient of the closed-form ELBO at ``k = 1``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import vaebook as vb
from tests.ppca import make_ppca, sample_ppca

DT = torch.float64


# --------------------------------------------------------------------------- a model with every derivative known
class FreeQLinear(nn.Module):
    """A linear-Gaussian decoder N(Wz + b, cI), prior N(0, I), and a q with free parameters per example."""

    likelihood = "gaussian"
    prior_is_standard = True

    def __init__(self, d: int = 5, z: int = 2, b: int = 3, c: float = 0.5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(d, z, generator=g, dtype=DT))
        self.b = nn.Parameter(torch.randn(d, generator=g, dtype=DT))
        self.mu = nn.Parameter(0.3 * torch.randn(b, z, generator=g, dtype=DT))
        self.logvar = nn.Parameter(-1.0 + 0.3 * torch.randn(b, z, generator=g, dtype=DT))
        self._c = c

    @property
    def c(self) -> float:
        return self._c

    @property
    def z_dim(self) -> int:
        return self.W.shape[1]

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.W.shape[0],)

    def log_prior(self, z: Tensor) -> Tensor:
        return vb.standard_normal_log_prob(z)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        reps = x.shape[0] // self.mu.shape[0]  # the same examples, repeated (as bound_gradients passes them)
        return self.mu.repeat(reps, 1), self.logvar.repeat(reps, 1)  # (reps * b, z) each

    def decode(self, z: Tensor) -> Tensor:
        return z @ self.W.T + self.b


def _closed_form_gradients(m: FreeQLinear, x: Tensor, eps: Tensor) -> dict[str, Tensor]:
    """The IWAE and DReG gradients of sum_b L_k for the noise eps (k, b, z), from their formulas."""
    with torch.no_grad():
        std = (0.5 * m.logvar).exp()  # (b, z)
        z = m.mu + std * eps  # (k, b, z)
        resid = x - z @ m.W.T - m.b  # (k, b, d)
        log_w = (vb.gaussian_log_prob(x, z @ m.W.T + m.b, m.c) + vb.standard_normal_log_prob(z)
                 - vb.diag_gaussian_log_prob(z, m.mu, m.logvar))  # (k, b)
        w = torch.softmax(log_w, dim=0).unsqueeze(-1)  # (k, b, 1)
        g_z = resid @ m.W / m.c - z  # (k, b, z): d log p(x, z) / dz
        path = g_z + eps / std  # (k, b, z): d log w / dz with q's parameters held fixed
        return {
            "iwae_mu": (w * g_z).sum(0),
            "iwae_logvar": (w * (g_z * std * eps / 2 + 0.5)).sum(0),
            "dreg_mu": (w**2 * path).sum(0),
            "dreg_logvar": (w**2 * path * std * eps / 2).sum(0),
            "W": torch.einsum("kb,kbd,kbz->dz", w[..., 0], resid, z) / m.c,
            "b": (w * resid).sum((0, 1)) / m.c,
        }


def _analytic_elbo(m: FreeQLinear, x: Tensor) -> Tensor:
    """The closed-form ELBO (L_1) of each example, (b,), a differentiable function of mu and logvar."""
    q_var = m.logvar.exp()  # (b, z)
    d = m.W.shape[0]
    r = x - m.mu @ m.W.T - m.b  # (b, d)
    e_log_px = -0.5 * (r.pow(2).sum(-1) + (q_var.unsqueeze(1) * m.W.pow(2)).sum((1, 2))) / m.c - 0.5 * d * math.log(2 * math.pi * m.c)
    e_log_pz = -0.5 * (m.mu.pow(2) + q_var).sum(-1) - 0.5 * m.z_dim * math.log(2 * math.pi)
    entropy = 0.5 * (m.logvar + 1 + math.log(2 * math.pi)).sum(-1)
    return e_log_px + e_log_pz + entropy


@pytest.fixture
def free_q():
    m = FreeQLinear()
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=DT)
    return m, x


# --------------------------------------------------------------------------- the bound from log-weights
def test_iwae_bound_is_the_log_of_the_mean_weight():
    log_w = torch.randn(7, 4, generator=torch.Generator().manual_seed(0), dtype=DT) * 3
    torch.testing.assert_close(vb.iwae_bound(log_w), log_w.exp().mean(0).log())
    assert vb.iwae_bound(log_w).shape == (4,)
    torch.testing.assert_close(vb.iwae_bound(log_w[:1]), log_w[0])  # k = 1: the log-weight itself
    torch.testing.assert_close(vb.iwae_bound(log_w.flip(0)), vb.iwae_bound(log_w))  # the order of the samples does not matter


def test_iwae_bound_never_forms_the_weights():
    log_w = torch.tensor([[-1000.0, -5000.0], [-1001.0, -5000.0]])  # exp() of these is 0 in float32
    expected = torch.tensor([-1000.0 + math.log((1 + math.exp(-1)) / 2), -5000.0])
    torch.testing.assert_close(vb.iwae_bound(log_w), expected)


def test_iwae_bound_lies_between_the_mean_and_the_largest_log_weight():
    """log of a mean >= mean of logs (Jensen) and <= log of the largest weight."""
    log_w = torch.randn(50, 6, generator=torch.Generator().manual_seed(2), dtype=DT) * 5
    bound = vb.iwae_bound(log_w)
    assert (bound >= log_w.mean(0)).all() and (bound <= log_w.max(0).values).all()


def test_the_bound_with_one_sample_is_the_single_sample_elbo():
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=3, hidden=(16,))
    x = torch.bernoulli(torch.full((5, 784), 0.3), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        one = vb.model_elbo(vae, x, eps=eps[0], analytic_kl=False).elbo
        for estimator in ("iwae", "dreg"):
            torch.testing.assert_close(vb.iwae_objective(vae, x, 1, estimator=estimator, eps=eps), one)


def test_the_objective_equals_the_importance_sampled_log_likelihood_for_the_same_noise():
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    x = torch.bernoulli(torch.full((4, 784), 0.4), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(30, 4, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = vb.log_likelihood(vae, x, K=30, eps=eps)
        for estimator in ("iwae", "dreg"):
            torch.testing.assert_close(vb.iwae_objective(vae, x, 30, estimator=estimator, eps=eps), reference)


# --------------------------------------------------------------------------- against an exact log p(x)
def test_the_mean_bound_is_below_log_px_rises_with_k_and_approaches_it():
    model = make_ppca(d=6, k=2, c=0.3)
    model.set_q_offsets(mu_shift=0.4, logvar_shift=0.8)  # a deliberately poor q
    x = sample_ppca(model, n=4)
    log_px = model.log_prob(x)  # (4,)
    g = torch.Generator().manual_seed(3)
    means, ses = {}, {}
    with torch.no_grad():
        for k in (1, 4, 16, 64, 256):
            draws = torch.stack([vb.iwae_objective(model, x, k, generator=g) for _ in range(400)])  # (400, 4)
            means[k], ses[k] = draws.mean(0), draws.std(0) / math.sqrt(400)
    for k in means:
        assert (means[k] < log_px + 4 * ses[k]).all(), (k, means[k], log_px)
    ks = sorted(means)
    for a, b in zip(ks[:-1], ks[1:], strict=True):
        assert (means[b] > means[a]).all(), (a, b, means[a], means[b])
    gap_1, gap_256 = (log_px - means[1]), (log_px - means[256])
    assert (gap_1 > 0.5).all() and (gap_256 < 0.05 * gap_1).all(), (gap_1, gap_256)
    # and L_1's mean is the closed-form ELBO of this q
    mu, logvar = model.encode(x)
    elbo = vb.ppca_elbo(model, x, mu, torch.diag(logvar[0].exp()))
    torch.testing.assert_close(means[1], elbo, atol=float(4 * ses[1].max()), rtol=0)


def test_with_the_exact_posterior_every_draw_of_the_bound_is_log_px_and_dreg_is_zero():
    """With orthogonal columns of W the posterior is a diagonal Gaussian, so q is exact: every weight is p(x)."""
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]], dtype=DT)
    model = vb.LinearGaussian(W, torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=DT), c=0.5)
    x = sample_ppca(model, n=3)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for k in (1, 5):
            torch.testing.assert_close(vb.iwae_objective(model, x, k, generator=g), model.log_prob(x))
    dreg = vb.bound_gradients(model, x, 5, 20, estimator="dreg", generator=g)
    iwae = vb.bound_gradients(model, x, 5, 20, estimator="iwae", generator=g)
    assert dreg.encoder.abs().max() < 1e-10  # zero for every draw: DReG has no noise at the optimum
    assert iwae.encoder.std(0).min() > 0.01  # the plain estimator is noisy there, with mean zero
    assert (iwae.encoder.mean(0).abs() < 4 * iwae.encoder.std(0) / math.sqrt(20)).all()


# --------------------------------------------------------------------------- the two gradient estimators
@pytest.mark.parametrize("k", [1, 3, 8])
def test_both_estimators_equal_their_closed_forms(free_q, k):
    m, x = free_q
    eps = torch.randn(k, 3, 2, generator=torch.Generator().manual_seed(k), dtype=DT)
    expected = _closed_form_gradients(m, x, eps)
    for estimator in ("iwae", "dreg"):
        bound = vb.iwae_objective(m, x, k, estimator=estimator, eps=eps)
        g_mu, g_logvar, g_W, g_b = torch.autograd.grad(bound.sum(), (m.mu, m.logvar, m.W, m.b))
        torch.testing.assert_close(g_mu, expected[f"{estimator}_mu"])
        torch.testing.assert_close(g_logvar, expected[f"{estimator}_logvar"])
        torch.testing.assert_close(g_W, expected["W"])  # the decoder's gradient is the same for both
        torch.testing.assert_close(g_b, expected["b"])


def test_dreg_gives_a_vae_the_same_value_and_decoder_gradient_and_another_encoder_gradient():
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=3, hidden=(16,)).double()
    x = torch.bernoulli(torch.full((4, 784), 0.3), generator=torch.Generator().manual_seed(1)).double()
    eps = torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(2), dtype=DT)
    enc, dec = list(vae.encoder.parameters()), list(vae.decoder.parameters())
    out = {}
    for estimator in ("iwae", "dreg"):
        bound = vb.iwae_objective(vae, x, 6, estimator=estimator, eps=eps)
        out[estimator] = (bound, torch.autograd.grad(bound.sum(), enc + dec))
    torch.testing.assert_close(out["iwae"][0], out["dreg"][0])
    for a, b in zip(out["iwae"][1][len(enc):], out["dreg"][1][len(enc):], strict=True):
        torch.testing.assert_close(a, b)
    assert max((a - b).abs().max().item() for a, b in zip(out["iwae"][1][:len(enc)], out["dreg"][1][:len(enc)], strict=True)) > 1e-3


def test_dreg_has_the_mean_of_the_plain_estimator_and_at_k1_the_exact_gradient(free_q):
    m, x = free_q
    g = torch.Generator().manual_seed(5)
    exact = torch.cat(torch.autograd.grad(_analytic_elbo(m, x).sum(), (m.mu, m.logvar)), dim=-1)  # (b, 2 z)
    for k in (1, 4):
        est = {e: vb.bound_gradients(m, x, k, 4000, estimator=e, generator=g).encoder for e in ("iwae", "dreg")}
        mean = {e: v.mean(0) for e, v in est.items()}
        se = (est["iwae"].var(0) / 4000 + est["dreg"].var(0) / 4000).sqrt()
        assert ((mean["iwae"] - mean["dreg"]).abs() < 4 * se).all(), (k, mean, se)
        if k == 1:
            for e in est:
                assert ((mean[e] - exact).abs() < 4 * est[e].std(0) / math.sqrt(4000)).all(), (e, mean[e], exact)


def test_bound_gradients_are_the_gradients_of_independent_estimates(free_q):
    """Each repeat's encoder gradient is the gradient of one estimate with its own noise (summed over none of the others)."""
    m, x = free_q
    k, repeats = 3, 4
    grads = vb.bound_gradients(m, x, k, repeats, generator=torch.Generator().manual_seed(6), max_samples=k * 3)  # one repeat per pass
    eps_all = torch.randn(k, 3, 2, generator=torch.Generator().manual_seed(6), dtype=DT)  # the first pass draws this
    expected = _closed_form_gradients(m, x, eps_all)
    torch.testing.assert_close(grads.encoder[0], torch.cat([expected["iwae_mu"], expected["iwae_logvar"]], dim=-1))
    assert grads.encoder.shape == (repeats, 3, 4) and grads.decoder.shape == (repeats, 3, 5)
    assert not torch.allclose(grads.encoder[0], grads.encoder[1])  # fresh noise for each repeat


def test_dreg_raises_the_encoder_snr_with_k_and_the_plain_estimator_lowers_it():
    """Rainforth et al. (2018) and Tucker et al. (2018), on a model small enough for many repeats."""
    m = FreeQLinear(d=5, z=2, b=1, seed=2)
    x = torch.randn(1, 5, generator=torch.Generator().manual_seed(7), dtype=DT)
    with torch.no_grad():  # q: the exact posterior's mean and marginal variances, shifted
        cov = torch.linalg.inv(m.W.T @ m.W / m.c + torch.eye(2, dtype=DT))
        m.mu.copy_((x - m.b) @ m.W @ cov / m.c + 0.5)
        m.logvar.copy_(torch.diagonal(cov).log().unsqueeze(0) + 0.5)
    g = torch.Generator().manual_seed(8)
    snr = {}
    for e in ("iwae", "dreg"):
        for k in (1, 256):
            grads = vb.bound_gradients(m, x, k, 2000, estimator=e, generator=g)
            snr[e, k] = vb.gradient_snr(grads.encoder).median().item()
    assert snr["iwae", 256] < snr["iwae", 1] / 2, snr
    assert snr["dreg", 256] > 4 * snr["dreg", 1], snr


# --------------------------------------------------------------------------- SNR
def test_gradient_snr_is_mean_over_standard_deviation():
    grads = torch.tensor([[1.0, 2.0, -3.0], [3.0, 2.0, -4.0], [5.0, 8.0, -5.0]], dtype=DT)
    expected = torch.tensor([3 / 2, 4 / math.sqrt(12), 4 / 1], dtype=DT)
    torch.testing.assert_close(vb.gradient_snr(grads), expected)


def test_gradient_snr_of_gaussian_draws_is_their_mean_over_their_spread():
    g = torch.Generator().manual_seed(9)
    draws = torch.tensor([0.5, -2.0, 0.0]) + torch.tensor([1.0, 4.0, 1.0]) * torch.randn(200_000, 3, generator=g)
    snr = vb.gradient_snr(draws)
    torch.testing.assert_close(snr[:2], torch.tensor([0.5, 0.5]), atol=0.01, rtol=0)
    assert snr[2] < 0.01


# --------------------------------------------------------------------------- the training loss
def test_iwae_loss_logs_the_bound_and_the_elbo_and_minimises_the_negative_bound():
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    x = torch.bernoulli(torch.full((8, 784), 0.3), generator=torch.Generator().manual_seed(1))
    for estimator in ("iwae", "dreg"):
        vb.seed_everything(1)
        out = vb.IWAELoss(K=10, estimator=estimator)(vae, x, x)
        assert set(out.metrics) == {"bound", "elbo"}
        torch.testing.assert_close(out.loss, -out.metrics["bound"])
        assert out.metrics["bound"] > out.metrics["elbo"]  # log of the mean weight > mean of the log-weights


@pytest.mark.parametrize("estimator", ["iwae", "dreg"])
def test_training_on_the_bound_raises_it(estimator):
    vb.seed_everything(0)
    data = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(1)).pow(3)
    vae = vb.VAE(z_dim=4, hidden=(32,))
    loss = vb.IWAELoss(K=5, estimator=estimator)
    before = vb.evaluate(vae, data, binarize=True, loss=loss)["bound"]
    vb.fit(vae, data, steps=60, batch_size=32, lr=3e-3, binarize=True, loss=loss, progress=False, device="cpu")
    after = vb.evaluate(vae, data, binarize=True, loss=loss)["bound"]
    assert after > before + 20, (before, after)


def test_k_is_the_old_name_of_K_and_still_works_for_a_deprecation_period():
    """The book writes K for importance samples (k is the latent dimension): k= still works, warns at the caller's line, and gives the same numbers."""
    import warnings

    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(8,))
    x = (torch.rand(3, 784) < 0.3).float()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = vb.log_likelihood(vae, x, k=7, generator=torch.Generator().manual_seed(1))
    assert [w.category for w in caught] == [FutureWarning] and "k= is renamed K=" in str(caught[0].message)
    assert caught[0].filename == __file__  # the line to change is the caller's, not the library's
    assert torch.equal(old, vb.log_likelihood(vae, x, K=7, generator=torch.Generator().manual_seed(1)))
    with pytest.warns(FutureWarning, match="k= is renamed K="):
        assert vb.IWAELoss(k=3).K == 3
    with pytest.warns(FutureWarning):
        assert vb.iwae_objective(vae, x, k=2, eps=torch.zeros(2, 3, 2)).shape == (3,)
    with pytest.raises(TypeError, match="K: got it twice"):
        vb.log_likelihood(vae, x, K=3, k=3)
