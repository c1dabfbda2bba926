"""The latent-diffusion glue (chapter 16): the scale against an independent computation, its round trip,
encode and decode against the first stage's own networks, the loss against its formula, and samples
against the DDPM's sampler run by hand. Seeds fixed throughout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaebook as vb
from vaebook import latent_diffusion as ld


def _latents(seed=0, shape=(64, 4, 7, 7), mean=1.5, std=3.0):
    return mean + std * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _stages(seed=0, code_dim=4):
    torch.manual_seed(seed)
    return vb.vq.GridGaussianVAE(code_dim=code_dim), vb.diffusion.DDPM(image_shape=(code_dim, 7, 7), hidden=32, T=10)


@pytest.mark.parametrize("shape", [(64, 4, 7, 7), (3, 2, 5, 5), (2,)])
def test_latent_scale_is_one_over_the_spread_computed_by_numpy(shape):
    z = _latents(1, shape)
    a = z.numpy().astype(np.float64)
    expected = 1.0 / np.sqrt(np.mean((a - a.mean()) ** 2))  # 1/N, about the common mean: eq-latent-scale
    assert ld.latent_scale(z) == pytest.approx(expected, rel=1e-12)


def test_scaled_latents_have_unit_variance_and_keep_their_mean_direction():
    z = _latents(2)
    s = ld.latent_scale(z)
    zs = ld.scale_latents(z, s)
    assert zs.double().std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert zs.mean().item() == pytest.approx(s * z.mean().item(), rel=1e-5)  # scaled, not centred
    assert ld.latent_scale(zs) == pytest.approx(1.0, abs=1e-6)  # scaling is idempotent on the measured scale


def test_scale_round_trip():
    z = _latents(3)
    # exact for a power of two (a change of the exponent only), to rounding for any other scale
    assert torch.equal(ld.unscale_latents(ld.scale_latents(z, 0.25), 0.25), z)
    s = ld.latent_scale(z)
    torch.testing.assert_close(ld.unscale_latents(ld.scale_latents(z, s), s), z, rtol=1e-6, atol=0)
    torch.testing.assert_close(ld.scale_latents(z, s), z * s, rtol=0, atol=0)


def test_the_scale_does_not_depend_on_the_latents_scale_or_shift():
    z = _latents(4)
    assert ld.latent_scale(10 * z) == pytest.approx(ld.latent_scale(z) / 10, rel=1e-9)
    assert ld.latent_scale(z + 7) == pytest.approx(ld.latent_scale(z), rel=1e-6)


def test_encode_is_the_posterior_mean_and_decode_the_bernoulli_mean():
    vae, _ = _stages()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    z = ld.encode(vae, x, batch_size=4)  # two batches: the split must not change the result
    mu, _logvar = vae.encoder(x).chunk(2, dim=1)
    assert z.shape == (6, 4, 7, 7)
    torch.testing.assert_close(z, mu.detach())
    torch.testing.assert_close(ld.encode(vae, x.flatten(1)), z)  # flattened images too
    x_hat = ld.decode(vae, z)
    assert x_hat.shape == (6, 1, 28, 28) and bool(((x_hat > 0) & (x_hat < 1)).all())
    torch.testing.assert_close(x_hat, torch.sigmoid(vae.decoder(mu)).detach())
    # the distortion of the first stage at eps = 0 is the Bernoulli log-loss of this decode
    rd = vae.rate_distortion(x, eps=torch.zeros(6, 7, 7, 4))
    torch.testing.assert_close(rd.distortion, -vb.bernoulli_log_prob(x, torch.logit(x_hat.double()).float()), rtol=1e-4, atol=1e-3)


def test_decode_of_encode_through_the_scale_is_the_first_stages_reconstruction():
    vae, ddpm = _stages()
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    model = ld.LatentDiffusion(vae, ddpm, scale=0.37)
    zs = model.encode(x)
    torch.testing.assert_close(zs, 0.37 * ld.encode(vae, x))
    torch.testing.assert_close(model.decode(zs), ld.decode(vae, ld.encode(vae, x)), rtol=1e-5, atol=1e-6)


def test_loss_is_the_denoising_error_of_the_latent_at_the_drawn_step():
    _, ddpm = _stages()
    z0 = _latents(7, (8, 4, 7, 7), mean=0.0, std=1.0)
    torch.manual_seed(11)
    out = ld.LatentDiffusionLoss()(ddpm, z0, z0)
    torch.manual_seed(11)  # the same draws, by hand: t, then eps, from the global generator
    t = torch.randint(1, ddpm.config.T + 1, (8,))
    eps = torch.randn(z0.shape)
    ab = ddpm.schedule.alpha_bars[t].float().view(8, 1, 1, 1)
    z_t = ab.sqrt() * z0 + (1 - ab).sqrt() * eps
    expected = (z0 - ddpm.denoise(z_t, t)).pow(2).mean()
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)


def test_training_on_latents_lowers_the_loss():
    _, ddpm = _stages()
    z = _latents(8, (512, 4, 7, 7), mean=0.0, std=1.0) * 0.3 + torch.linspace(-1, 1, 49).view(1, 1, 7, 7)  # a fixed pattern plus noise
    h = vb.fit(ddpm, z, steps=150, batch_size=64, lr=3e-3, loss=ld.LatentDiffusionLoss(), progress=False, device="cpu")
    first, last = h.train["mse"][0], h.train["mse"][-1]
    assert last < 0.6 * first, (first, last)


def test_init_latent_output_bias_starts_the_denoiser_at_the_mean_latent():
    _, ddpm = _stages()
    z = _latents(9, (32, 4, 7, 7))
    with torch.no_grad():
        ddpm.out[1].weight.zero_()
    ld.init_latent_output_bias(ddpm, z)
    out = ddpm.denoise(torch.randn(3, 4, 7, 7), torch.tensor([1, 5, 10]))
    torch.testing.assert_close(out, z.mean(0).expand(3, 4, 7, 7))


def test_sample_is_the_ddpm_sampler_unscaled_and_decoded():
    vae, ddpm = _stages()
    model = ld.LatentDiffusion(vae, ddpm, scale=0.5)
    x = model.sample(6, steps=4, generator=torch.Generator().manual_seed(12))
    assert x.shape == (6, 1, 28, 28) and bool(((x >= 0) & (x <= 1)).all())
    z = vb.diffusion.ddpm_sample(ddpm, ddpm.schedule, (6, 4, 7, 7), steps=4, clip=False, generator=torch.Generator().manual_seed(12))
    torch.testing.assert_close(x, torch.sigmoid(vae.decoder(z / 0.5)).detach())
    torch.testing.assert_close(model.sample(6, steps=4, generator=torch.Generator().manual_seed(12)), x, rtol=0, atol=0)  # seeded
    assert ddpm.training and vae.training  # sampling leaves the modes as they were


def test_latents_are_not_clipped_to_the_pixel_range():
    vae, ddpm = _stages()
    with torch.no_grad():
        ddpm.out[1].weight.zero_()
    ld.init_latent_output_bias(ddpm, torch.full((2, 4, 7, 7), 3.0))  # a denoiser that always answers 3
    model = ld.LatentDiffusion(vae, ddpm, scale=1.0)
    z = model.sample_latents(20, steps=3, generator=torch.Generator().manual_seed(13))
    # the last step returns the estimate itself: 3, where a sampler of grey levels would clip it to 1
    torch.testing.assert_close(z, torch.full_like(z, 3.0), rtol=0, atol=1e-4)
