"""stats.py against torch.distributions, gradcheck and closed forms."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vaebook as vb


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("b,d", [(1, 1), (5, 3), (16, 20)])
def test_gaussian_kl_matches_torch_distributions(gen, b, d):
    mu = torch.randn(b, d, generator=gen, dtype=torch.float64)
    logvar = torch.randn(b, d, generator=gen, dtype=torch.float64)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    expected = kl_divergence(q, p)
    got = vb.gaussian_kl(mu, logvar)
    assert got.shape == (b,)
    torch.testing.assert_close(got, expected)


def test_gaussian_kl_is_zero_at_prior_and_positive_elsewhere(gen):
    zeros = torch.zeros(4, 7)
    assert torch.equal(vb.gaussian_kl(zeros, zeros), torch.zeros(4))
    mu = torch.randn(100, 7, generator=gen)
    logvar = torch.randn(100, 7, generator=gen)
    assert (vb.gaussian_kl(mu, logvar) > 0).all()


def test_gaussian_kl_equals_its_monte_carlo_estimate(gen):
    """The closed form against E_q[log q - log p], estimated with many samples."""
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.2, -0.7, 0.0]], dtype=torch.float64)
    eps = torch.randn(200_000, 1, 3, generator=gen, dtype=torch.float64)
    z = vb.reparameterize(mu, logvar, eps)
    mc = (vb.diag_gaussian_log_prob(z, mu, logvar) - vb.standard_normal_log_prob(z)).mean(0)
    torch.testing.assert_close(mc, vb.gaussian_kl(mu, logvar), atol=0.02, rtol=0)


def test_gaussian_kl_gradcheck():
    mu = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(vb.gaussian_kl, (mu, logvar))


def test_reparameterize_moments(gen):
    mu = torch.tensor([[1.0, -2.0, 0.5]])
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]])
    z = vb.reparameterize(mu.expand(200_000, 3), logvar.expand(200_000, 3), generator=gen)
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0, 0.5]), atol=0.01, rtol=0)


def test_reparameterize_is_deterministic_given_eps_and_sends_gradients():
    mu = torch.tensor([[0.3, -0.1]], requires_grad=True)
    logvar = torch.tensor([[0.5, -1.0]], requires_grad=True)
    eps = torch.tensor([[1.5, -2.0]])
    z = vb.reparameterize(mu, logvar, eps)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))  # dz/dmu = 1
    # dz/dlogvar = 0.5 * sigma * eps
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_reparameterize_gradcheck():
    eps = torch.randn(5, 2, 3, dtype=torch.float64)
    mu = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, lv: vb.reparameterize(m, lv, eps), (mu, logvar))


@pytest.mark.parametrize("shape", [(4, 10), (3, 1, 5, 5)])
def test_bernoulli_log_prob_matches_torch(gen, shape):
    x = torch.bernoulli(torch.full(shape, 0.4), generator=gen)
    logits = 3 * torch.randn(shape, generator=gen)
    expected = Independent(Bernoulli(logits=logits), len(shape) - 1).log_prob(x)
    torch.testing.assert_close(vb.bernoulli_log_prob(x, logits), expected)


def test_bernoulli_log_prob_with_sample_dimension_and_saturated_logits(gen):
    x = torch.bernoulli(torch.full((3, 6), 0.5), generator=gen)
    logits = torch.randn(7, 3, 6, generator=gen) * 200  # sigmoid saturates: probabilities 0 or 1
    got = vb.bernoulli_log_prob(x, logits)
    assert got.shape == (7, 3)
    assert torch.isfinite(got).all()
    expected = Independent(Bernoulli(logits=logits), 1).log_prob(x.expand(7, 3, 6))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("c", [0.01, 1.0, 3.5])
def test_gaussian_log_prob_matches_torch(gen, c):
    x = torch.rand(5, 1, 4, 4, generator=gen)
    mean = torch.rand(5, 1, 4, 4, generator=gen)
    expected = Independent(Normal(mean, math.sqrt(c)), 3).log_prob(x)
    torch.testing.assert_close(vb.gaussian_log_prob(x, mean, c), expected)


def test_diag_gaussian_and_standard_normal_log_prob_match_torch(gen):
    mu = torch.randn(4, 3, generator=gen)
    logvar = torch.randn(4, 3, generator=gen)
    z = torch.randn(6, 4, 3, generator=gen)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    torch.testing.assert_close(vb.diag_gaussian_log_prob(z, mu, logvar), q.log_prob(z))
    p = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    torch.testing.assert_close(vb.standard_normal_log_prob(z), p.log_prob(z))


def test_log_mean_exp_is_stable_and_correct():
    a = torch.tensor([[-1000.0, -1001.0, -1002.0]])
    expected = -1000.0 + math.log((1 + math.exp(-1) + math.exp(-2)) / 3)
    torch.testing.assert_close(vb.log_mean_exp(a, dim=1), torch.tensor([expected]))
    b = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(vb.log_mean_exp(b, 0), b.exp().mean(0).log())


# --------------------------------------------------------------------------- bad input
def test_log_mean_exp_rejects_empty():
    with pytest.raises(ValueError, match="at least one value"):
        vb.log_mean_exp(torch.zeros(0, 3), dim=0)
