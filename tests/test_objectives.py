"""objectives.py: the ELBO and log-likelihood against a model with an exact log p(x)."""

import math

import torch

import vaebook as vb
from tests.ppca import make_ppca, sample_ppca


def test_reconstruction_error_is_the_summed_squared_error():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    x_hat = torch.tensor([[0.5, 1.0], [0.0, 1.0]])
    torch.testing.assert_close(vb.reconstruction_error(x, x_hat), torch.tensor([0.25, 0.5]))


def test_elbo_terms_add_up_and_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((4, 1, 2, 2), 0.5), generator=g)
    logits = torch.randn(4, 1, 2, 2, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    out = vb.elbo(x, logits, mu, logvar)
    torch.testing.assert_close(out.elbo, out.recon - out.kl)
    bern = torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 3)
    torch.testing.assert_close(out.recon, bern.log_prob(x))
    q = torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(3), 1.0), 1)
    torch.testing.assert_close(out.kl, torch.distributions.kl_divergence(q, p))


def test_elbo_is_below_exact_log_px_on_a_linear_gaussian_model():
    model = make_ppca()
    model.set_q_offsets(0.3, 0.5)  # a deliberately imperfect q
    x = sample_ppca(model)
    with torch.no_grad():
        exact = model.log_prob(x)
        eps = torch.randn(20_000, *x.shape[:1], 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        # the expected ELBO, averaged over many reparameterized samples
        elbo = torch.stack([vb.model_elbo(model, x, eps=e).elbo for e in eps[:2000]]).mean(0)
    assert (elbo < exact).all()
    gap = exact - elbo
    assert (gap > 0.05).all()  # strictly below: q is not the posterior


def test_elbo_gap_is_the_kl_to_the_true_posterior():
    """log p(x) - ELBO = KL(q || p(z|x)), computed with torch.distributions on the exact posterior."""
    model = make_ppca()
    model.set_q_offsets(0.2, -0.3)
    x = sample_ppca(model, n=4)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        q = torch.distributions.MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))
        pm, pc = model.posterior(x)
        post = torch.distributions.MultivariateNormal(pm, covariance_matrix=pc)
        kl_post = torch.distributions.kl_divergence(q, post)
        # The ELBO in closed form for this model (the expectation taken exactly)
        elbo_exact = torch.stack([vb.ppca_elbo(model, x[i:i + 1], mu[i:i + 1], torch.diag(logvar[i].exp())) for i in range(4)]).flatten()
    torch.testing.assert_close(model.log_prob(x) - elbo_exact, kl_post)


def test_log_likelihood_approaches_exact_log_px_as_k_grows():
    model = make_ppca()
    model.set_q_offsets(0.2, 0.3)  # q is close to, but not, the posterior
    x = sample_ppca(model, n=16)
    exact = model.log_prob(x).detach()
    errors = []
    for k in (1, 10, 100, 10_000, 100_000):
        est = vb.log_likelihood(model, x, K=k, generator=torch.Generator().manual_seed(3), batch_size=10_000)
        errors.append((exact - est).abs().mean().item())
    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1.0 and errors[-1] < 0.01


def test_log_likelihood_with_k1_equals_single_sample_elbo_for_the_same_eps():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=3, hidden=(16,))
    x = torch.bernoulli(torch.rand(5, 784))
    eps = torch.randn(1, 5, 3)
    ll = vb.log_likelihood(vae, x, K=1, eps=eps)
    with torch.no_grad():
        e = vb.model_elbo(vae, x, eps=eps[0], analytic_kl=False)
    torch.testing.assert_close(ll, e.elbo)


def test_prior_proposal_is_the_naive_estimate():
    """With the prior as proposal the weights are p(x|z): the estimate is log mean p(x|z_i)."""
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.rand(3, 784))
    eps = torch.randn(50, 3, 2)
    ll = vb.log_likelihood(vae, x, K=50, eps=eps, proposal="prior")
    with torch.no_grad():
        lpx = vb.bernoulli_log_prob(x.view(3, 1, 28, 28), vae.decode(eps))  # (50, 3)
    torch.testing.assert_close(ll, vb.log_mean_exp(lpx, 0))


def test_grid_posterior_matches_exact_log_px_and_normalises():
    model = make_ppca(d=4, k=2, c=0.5)
    x = sample_ppca(model, n=3)
    grid = vb.grid_posterior(model, x, lim=6.0, n=301)
    torch.testing.assert_close(grid.log_px, model.log_prob(x).detach(), atol=1e-4, rtol=0)
    delta = (grid.z1[1] - grid.z1[0]).item()
    mass = grid.log_posterior.exp().sum(dim=(1, 2)) * delta**2
    torch.testing.assert_close(mass, torch.ones(3, dtype=mass.dtype), atol=1e-6, rtol=0)


def test_grid_kl_and_best_diagonal_gaussian_match_the_gaussian_closed_forms():
    """On probabilistic PCA the posterior is N(m, S): the grid KL is torch's Gaussian KL, and the best
    diagonal q has mean m and variances 1 / (S^-1)_jj (the closed form for KL(q || p))."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(4, 2, generator=g, dtype=torch.float64)
    W[:, 1] = 0.8 * W[:, 0] + 0.4 * W[:, 1]  # nearly parallel columns: a strongly tilted posterior
    model = vb.LinearGaussian(W, torch.zeros(4, dtype=torch.float64), 0.5)
    x = sample_ppca(model, n=3)
    grid = vb.grid_posterior(model, x, lim=6.0, n=201)
    with torch.no_grad():
        m, S = model.posterior(x)  # (3, 2), (2, 2)
    assert S[0, 1].abs() > 0.5 * S.diagonal().min()  # so the best diagonal q is not the marginals
    exact = torch.distributions.MultivariateNormal(m, covariance_matrix=S)
    g = torch.Generator().manual_seed(2)
    mu = m + 0.3 * torch.randn(3, 2, generator=g, dtype=torch.float64)
    logvar = torch.log(torch.diagonal(S)) + 0.5 * torch.randn(3, 2, generator=g, dtype=torch.float64)
    q = torch.distributions.MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))
    torch.testing.assert_close(vb.grid_kl(grid, mu, logvar), torch.distributions.kl_divergence(q, exact), atol=1e-4, rtol=0)
    # a grid of one example against several Gaussians
    one = vb.GridPosterior(grid.log_px[:1], grid.log_posterior[:1], grid.z1, grid.z2)
    torch.testing.assert_close(vb.grid_kl(one, mu, logvar)[1:], torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mu[1:], covariance_matrix=torch.diag_embed(logvar[1:].exp())),
        torch.distributions.MultivariateNormal(m[0], covariance_matrix=S)), atol=1e-4, rtol=0)
    best_mu, best_logvar = vb.best_diagonal_gaussian(grid, steps=300)
    torch.testing.assert_close(best_mu, m, atol=1e-3, rtol=0)
    torch.testing.assert_close(best_logvar, (-torch.log(torch.diagonal(torch.linalg.inv(S)))).expand(3, 2), atol=1e-3, rtol=0)


def test_grid_posterior_bernoulli_path_matches_the_pairwise_computation():
    """The all-pairs matrix product equals decoding every grid point for every image separately."""
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    x = torch.bernoulli(torch.rand(3, 784), generator=torch.Generator().manual_seed(1))
    grid = vb.grid_posterior(vae, x, lim=3.0, n=21)
    z1, z2 = torch.meshgrid(grid.z1, grid.z2, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], -1)  # (441, 2)
    with torch.no_grad():
        logits = vae.decode(z.unsqueeze(1).expand(-1, 3, 2))  # (441, 3, 1, 28, 28): one decode per pair
        log_joint = vb.bernoulli_log_prob(x.view(3, 1, 28, 28), logits) + vb.standard_normal_log_prob(z).unsqueeze(1)
    delta = (grid.z1[1] - grid.z1[0]).item()
    expected = torch.logsumexp(log_joint, dim=0) + 2 * math.log(delta)
    torch.testing.assert_close(grid.log_px, expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(grid.log_posterior.view(3, -1), (log_joint.T - expected[:, None]), rtol=1e-5, atol=1e-3)


def test_ppca_em_increases_the_elbo_and_reaches_the_ml_solution():
    true = make_ppca(d=5, k=2, c=0.1, seed=4)
    x = sample_ppca(true, n=500, seed=5)
    g = torch.Generator().manual_seed(6)
    model = vb.LinearGaussian(torch.randn(5, 2, generator=g, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), 1.0)
    previous = -math.inf
    for _ in range(300):
        with torch.no_grad():
            log_px = model.log_prob(x).sum()
        elbo_e, elbo_m = vb.ppca_em_step(model, x)
        # E-step: the bound touches log p(x); M-step: it never decreases
        torch.testing.assert_close(elbo_e, log_px)
        assert elbo_m >= elbo_e - 1e-8
        assert elbo_e >= previous - 1e-8
        previous = elbo_m
    # Tipping & Bishop's closed-form ML solution: c = mean of the discarded eigenvalues,
    # W W^T = U (L - c I) U^T on the top-k eigenvectors of the sample covariance.
    S = torch.cov(x.T, correction=0)
    evals, evecs = torch.linalg.eigh(S)
    c_ml = evals[:-2].mean()
    WWt_ml = evecs[:, -2:] @ torch.diag(evals[-2:] - c_ml) @ evecs[:, -2:].T
    assert abs(model.c - c_ml.item()) < 1e-4
    torch.testing.assert_close(model.W @ model.W.T, WWt_ml, atol=1e-3, rtol=1e-3)


def test_ppca_m_step_is_the_argmax_of_the_elbo_with_q_fixed():
    """The M-step is exact: at its (W, b, c) the ELBO's gradient vanishes, and nudging c lowers it."""
    true = make_ppca(d=6, k=2, c=0.2, seed=7)
    x = sample_ppca(true, n=300, seed=8)
    g = torch.Generator().manual_seed(9)
    model = vb.LinearGaussian(torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64), 2.0)
    with torch.no_grad():
        m, S = model.posterior(x)  # the q that the M-step holds fixed
    vb.ppca_em_step(model, x)
    model.W.grad = model.b.grad = None
    vb.ppca_elbo(model, x, m, S).sum().backward()
    assert model.W.grad.abs().max() < 1e-8 and model.b.grad.abs().max() < 1e-8, (model.W.grad, model.b.grad)
    c_star = model.c
    with torch.no_grad():
        best = vb.ppca_elbo(model, x, m, S).sum()
        for factor in (0.99, 1.01):
            model.set_c(c_star * factor)
            assert vb.ppca_elbo(model, x, m, S).sum() < best


def test_ppca_e_step_elbo_equals_log_px():
    model = make_ppca()
    x = sample_ppca(model, n=10)
    with torch.no_grad():
        m, S = model.posterior(x)
        torch.testing.assert_close(vb.ppca_elbo(model, x, m, S), model.log_prob(x))


def test_gradient_estimators_are_unbiased_for_a_quadratic():
    """f(z) = sum (z - a)^2 has E_q f = sum (mu - a)^2 + sigma^2: gradients 2(mu - a) and sigma^2."""
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    mu = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    logvar = torch.tensor([0.0, -1.0, 0.5], dtype=torch.float64)
    f = lambda z: (z - a).pow(2).sum(-1)  # noqa: E731
    exact_mu, exact_logvar = 2 * (mu - a), logvar.exp()
    eps = torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sf_mu, sf_lv = vb.score_function_gradient(f, mu, logvar, eps)
    rp_mu, rp_lv = vb.reparameterized_gradient(f, mu, logvar, eps)
    torch.testing.assert_close(rp_mu, exact_mu, atol=0.01, rtol=0)
    torch.testing.assert_close(rp_lv, exact_logvar, atol=0.01, rtol=0)
    torch.testing.assert_close(sf_mu, exact_mu, atol=0.05, rtol=0)
    torch.testing.assert_close(sf_lv, exact_logvar, atol=0.05, rtol=0)


def test_default_losses_compute_the_objectives_on_the_models_outputs():
    torch.manual_seed(0)
    ae = vb.Autoencoder(z_dim=2, hidden=(8,))
    x = torch.rand(4, 1, 28, 28)
    out = vb.default_loss(ae)(ae, x, x)
    torch.testing.assert_close(out.loss, vb.reconstruction_error(x, ae(x)).mean())
    vae = vb.VAE(z_dim=2, hidden=(8,))
    xb = torch.bernoulli(x, generator=torch.Generator().manual_seed(1))
    for beta in (0.0, 0.5, 1.0):
        torch.manual_seed(2)
        got = vb.ELBOLoss(beta=beta)(vae, xb, xb)
        torch.manual_seed(2)
        terms = vb.model_elbo(vae, xb)
        torch.testing.assert_close(got.loss, -(terms.recon - beta * terms.kl).mean())
        torch.testing.assert_close(got.metrics["elbo"], terms.elbo.mean())  # the true ELBO, whatever beta
    assert isinstance(vb.default_loss(vae), vb.ELBOLoss) and vb.default_loss(vae) is not vb.default_loss(vae)


