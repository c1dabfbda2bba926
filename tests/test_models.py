"""models.py: shapes in and out, configs, and the linear-Gaussian model's closed forms."""

import math

import pytest
import torch

import vaebook as vb
from tests.ppca import make_ppca


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_autoencoder_shapes_accept_images_and_flat_vectors(arch):
    torch.manual_seed(0)
    hidden = (8, 16) if arch == "conv" else (64,)
    ae = vb.Autoencoder(arch=arch, z_dim=5, hidden=hidden)
    x = torch.rand(3, 1, 28, 28)
    z = ae.encode(x)
    assert z.shape == (3, 5)
    torch.testing.assert_close(ae.encode(x.view(3, 784)), z)
    x_hat = ae(x)
    assert x_hat.shape == (3, 1, 28, 28)
    assert 0 <= x_hat.min() and x_hat.max() <= 1  # sigmoid output


def test_linear_autoencoder_is_an_affine_map():
    torch.manual_seed(0)
    ae = vb.Autoencoder(z_dim=4, hidden=(32,), activation="linear")
    assert ae.config.output_kind == "identity"
    a, b = torch.rand(1, 784), torch.rand(1, 784)
    # f(ta + (1-t)b) = t f(a) + (1-t) f(b) for an affine f
    mix = ae(0.3 * a + 0.7 * b)
    torch.testing.assert_close(mix, 0.3 * ae(a) + 0.7 * ae(b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch,likelihood", [("mlp", "bernoulli"), ("conv", "gaussian")])
def test_vae_shapes_and_sampling(arch, likelihood):
    torch.manual_seed(0)
    hidden = (8, 16) if arch == "conv" else (32, 16)
    vae = vb.VAE(arch=arch, z_dim=3, hidden=hidden, likelihood=likelihood, c=0.1)
    x = torch.rand(4, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (4, 3)
    out = vae(x)
    assert out.x_out.shape == (4, 1, 28, 28) and out.z.shape == (4, 3)
    # decode keeps leading sample dimensions: (k, b, z) -> (k, b, 1, 28, 28)
    assert vae.decode(torch.randn(5, 4, 3)).shape == (5, 4, 1, 28, 28)
    s = vae.sample(6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    s2 = vae.sample(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(s, s2)
    draws = vae.sample(6, generator=torch.Generator().manual_seed(0), mean=False)
    if likelihood == "bernoulli":
        assert set(draws.unique().tolist()) <= {0.0, 1.0}


def test_vae_forward_uses_given_eps():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    x = torch.rand(3, 784)
    eps = torch.randn(3, 2)
    mu, logvar = vae.encode(x)
    out = vae(x, eps=eps)
    torch.testing.assert_close(out.z, mu + torch.exp(0.5 * logvar) * eps)


def _zero_last_weight(model):
    last = [m for m in model.decoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d))][-1]
    last.weight.data.zero_()  # with zero weights, the output is the bias alone


def test_init_output_bias_makes_the_first_decode_the_mean_image():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    x = torch.rand(50, 1, 28, 28) * 0.9 + 0.05
    vae.init_output_bias(x)
    _zero_last_weight(vae)
    torch.testing.assert_close(vae.mean_image(torch.zeros(1, 2))[0], x.mean(0), atol=1e-5, rtol=1e-5)


def test_init_output_bias_conv_decoders_start_at_the_mean_grey_level():
    torch.manual_seed(0)
    x = torch.rand(40, 1, 28, 28) * 0.5  # mean grey level about 0.25
    ae = vb.Autoencoder(arch="conv", hidden=(4, 8), z_dim=3)
    ae.init_output_bias(x)
    _zero_last_weight(ae)
    out = ae.decode(torch.randn(2, 3))
    torch.testing.assert_close(out, torch.full_like(out, x.mean().item()), atol=1e-5, rtol=1e-5)
    vae = vb.VAE(arch="conv", hidden=(4, 8), z_dim=3, likelihood="gaussian", c=0.1)
    vae.init_output_bias(x)
    _zero_last_weight(vae)
    out = vae.decode(torch.randn(2, 3))
    torch.testing.assert_close(out, torch.full_like(out, x.mean().item()), atol=1e-5, rtol=1e-5)


def test_init_output_bias_identity_output_starts_at_the_mean_image_itself():
    x = torch.rand(30, 1, 28, 28)
    x[:, :, :4] = 0.0  # black rows: a sigmoid output would need the clamped logit there
    ae = vb.Autoencoder(z_dim=2, hidden=(16,), activation="linear")  # identity output
    ae.init_output_bias(x)
    _zero_last_weight(ae)
    torch.testing.assert_close(ae.decode(torch.zeros(1, 2))[0], x.mean(0), atol=1e-6, rtol=1e-6)
    sig = vb.Autoencoder(z_dim=2, hidden=(8,))
    sig.init_output_bias(x)
    _zero_last_weight(sig)
    out = sig.decode(torch.zeros(1, 2))[0]
    torch.testing.assert_close(out[:, 4:], x.mean(0)[:, 4:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, :4], torch.full_like(out[:, :4], 1e-3), atol=1e-6, rtol=1e-4)  # clamped


def test_superresolver_starts_as_bicubic_and_scales_up():
    sr = vb.SuperResolver(scale=4, channels=8, n_layers=2)
    low = torch.rand(2, 1, 7, 7)
    out = sr(low)
    assert out.shape == (2, 1, 28, 28)
    bicubic = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, bicubic)  # zero-initialised last layer: residual 0


def test_digit_classifier_shapes():
    clf = vb.DigitClassifier()
    assert clf(torch.rand(3, 784)).shape == (3, 10)
    assert clf.embed(torch.rand(3, 1, 28, 28)).shape == (3, clf.config.hidden)


# --------------------------------------------------------------------------- linear-Gaussian model
def test_linear_gaussian_marginal_matches_sampling():
    model = make_ppca(d=5, c=0.3)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(100_000, 2, generator=g, dtype=torch.float64)
    x = model.decode(z) + math.sqrt(model.c) * torch.randn(100_000, 5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        cov = model.marginal().covariance_matrix
        torch.testing.assert_close(torch.cov(x.T), cov, atol=0.05, rtol=0.02)
        torch.testing.assert_close(x.mean(0), model.b, atol=0.02, rtol=0)


def test_linear_gaussian_posterior_is_bayes_rule():
    """p(z|x) = p(x|z) p(z) / p(x), checked pointwise with torch.distributions."""
    model = make_ppca(d=5, c=0.3)
    x = torch.randn(3, 5, dtype=torch.float64)
    z = torch.randn(3, 2, dtype=torch.float64)
    with torch.no_grad():
        mean, cov = model.posterior(x)
        post = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
        lik = torch.distributions.Independent(torch.distributions.Normal(model.decode(z), math.sqrt(model.c)), 1)
        prior = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), 1.0), 1)
        bayes = lik.log_prob(x) + prior.log_prob(z) - model.log_prob(x)
        torch.testing.assert_close(post.log_prob(z), bayes.to(torch.float64))


# --------------------------------------------------------------------------- configs and bad input
def test_unknown_config_option_names_it_and_suggests_the_right_one():
    with pytest.raises(ValueError, match=r"unknown VAEConfig option 'zdim' \(did you mean 'z_dim'\?\); expected one of: arch, z_dim"):
        vb.VAE(zdim=2)
    with pytest.raises(ValueError, match="unknown AEConfig option 'colour'"):
        vb.AEConfig.from_dict({"colour": 1})


