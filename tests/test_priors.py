"""Priors, the learned decoder variance and the continuous Bernoulli, against torch.distributions."""

import math

import pytest
import torch

import vaebook as vb
from vaebook.priors import MixturePrior, StandardNormalPrior


def test_mixture_prior_log_prob_matches_torch_distributions():
    prior = MixturePrior(z_dim=3, components=4)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
        prior.logvars.copy_(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)) * 0.3)
    z = torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(2))  # leading sample dimensions kept
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits),
        torch.distributions.Independent(torch.distributions.Normal(prior.means, (0.5 * prior.logvars).exp()), 1),
    )
    torch.testing.assert_close(prior.log_prob(z), mix.log_prob(z), rtol=1e-5, atol=1e-5)


def test_mixture_prior_samples_follow_its_weights_and_components():
    prior = MixturePrior(z_dim=2, components=2)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-5.0, 0.0], [5.0, 0.0]]))
        prior.logvars.fill_(math.log(0.01))
        prior.logits.copy_(torch.tensor([0.0, math.log(3.0)]))  # weights 1/4, 3/4
    z = prior.sample(8000, generator=torch.Generator().manual_seed(3))
    assert z.shape == (8000, 2)
    assert abs((z[:, 0] > 0).float().mean().item() - 0.75) < 0.02
    assert abs(z[z[:, 0] > 0, 0].std().item() - 0.1) < 0.01


def test_a_vae_with_a_learned_prior_uses_it_for_the_elbo_the_likelihood_and_samples():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,), prior="mixture", prior_components=3)
    assert isinstance(vae.prior, MixturePrior) and not vae.prior_is_standard
    assert any(p is vae.prior.means for p in vae.parameters())  # it trains with the model
    x = torch.bernoulli(torch.full((4, 784), 0.3), generator=torch.Generator().manual_seed(4))
    eps = torch.randn(1, 4, 2, generator=torch.Generator().manual_seed(5))
    terms = vb.model_elbo(vae, x, eps=eps[0])  # no closed-form KL against a mixture: the single-sample estimate
    torch.testing.assert_close(terms.elbo, vb.log_likelihood(vae, x, K=1, eps=eps), rtol=1e-5, atol=1e-4)
    mu, logvar = vae.encode(x)
    z = vb.reparameterize(mu, logvar, eps[0])
    torch.testing.assert_close(terms.kl, vb.diag_gaussian_log_prob(z, mu, logvar) - vae.prior.log_prob(z))
    again = vb.load(vb.save(vae, "/tmp/vaebook-mixture-prior.pt"))
    torch.testing.assert_close(again.prior.means, vae.prior.means)


def test_the_standard_prior_keeps_the_closed_form_kl_and_the_old_samples():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    assert isinstance(vae.prior, StandardNormalPrior) and vae.prior_is_standard
    x = torch.bernoulli(torch.full((3, 784), 0.3), generator=torch.Generator().manual_seed(4))
    mu, logvar = vae.encode(x)
    torch.testing.assert_close(vb.model_elbo(vae, x).kl, vb.gaussian_kl(mu, logvar))
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(vae.sample(5, generator=torch.Generator().manual_seed(9)), vae.mean_image(z))


def test_learned_c_is_a_parameter_and_training_moves_it_towards_the_mean_squared_error():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=4, hidden=(32,), likelihood="gaussian", c=1.0, learn_c=True)
    assert isinstance(vae.c, torch.Tensor) and vae.c.requires_grad and vae.c.item() == pytest.approx(1.0)
    x = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    vb.fit(vae, x, steps=600, batch_size=64, lr=1e-2, progress=False, device="cpu")
    with torch.no_grad():
        mse = (vae.reconstruct(x) - x).pow(2).mean().item()
    # the ELBO's optimum over c alone is the expected squared error per pixel; training ends near it
    assert vae.c.item() < 0.2 and 0.5 < vae.c.item() / mse < 2.0, (vae.c.item(), mse)


def test_learn_c_needs_the_gaussian_decoder():
    with pytest.raises(ValueError, match="VAEConfig.learn_c: only the Gaussian decoder"):
        vb.VAE(learn_c=True)


@pytest.mark.parametrize("shape", [(3, 50), (2, 1, 4, 4)])
def test_continuous_bernoulli_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    logits = 4 * torch.randn(shape, generator=g, dtype=torch.float64)
    logits.view(-1)[:4] = torch.tensor([0.0, 1e-5, -3e-3, 0.02], dtype=torch.float64)  # near lambda = 1/2
    expected = torch.distributions.ContinuousBernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(vb.continuous_bernoulli_log_prob(x, logits), expected, rtol=1e-9, atol=1e-9)
    assert torch.autograd.gradcheck(lambda lg: vb.continuous_bernoulli_log_prob(x, lg), (logits.clone().requires_grad_(),))


def test_a_continuous_bernoulli_vae_trains_and_its_grid_likelihood_matches_importance_sampling():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(32,), likelihood="continuous_bernoulli")
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    h = vb.fit(vae, x, epochs=5, batch_size=32, lr=3e-3, progress=False, device="cpu", test_data=x)
    assert h.test["elbo"][-1] > h.test["elbo"][0]
    grid = vb.grid_posterior(vae, x[:3], lim=5.0, n=81)
    is_ = vb.log_likelihood(vae, x[:3], K=2000, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(grid.log_px, is_, atol=0.5, rtol=0)
    m = vae.mean_image(torch.zeros(1, 2))
    assert bool(((m >= 0) & (m <= 1)).all())


def test_a_mixture_prior_fitted_to_codes_of_q_closes_the_gap_to_the_aggregate_posterior():
    """The aggregate posterior of three examples is a mixture of three Gaussians: a three-component
    prior fitted by maximum likelihood to its codes (the only part of the ELBO a prior changes)
    drives KL(q(z) || p(z)) from over a nat to nearly 0, and no prior goes below 0."""
    mu = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    logvar = torch.log(torch.tensor([[0.3, 0.2], [0.25, 0.4], [0.2, 0.2]]))
    codes = vb.reparameterize(mu, logvar, torch.randn(4000, 3, 2, generator=torch.Generator().manual_seed(6))).reshape(-1, 2)
    prior = MixturePrior(z_dim=2, components=3)
    recon = torch.zeros(3)

    def gap():
        with torch.no_grad():
            return vb.elbo_decomposition(recon, mu, logvar, log_prior=prior.log_prob, lim=6.0, n=241).marginal_kl.item()

    before = gap()

    def cross_entropy(p, z, target):
        loss = -p.log_prob(z).mean()
        return vb.LossOutput(loss, {})

    vb.fit(prior, codes, steps=400, batch_size=1000, lr=0.05, loss=cross_entropy, progress=False, device="cpu")
    after = gap()
    assert before > 1.0 and 0 <= after < 0.02, (before, after)
