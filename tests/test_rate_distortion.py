"""Oracle tests of the rate-distortion reading of the ELBO (chapter 12): -ELBO = D + R, and c as a KL weight."""

from __future__ import annotations

import math

import pytest
import torch

import vaebook as vb


def _images(n=6, seed=0, binary=True):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed + 1)) if binary else x


@pytest.mark.parametrize("kw", [dict(), dict(likelihood="gaussian", c=0.05), dict(prior="mixture", prior_components=3)])
def test_distortion_plus_rate_is_minus_the_elbo_for_the_same_noise(kw):
    torch.manual_seed(0)
    model = vb.VAE(z_dim=3, hidden=(16,), **kw)
    x = _images(binary=kw.get("likelihood", "bernoulli") == "bernoulli")
    eps = torch.randn(len(x), 3, generator=torch.Generator().manual_seed(5))
    rd = vb.rate_distortion(model, x, eps=eps)
    terms = vb.model_elbo(model, x, eps=eps)
    assert rd.distortion.shape == rd.rate.shape == (len(x),)
    torch.testing.assert_close(rd.total, -terms.elbo)
    torch.testing.assert_close(rd.rate, terms.kl)
    # the terms are not all zero or equal: the test could fail
    assert rd.distortion.std() > 0 and (rd.rate > 0).all()


def test_bernoulli_distortion_and_rate_match_torch_distributions():
    torch.manual_seed(1)
    model = vb.VAE(z_dim=4, hidden=(16,))
    x = _images(5, seed=3)
    eps = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    rd = vb.rate_distortion(model, x, eps=eps)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + (0.5 * logvar).exp() * eps
        logits = model.decode(z)
    D = -torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    R = torch.distributions.kl_divergence(q, torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    torch.testing.assert_close(rd.distortion.detach(), D, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(rd.rate.detach(), R, rtol=1e-5, atol=1e-5)
    se = vb.rate_distortion(model, x, eps=eps, distortion="squared_error")
    torch.testing.assert_close(se.distortion.detach(), (x - torch.sigmoid(logits)).pow(2).flatten(1).sum(1))
    torch.testing.assert_close(se.rate, rd.rate)


def test_gaussian_minus_elbo_is_squared_error_over_2c_plus_rate_plus_a_constant():
    # eq-c-kl-weight, term by term, in float64
    torch.manual_seed(2)
    for c in (1.0, 0.1, 0.003):
        model = vb.VAE(z_dim=3, hidden=(16,), likelihood="gaussian", c=c).double()
        x = _images(4, seed=7, binary=False).double()
        eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        nats = vb.rate_distortion(model, x, eps=eps)
        se = vb.rate_distortion(model, x, eps=eps, distortion="squared_error")
        expected = se.distortion / (2 * c) + 784 / 2 * math.log(2 * math.pi * c)
        torch.testing.assert_close(nats.distortion, expected, rtol=1e-12, atol=1e-9)


def test_a_gaussian_decoder_with_variance_c_is_the_squared_error_beta_vae_with_beta_2c():
    # The gradients of -ELBO_c are those of (squared error + 2c KL), the loss of c = 1/2 with beta = 2c, divided by 2c.
    for c in (0.1, 0.01):
        torch.manual_seed(4)
        a = vb.VAE(z_dim=3, hidden=(16,), likelihood="gaussian", c=c).double()
        b = vb.VAE(z_dim=3, hidden=(16,), likelihood="gaussian", c=0.5).double()
        b.load_state_dict(a.state_dict())
        x = _images(8, seed=9, binary=False).double()
        grads = []
        for model, loss in [(a, vb.ELBOLoss()), (b, vb.ELBOLoss(beta=2 * c))]:
            torch.manual_seed(11)  # the same reparameterization noise for both
            model.zero_grad()
            loss(model, x, x).loss.backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        torch.testing.assert_close(2 * c * grads[0], grads[1], rtol=1e-10, atol=1e-12)
        assert grads[1].abs().max() > 1e-3  # non-trivial gradients
        # and not for another beta: the identity is exact only at beta = 2c
        torch.manual_seed(11)
        b.zero_grad()
        vb.ELBOLoss(beta=c)(b, x, x).loss.backward()
        other = torch.cat([p.grad.flatten() for p in b.parameters()])
        assert (other - grads[1]).abs().max() > 1e-4


def test_rate_distortion_rejects_an_unknown_distortion():
    with pytest.raises(ValueError, match=r"distortion.*'nats', 'squared_error'.*'mse'"):
        vb.rate_distortion(vb.VAE(z_dim=2, hidden=(8,)), torch.zeros(2, 784), distortion="mse")


def test_calibrated_nll_is_the_gaussian_log_density_at_the_batch_mse():
    g = torch.Generator().manual_seed(11)
    x, x_mean = torch.rand(7, 1, 28, 28, generator=g, dtype=torch.float64), torch.rand(7, 1, 28, 28, generator=g, dtype=torch.float64)
    nll = vb.calibrated_gaussian_nll(x, x_mean)
    c = (x - x_mean).pow(2).mean()
    oracle = -torch.distributions.Normal(x_mean, c.sqrt()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(nll, oracle)
    # the batch total is (bD/2) log(2 pi e c*), and c* is the minimiser over c: any other variance gives more
    torch.testing.assert_close(nll.sum(), 0.5 * x.numel() * torch.log(2 * math.pi * math.e * c))
    for factor in (0.9, 1.1):
        other = -torch.distributions.Normal(x_mean, (factor * c).sqrt()).log_prob(x).sum()
        assert other > nll.sum() + 1.0


def test_calibrated_nll_gradient_is_the_same_with_c_held_fixed():
    # at the optimal c the derivative in c vanishes, so stopping its gradient changes nothing (envelope theorem)
    g = torch.Generator().manual_seed(12)
    x = torch.rand(5, 30, generator=g, dtype=torch.float64)
    x_mean = torch.rand(5, 30, generator=g, dtype=torch.float64, requires_grad=True)
    (full,) = torch.autograd.grad(vb.calibrated_gaussian_nll(x, x_mean).sum(), x_mean)
    c = (x - x_mean).pow(2).mean().detach()
    fixed = ((x - x_mean).pow(2).sum(1) / (2 * c) + 15 * torch.log(2 * math.pi * c)).sum()
    (held,) = torch.autograd.grad(fixed, x_mean)
    torch.testing.assert_close(full, held)
    # ... and it is a squared-error gradient scaled by 1/c*: for a per-example c it would differ
    per_example_c = (x - x_mean).pow(2).mean(1, keepdim=True)
    (other,) = torch.autograd.grad(((x - x_mean).pow(2) / (2 * per_example_c) + 0.5 * torch.log(per_example_c)).sum(), x_mean)
    assert (other - full).abs().max() > 1e-3


def test_calibrated_loss_is_minus_the_elbo_with_c_star_and_logs_it():
    torch.manual_seed(3)
    model = vb.VAE(z_dim=3, hidden=(16,), likelihood="gaussian", c=0.5)
    x = _images(6, seed=4, binary=False)
    torch.manual_seed(9)
    out = vb.CalibratedGaussianLoss()(model, x, x)
    # the same noise through the library's ELBO with c set to the logged c*
    torch.manual_seed(9)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = vb.reparameterize(mu, logvar)
        x_mean = model.decode(z)
    c = (x - x_mean).pow(2).mean()
    torch.testing.assert_close(out.metrics["c"], c)
    recon = torch.distributions.Normal(x_mean, c.sqrt()).log_prob(x).flatten(1).sum(1)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(out.loss, -(recon - kl).mean(), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(out.metrics["kl"], kl.mean(), rtol=1e-5, atol=1e-4)
    assert float(model.c) == 0.5  # the model's own variance is untouched


def test_calibrated_loss_gradient_is_that_of_the_calibrated_nll_with_c_star_free():
    # the loss holds c* fixed; letting c* follow the decoder, as calibrated_gaussian_nll does, gives the same gradient
    torch.manual_seed(5)
    model = vb.VAE(z_dim=3, hidden=(16,), likelihood="gaussian").double()
    x = _images(6, seed=8, binary=False).double()
    torch.manual_seed(13)
    model.zero_grad()
    vb.CalibratedGaussianLoss()(model, x, x).loss.backward()
    held = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.manual_seed(13)
    model.zero_grad()
    mu, logvar = model.encode(x)
    x_mean = model.decode(vb.reparameterize(mu, logvar))
    (vb.calibrated_gaussian_nll(x, x_mean) + vb.gaussian_kl(mu, logvar)).mean().backward()
    free = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(held, free, rtol=1e-9, atol=1e-12)
    assert free.abs().max() > 1e-3
