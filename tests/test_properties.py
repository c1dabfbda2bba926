"""Properties of the math that hold for every input, checked with hypothesis on generated ones.

The examples are drawn by hypothesis from fixed strategies with a fixed database-less profile
(``derandomize=True``), so a run repeats exactly.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vaebook as vb

settings.register_profile("vaebook", derandomize=True, max_examples=60, deadline=None, database=None)
settings.load_profile("vaebook")

finite = st.floats(min_value=-6.0, max_value=6.0, allow_nan=False, allow_infinity=False, width=64)


def tensors(shape, elements=finite):
    n = math.prod(shape)
    return st.lists(elements, min_size=n, max_size=n).map(lambda v: torch.tensor(v, dtype=torch.float64).view(shape))


shapes = st.tuples(st.integers(1, 4), st.integers(1, 5))


@given(shapes.flatmap(lambda s: st.tuples(tensors(s), tensors(s))))
def test_kl_is_non_negative_and_matches_torch_distributions(pair):
    mu, logvar = pair
    kl = vb.gaussian_kl(mu, logvar)
    assert bool((kl >= 0).all())
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(q, p).sum(-1), rtol=1e-9, atol=1e-9)


@given(shapes)
def test_kl_is_exactly_zero_at_the_prior(shape):
    assert torch.equal(vb.gaussian_kl(torch.zeros(shape), torch.zeros(shape)), torch.zeros(shape[0]))


@given(shapes.flatmap(lambda s: st.tuples(tensors(s), tensors(s), tensors(s), st.integers(0, 2**31 - 1))))
def test_elbo_is_recon_minus_kl_for_both_decoders(args):
    mu, logvar, eps, seed = args
    b, z_dim = mu.shape
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 7, generator=g, dtype=torch.float64)
    out = torch.randn(b, 7, generator=g, dtype=torch.float64)
    for likelihood in ("bernoulli", "gaussian"):
        terms = vb.elbo(x, out, mu, logvar, likelihood=likelihood, c=0.3)
        torch.testing.assert_close(terms.elbo, terms.recon - terms.kl, rtol=0, atol=1e-12)
        torch.testing.assert_close(terms.kl, vb.gaussian_kl(mu, logvar))
        z = vb.reparameterize(mu, logvar, eps)
        single = vb.elbo(x, out, mu, logvar, likelihood=likelihood, c=0.3, z=z)  # log p(x, z) - log q(z | x)
        expected = vb.log_px_given_z(x, out, likelihood, 0.3) + vb.standard_normal_log_prob(z) - vb.diag_gaussian_log_prob(z, mu, logvar)
        torch.testing.assert_close(single.elbo, expected, rtol=1e-9, atol=1e-9)


@given(st.tuples(st.integers(1, 6), st.integers(1, 4)).flatmap(lambda s: tensors(s, st.floats(-800, 800, width=64))), st.integers(0, 1))
def test_log_mean_exp_is_logsumexp_minus_log_k(a, dim):
    dim = min(dim, a.dim() - 1)
    got = vb.log_mean_exp(a, dim=dim)
    torch.testing.assert_close(got, torch.logsumexp(a, dim=dim) - math.log(a.shape[dim]), rtol=0, atol=1e-9)
    assert bool(torch.isfinite(got).all())  # exp(-800) underflows; its logarithm does not
    assert bool((got <= a.max(dim=dim).values + 1e-9).all()) and bool((got >= a.mean(dim=dim) - 1e-9).all())  # Jensen


@given(shapes.flatmap(lambda s: st.tuples(tensors(s), tensors(s), tensors((3, *s)))))
def test_reparameterize_with_a_given_eps_is_mu_plus_sigma_eps(args):
    mu, logvar, eps = args
    z = vb.reparameterize(mu, logvar, eps)  # (3, b, z_dim): leading sample dimension kept
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps, rtol=0, atol=1e-12)
    torch.testing.assert_close(vb.reparameterize(mu, logvar, torch.zeros_like(mu)), mu)


@given(tensors((5,)), tensors((5,)), st.integers(2, 9))
def test_interpolation_paths_start_and_end_at_the_codes(z0, z1, n):
    for method in ("linear", "slerp"):
        cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()) if z0.norm() > 0 and z1.norm() > 0 else None
        if method == "slerp" and (cos is None or cos < -0.999):
            continue  # undefined there: a clear error, tested in test_bad_input.py
        path = vb.interpolate(z0, z1, n, method=method)
        assert path.shape == (n, 5)
        torch.testing.assert_close(path[0], z0, rtol=0, atol=1e-9)
        torch.testing.assert_close(path[-1], z1, rtol=0, atol=1e-9)
