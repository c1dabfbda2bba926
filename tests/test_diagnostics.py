"""Diagnostics of where a VAE fails: the aggregate posterior, the ELBO's decomposition, active units, free bits.

Oracles: torch.distributions (an equal-weight mixture, per-coordinate KL), closed forms (the mutual
information of posteriors that coincide is 0, of posteriors that do not overlap log N; the KL between
Gaussians), two computations of the same quantity (grid against Monte Carlo, the decomposition's
terms against the closed-form KL and the model's own ELBO).
"""

import math

import pytest
import torch

import vaebook as vb


def _posteriors(n=300, seed=0, spread=1.5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, 2, generator=g, dtype=dtype)
    logvar = torch.empty(n, 2, dtype=dtype).uniform_(-3.0, -1.0, generator=g)  # sigma from 0.22 to 0.61
    return mu, logvar


# --------------------------------------------------------------------------- the aggregate posterior
def test_log_aggregate_posterior_is_the_equal_weight_mixture_of_torch_distributions():
    mu, logvar = _posteriors(50, dtype=torch.float32)
    z = torch.randn(4, 7, 2, generator=torch.Generator().manual_seed(1))  # leading dimensions kept
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=torch.full((50,), 1 / 50)),
        torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1),
    )
    got = vb.log_aggregate_posterior(z, mu, logvar)
    assert got.shape == (4, 7)
    torch.testing.assert_close(got, mix.log_prob(z), rtol=1e-5, atol=1e-5)


def test_log_aggregate_posterior_in_blocks_equals_all_at_once(monkeypatch):
    from vaebook import diagnostics

    mu, logvar = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, 5, dtype=torch.float64) * 0.3
    z = torch.randn(33, 5, dtype=torch.float64)
    whole = vb.log_aggregate_posterior(z, mu, logvar)
    monkeypatch.setattr(diagnostics, "_CHUNK", 7 * mu.numel())  # 7 codes per block, the last one short
    torch.testing.assert_close(vb.log_aggregate_posterior(z, mu, logvar), whole)


def test_the_aggregate_posterior_on_the_grid_integrates_to_one_and_matches_the_pointwise_density():
    mu, logvar = _posteriors(300)
    agg = vb.aggregate_posterior_grid(mu, logvar, lim=7.0, n=141)
    assert agg.log_q.shape == (141, 141) and agg.log_q.dtype == torch.float64
    assert abs(agg.log_q.exp().sum().item() * agg.cell - 1.0) < 1e-6
    pts = agg.points()  # (n, n, 2), [i, j] = (z1[i], z2[j])
    torch.testing.assert_close(pts[3, 5], torch.stack([agg.z1[3], agg.z2[5]]))
    some = pts[::20, ::20]  # (8, 8, 2)
    torch.testing.assert_close(agg.log_q[::20, ::20], vb.log_aggregate_posterior(some, mu, logvar), rtol=1e-9, atol=1e-9)


def test_the_grid_keeps_float32_codes_in_float32_and_its_tails_finite():
    mu, logvar = _posteriors(20, dtype=torch.float32)
    agg = vb.aggregate_posterior_grid(mu, logvar, lim=5.0, n=51)
    assert agg.log_q.dtype == torch.float32 and agg.z1.dtype == torch.float32
    assert torch.isfinite(agg.log_q[25]).all()  # float64 inside: no underflow to -inf along the middle row


# --------------------------------------------------------------------------- the decomposition
def test_the_three_terms_sum_to_the_elbo_and_the_information_terms_to_the_closed_form_kl():
    mu, logvar = _posteriors(300)
    recon = -100 + torch.randn(300, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = vb.elbo_decomposition(recon, mu, logvar, lim=7.0, n=201)
    torch.testing.assert_close(d.kl, vb.gaussian_kl(mu, logvar).mean())  # the closed form, computed on its own
    assert abs((d.mutual_info + d.marginal_kl - d.kl).item()) < 1e-4  # the grid's quadrature
    torch.testing.assert_close(d.elbo, d.recon - d.mutual_info - d.marginal_kl, rtol=0, atol=1e-4)
    torch.testing.assert_close(d.recon, recon.mean())
    assert 0 < d.mutual_info.item() < math.log(300) and d.marginal_kl.item() > 0


def test_mutual_information_on_the_grid_is_the_average_kl_from_each_posterior_to_the_aggregate():
    """I_q = (1/N) sum_n KL(q_n || q), each KL by quadrature on the grid (the definition, term by term)."""
    mu, logvar = _posteriors(40, spread=1.0)
    d = vb.elbo_decomposition(torch.zeros(40, dtype=torch.float64), mu, logvar, lim=6.0, n=241)
    agg = vb.aggregate_posterior_grid(mu, logvar, lim=6.0, n=241)
    z = agg.points()
    log_qn = vb.diag_gaussian_log_prob(z.unsqueeze(2).expand(-1, -1, 40, 2), mu, logvar).permute(2, 0, 1)  # (N, n, n)
    by_definition = (log_qn.exp() * (log_qn - agg.log_q)).sum((1, 2)).mean() * agg.cell
    torch.testing.assert_close(d.mutual_info, by_definition, rtol=0, atol=1e-6)


def test_posteriors_that_coincide_carry_no_information_and_at_the_prior_leave_no_gap():
    mu = torch.zeros(10, 2, dtype=torch.float64)
    d = vb.elbo_decomposition(torch.zeros(10, dtype=torch.float64), mu, torch.zeros_like(mu), lim=8.0, n=201)
    assert abs(d.mutual_info.item()) < 1e-6 and abs(d.marginal_kl.item()) < 1e-6 and abs(d.kl.item()) < 1e-12
    shifted = torch.tensor([[1.0, -0.5]], dtype=torch.float64).expand(10, 2)  # the same q for every example
    lv = torch.full((10, 2), -1.0, dtype=torch.float64)
    d = vb.elbo_decomposition(torch.zeros(10, dtype=torch.float64), shifted, lv, lim=8.0, n=201)
    assert abs(d.mutual_info.item()) < 1e-6
    torch.testing.assert_close(d.marginal_kl, vb.gaussian_kl(shifted[:1], lv[:1])[0], rtol=0, atol=1e-6)


def test_a_learned_prior_takes_its_kl_from_quadrature_which_matches_the_gaussian_closed_form():
    mu, logvar = _posteriors(60, spread=1.0)
    m, log_s2 = torch.tensor([0.3, -0.2], dtype=torch.float64), torch.tensor([0.5, -0.4], dtype=torch.float64)

    def log_prior(z):  # N(m, diag exp(log_s2)): not the standard normal, with a closed-form KL
        return vb.diag_gaussian_log_prob(z, m.expand_as(z), log_s2.expand_as(z))

    d = vb.elbo_decomposition(torch.zeros(60, dtype=torch.float64), mu, logvar, log_prior=log_prior, lim=7.0, n=241)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(m, (0.5 * log_s2).exp())
    closed = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    torch.testing.assert_close(d.kl, closed, rtol=0, atol=1e-6)
    assert abs((d.mutual_info + d.marginal_kl - d.kl).item()) < 1e-6


def test_a_grid_too_small_for_the_codes_is_refused():
    mu, logvar = _posteriors(30, spread=3.0)
    with pytest.raises(ValueError, match="expected a grid that holds the aggregate posterior"):
        vb.elbo_decomposition(torch.zeros(30, dtype=torch.float64), mu, logvar, lim=2.0, n=101)


def test_on_a_vae_the_decomposition_sums_to_the_models_own_elbo():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(32,))
    x = torch.bernoulli(torch.full((64, 784), 0.3), generator=torch.Generator().manual_seed(3))
    eps = torch.randn(64, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        terms = vb.model_elbo(vae, x, eps=eps)  # closed-form KL
        mu, logvar = vae.encode(x)
    d = vb.elbo_decomposition(terms.recon, mu, logvar, lim=6.0, n=301)
    torch.testing.assert_close(d.elbo, terms.elbo.mean(), rtol=0, atol=1e-4)
    torch.testing.assert_close(d.recon - d.mutual_info - d.marginal_kl, terms.elbo.mean(), rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- mutual information, Monte Carlo
def test_mutual_information_is_zero_when_q_does_not_depend_on_x():
    mu = torch.tensor([[0.5, -1.0, 2.0]]).expand(100, 3)
    logvar = torch.tensor([[0.1, -2.0, 0.0]]).expand(100, 3)
    i = vb.mutual_information(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert i.dim() == 0 and abs(i.item()) < 1e-5


def test_mutual_information_is_log_n_when_the_posteriors_do_not_overlap():
    n = 64
    mu = 100.0 * torch.arange(n, dtype=torch.float64).unsqueeze(1).expand(n, 4)  # 100 standard deviations apart
    i = vb.mutual_information(mu, torch.zeros(n, 4, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    assert abs(i.item() - math.log(n)) < 1e-9


def test_mutual_information_by_monte_carlo_agrees_with_the_grid():
    mu, logvar = _posteriors(200, spread=1.0)
    grid = vb.elbo_decomposition(torch.zeros(200, dtype=torch.float64), mu, logvar, lim=6.0, n=241).mutual_info.item()
    g = torch.Generator().manual_seed(5)
    draws = torch.stack([vb.mutual_information(mu, logvar, generator=g) for _ in range(200)])
    se = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - grid) < 4 * se, (draws.mean().item(), grid, se)


def test_mutual_information_with_eps_is_deterministic_and_uses_it():
    mu, logvar = _posteriors(30, dtype=torch.float32)
    eps = torch.randn(30, 2, generator=torch.Generator().manual_seed(6))
    a, b = vb.mutual_information(mu, logvar, eps=eps), vb.mutual_information(mu, logvar, eps=eps)
    assert a.item() == b.item()
    z = mu + (0.5 * logvar).exp() * eps
    by_hand = (vb.diag_gaussian_log_prob(z, mu, logvar) - vb.log_aggregate_posterior(z, mu, logvar)).mean()
    torch.testing.assert_close(a, by_hand)


# --------------------------------------------------------------------------- active units and free bits
def test_kl_per_dimension_matches_torch_distributions_and_sums_to_the_closed_form():
    g = torch.Generator().manual_seed(7)
    mu, logvar = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    got = vb.kl_per_dimension(mu, logvar)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0))
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got.sum(1), vb.gaussian_kl(mu, logvar))
    assert (vb.kl_per_dimension(torch.zeros(2, 3), torch.zeros(2, 3)) == 0).all()


def test_active_units_counts_the_coordinates_whose_posterior_mean_varies():
    g = torch.Generator().manual_seed(8)
    scales = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.0])  # variances 1, 0.25, 0.04, 0.0025, 0
    mu = torch.randn(5000, 5, generator=g) * scales + torch.tensor([3.0, 0, 0, 0, -2.0])
    activity = vb.unit_activity(mu)
    torch.testing.assert_close(activity, mu.var(dim=0))
    torch.testing.assert_close(activity, scales**2, rtol=0.1, atol=1e-4)
    assert vb.active_units(mu) == 3
    assert vb.active_units(mu, threshold=0.001) == 4 and vb.active_units(mu, threshold=2.0) == 0


def test_free_bits_floor_the_batch_average_of_each_coordinate():
    kl = torch.tensor([[0.0, 1.0, 3.0], [0.2, 1.0, 1.0]])  # batch averages 0.1, 1.0, 2.0
    assert vb.free_bits_kl(kl, 0.0).item() == pytest.approx(3.1)  # the average summed KL
    assert vb.free_bits_kl(kl, 0.5).item() == pytest.approx(0.5 + 1.0 + 2.0)
    assert vb.free_bits_kl(kl, 1.5).item() == pytest.approx(1.5 + 1.5 + 2.0)
    assert vb.free_bits_kl(kl, 0.0).item() == pytest.approx(kl.sum(1).mean().item())


def test_free_bits_give_no_gradient_to_coordinates_below_the_floor():
    g = torch.Generator().manual_seed(9)
    mu = (torch.randn(16, 4, generator=g, dtype=torch.float64) * torch.tensor([2.0, 0.1, 1.0, 0.01], dtype=torch.float64)).requires_grad_()
    logvar = torch.zeros(16, 4, dtype=torch.float64, requires_grad=True)
    kl = vb.kl_per_dimension(mu, logvar)
    below = kl.mean(0) < 0.5
    assert below.tolist() == [False, True, False, True]
    vb.free_bits_kl(kl, 0.5).backward()
    assert (mu.grad[:, below] == 0).all()
    torch.testing.assert_close(mu.grad[:, ~below], mu.detach()[:, ~below] / 16)  # d/d mu of the batch mean of mu^2 / 2


def test_elbo_loss_with_free_bits_minimises_the_floored_kl_and_logs_the_true_elbo():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=3, hidden=(16,))
    x = torch.bernoulli(torch.full((8, 784), 0.3), generator=torch.Generator().manual_seed(10))
    for lam in (0.0, 0.3, 5.0):
        torch.manual_seed(1)
        out = vb.ELBOLoss(free_bits=lam)(vae, x, x)
        torch.manual_seed(1)  # the same noise for the reference
        terms = vb.model_elbo(vae, x)
        mu, logvar = vae.encode(x)
        floored = vb.kl_per_dimension(mu, logvar).mean(0).clamp_min(lam).sum()
        torch.testing.assert_close(out.loss, -(terms.recon.mean() - floored))
        torch.testing.assert_close(out.metrics["elbo"], terms.elbo.mean())  # the true ELBO, whatever lam
        torch.testing.assert_close(out.metrics["kl"], terms.kl.mean())
    torch.manual_seed(1)
    with_beta = vb.ELBOLoss(beta=0.5, free_bits=0.3)(vae, x, x)
    torch.manual_seed(1)
    terms = vb.model_elbo(vae, x)
    floored = vb.kl_per_dimension(*vae.encode(x)).mean(0).clamp_min(0.3).sum()
    torch.testing.assert_close(with_beta.loss, -(terms.recon.mean() - 0.5 * floored))


def test_free_bits_need_the_standard_prior():
    vae = vb.VAE(z_dim=2, hidden=(8,), prior="mixture", prior_components=2)
    x = torch.bernoulli(torch.full((4, 784), 0.3))
    vb.ELBOLoss()(vae, x, x)  # no free bits: fine
    with pytest.raises(ValueError, match="free_bits: expected a model with the standard normal prior"):
        vb.ELBOLoss(free_bits=0.5)(vae, x, x)


def test_free_bits_keep_coordinates_that_the_plain_elbo_switches_off():
    """A Gaussian decoder with c = 1 on a few grey images: the ELBO leaves most coordinates near 0 nats;
    with free bits of 0.5 nats, every coordinate carries about 0.5 nats or more."""
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(11))
    per_unit = {}
    for lam in (0.0, 0.5):
        vb.seed_everything(0)
        vae = vb.VAE(z_dim=6, hidden=(32,), likelihood="gaussian", c=1.0)
        h = vb.fit(vae, x, steps=300, batch_size=32, lr=3e-3, loss=vb.ELBOLoss(free_bits=lam), progress=False, device="cpu")
        with torch.no_grad():
            per_unit[lam] = vb.kl_per_dimension(*vae.encode(x)).mean(0)
        assert "elbo" in h.train
    assert (per_unit[0.0] < 0.1).sum() >= 4, per_unit[0.0]
    assert per_unit[0.5].min() > 0.4, per_unit[0.5]
