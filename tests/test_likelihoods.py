"""The decoders' likelihood objects (vaebook.likelihoods) against torch.distributions, and where the library asks them."""

from __future__ import annotations

import math

import pytest
import torch

import vaebook as vb
from vaebook import likelihoods as L

torch.manual_seed(0)
X_BIN = (torch.rand(5, 12, dtype=torch.float64) < 0.4).double()
X_GREY = torch.rand(5, 12, dtype=torch.float64).clamp(0.01, 0.99)
OUT = torch.randn(3, 5, 12, dtype=torch.float64)  # three samples of a decoder's output per example


@pytest.mark.parametrize("lik, x, oracle", [
    (L.Bernoulli(), X_BIN, lambda out: torch.distributions.Bernoulli(logits=out)),
    (L.ContinuousBernoulli(), X_GREY, lambda out: torch.distributions.ContinuousBernoulli(logits=out)),
    (L.Gaussian(0.3), X_GREY, lambda out: torch.distributions.Normal(out, math.sqrt(0.3))),
    (L.Gaussian(torch.tensor(0.3, dtype=torch.float64), learned=True), X_GREY, lambda out: torch.distributions.Normal(out, math.sqrt(0.3))),
], ids=["bernoulli", "continuous-bernoulli", "gaussian", "gaussian-learned"])
def test_log_prob_and_mean_match_torch_distributions(lik, x, oracle):
    want = oracle(OUT).log_prob(x.expand_as(OUT)).sum(-1)  # (3, 5)
    torch.testing.assert_close(lik.log_prob(x, OUT), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lik.mean(OUT), oracle(OUT).mean, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("lik, x", [(L.Bernoulli(), X_BIN), (L.ContinuousBernoulli(), X_GREY), (L.Gaussian(0.3, squash=False), X_GREY)],
                         ids=["bernoulli", "continuous-bernoulli", "gaussian"])
def test_all_pairs_equal_the_pair_by_pair_log_prob(lik, x):
    grid = torch.randn(7, 12, dtype=torch.float64)  # seven decoded points
    want = torch.stack([lik.log_prob(x, g.expand_as(x)) for g in grid])  # (7, 5)
    torch.testing.assert_close(lik.log_prob_all_pairs(x, grid), want, rtol=1e-10, atol=1e-9)


def test_samples_have_the_distributions_moments():
    out = torch.full((20_000, 4), 0.7)
    g = torch.Generator().manual_seed(1)
    b = L.Bernoulli().sample(out, g)
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert b.mean().item() == pytest.approx(torch.sigmoid(torch.tensor(0.7)).item(), abs=0.01)
    s = L.Gaussian(0.25).sample(torch.full((20_000, 4), 0.3), g)
    assert (s.mean().item(), s.var().item()) == (pytest.approx(0.3, abs=0.01), pytest.approx(0.25, rel=0.03))
    cb = L.ContinuousBernoulli().sample(out, g)
    want = torch.distributions.ContinuousBernoulli(logits=torch.tensor(0.7)).mean.item()
    assert 0 <= cb.min() and cb.max() <= 1 and cb.mean().item() == pytest.approx(want, abs=0.01)


def test_a_likelihood_equals_its_name_and_names_build_it():
    assert L.Bernoulli() == "bernoulli" and L.Gaussian(0.1) == "gaussian" and L.Bernoulli() != "gaussian"
    assert L.ContinuousBernoulli() != L.Bernoulli() and L.Gaussian(0.1) != L.Gaussian(0.2)
    assert L.likelihood("gaussian", 0.1) == L.Gaussian(0.1) and L.likelihood(L.Bernoulli()) == L.Bernoulli()
    assert (L.Bernoulli().binary, L.ContinuousBernoulli().binary, L.Gaussian().binary) == (True, False, False)
    with pytest.raises(ValueError, match="likelihood: expected one of"):
        L.likelihood("poisson")


def test_models_hold_their_likelihood_object():
    vae = vb.VAE(likelihood="gaussian", learn_c=True, z_dim=2, hidden=(8,))
    lik = vae.likelihood
    assert isinstance(lik, L.Gaussian) and lik.learned and lik.c.requires_grad  # the learned c, with its gradient
    assert isinstance(vb.VAE(z_dim=2, hidden=(8,)).likelihood, L.Bernoulli)
    ppca = vb.LinearGaussian(torch.randn(6, 2), torch.zeros(6), 0.5)
    assert ppca.likelihood == L.Gaussian(0.5, squash=False)

    class Mine:  # a model of one's own that names its likelihood
        likelihood, c = "gaussian", 0.2

    assert L.of(Mine()) == L.Gaussian(0.2)


def test_the_library_asks_the_object_not_the_name():
    """A model whose likelihood object is one the library has never seen is used through its methods alone."""

    class Laplace(L.Likelihood):
        name = "laplace"

        def log_prob(self, x, out):
            return torch.distributions.Laplace(out, 0.5).log_prob(x).sum(dim=tuple(range(1 - x.dim(), 0)))  # over each example's pixels

        def mean(self, out):
            return out

    class LaplaceVAE(vb.VAE):
        @property
        def likelihood(self):
            return Laplace()

    torch.manual_seed(0)
    vae = LaplaceVAE(z_dim=2, hidden=(8,)).double()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    eps = torch.randn(4, 2, dtype=torch.float64)
    terms = vb.model_elbo(vae, x, eps=eps)
    mu, logvar = vae.encode(x)
    out = vae.decode(mu + (0.5 * logvar).exp() * eps)
    want = torch.distributions.Laplace(out, 0.5).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(terms.recon, want)
    rd = vb.rate_distortion(vae, x, eps=eps, distortion="squared_error")
    torch.testing.assert_close(rd.distortion, (x - out).pow(2).flatten(1).sum(1))
