"""vaebook.diffusion against closed forms, autograd, torch.distributions and Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

import vaebook as vb
from vaebook import diffusion as D


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def mixture(dtype=torch.float64):
    """Three components in 2-D with different widths and weights (the chapter's kind of mixture)."""
    return D.GaussianMixture(
        torch.tensor([0.5, 0.3, 0.2], dtype=dtype),
        torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]], dtype=dtype),
        torch.tensor([[0.3, 0.1], [0.05, 0.05], [0.2, 0.6]], dtype=dtype),
    )


def torch_mixture(m: D.GaussianMixture, sigma: float) -> MixtureSameFamily:
    comp = Independent(Normal(m.means, (m.variances + sigma**2).sqrt()), 1)
    return MixtureSameFamily(Categorical(probs=m.weights), comp)


# --------------------------------------------------------------------------- the mixture
@pytest.mark.parametrize("sigma", [0.0, 0.3, 1.5])
def test_mixture_log_prob_matches_torch_distributions(sigma):
    m = mixture()
    x = torch.randn(50, 2, generator=gen(1), dtype=torch.float64) * 2
    torch.testing.assert_close(m.log_prob(x, sigma), torch_mixture(m, sigma).log_prob(x))


@pytest.mark.parametrize("sigma", [0.0, 0.2, 1.0])
def test_mixture_score_matches_autograd_of_its_log_density(sigma):
    m = mixture()
    x = (torch.randn(40, 2, generator=gen(2), dtype=torch.float64) * 2).requires_grad_(True)
    (grad,) = torch.autograd.grad(m.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(m.score(x.detach(), sigma), grad)


def test_mixture_log_prob_gradcheck():
    m = mixture()
    x = torch.randn(5, 2, generator=gen(3), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: m.log_prob(v, 0.4), (x,))


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_tweedie_the_posterior_mean_is_the_noisy_point_plus_sigma_squared_times_the_score(sigma):
    m = mixture()
    x_noisy = torch.randn(30, 2, generator=gen(4), dtype=torch.float64) * 2
    torch.testing.assert_close(m.posterior_mean(x_noisy, sigma), D.tweedie_denoise(x_noisy, m.score(x_noisy, sigma), sigma))
    torch.testing.assert_close(D.denoiser_score(x_noisy, m.posterior_mean(x_noisy, sigma), sigma), m.score(x_noisy, sigma))


def test_mixture_posterior_mean_matches_monte_carlo():
    """E[x | x~] by self-normalised importance sampling with the prior as proposal: weights N(x~; x_i, sigma^2)."""
    m, sigma = mixture(), 0.8
    xs = m.sample(400_000, generator=gen(5))  # (S, 2)
    x_noisy = torch.tensor([[-1.0, 0.5], [1.2, 0.3], [0.0, -1.5], [2.5, 2.5]], dtype=torch.float64)
    log_w = -0.5 * (x_noisy.unsqueeze(1) - xs).pow(2).sum(-1) / sigma**2  # (4, S)
    w = torch.softmax(log_w, dim=1)
    mc = w @ xs  # (4, 2)
    torch.testing.assert_close(m.posterior_mean(x_noisy, sigma), mc, atol=0.02, rtol=0)


def test_mixture_samples_have_its_moments():
    m = mixture()
    xs = m.sample(200_000, generator=gen(6))
    mean = (m.weights.unsqueeze(1) * m.means).sum(0)
    second = (m.weights.unsqueeze(1) * (m.variances + m.means.pow(2))).sum(0)
    torch.testing.assert_close(xs.mean(0), mean, atol=0.01, rtol=0)
    torch.testing.assert_close(xs.pow(2).mean(0), second, atol=0.03, rtol=0)


def test_responsibilities_are_a_distribution_over_components():
    m = mixture()
    r = m.responsibilities(torch.randn(20, 2, generator=gen(7), dtype=torch.float64) * 3, 0.5)
    assert r.shape == (20, 3) and (r >= 0).all()
    torch.testing.assert_close(r.sum(1), torch.ones(20, dtype=torch.float64))


def test_a_far_away_point_gets_a_finite_score_pulling_it_back():
    m = mixture()
    x = torch.tensor([[60.0, -80.0]], dtype=torch.float64)
    s = m.score(x, 0.1)
    assert torch.isfinite(s).all() and (s * x).sum() < 0


# --------------------------------------------------------------------------- denoising score matching
def test_dsm_and_explicit_score_matching_differ_by_a_constant_independent_of_the_model():
    """E[DSM(s)] - E[ESM(s)] = (d / sigma^2 - E||score||^2) / 2 for every s: Vincent (2011), via Tweedie."""
    m, sigma, n = mixture(), 0.5, 400_000
    x = m.sample(n, generator=gen(8))
    x_noisy = x + sigma * torch.randn(x.shape, generator=gen(9), dtype=x.dtype)
    exact = m.score(x_noisy, sigma)
    A = torch.tensor([[0.3, -1.0], [0.7, 0.2]], dtype=torch.float64)
    models = {"exact": exact, "zero": torch.zeros_like(exact), "linear": x_noisy @ A.T + 0.5, "half": 0.5 * exact}
    constant = 0.5 * (2 / sigma**2 - exact.pow(2).sum(1).mean())
    for name, s in models.items():
        dsm = D.dsm_loss(s, x_noisy, x, sigma).mean()
        esm = 0.5 * (s - exact).pow(2).sum(1).mean()
        assert abs((dsm - esm) - constant) < 0.02 * constant, (name, dsm - esm, constant)


def test_dsm_is_the_denoising_objective_divided_by_two_sigma_to_the_fourth():
    g = gen(10)
    x, x_noisy, x_hat = (torch.randn(6, 1, 4, 4, generator=g) for _ in range(3))
    sigma = 0.7
    s = D.denoiser_score(x_noisy, x_hat, sigma)
    torch.testing.assert_close(D.dsm_loss(s, x_noisy, x, sigma), vb.reconstruction_error(x, x_hat) / (2 * sigma**4))


# --------------------------------------------------------------------------- the schedule and q
def test_linear_schedule_and_its_products():
    s = D.NoiseSchedule.linear(1000)
    assert s.T == 1000 and s.betas.dtype == torch.float64 and s.betas[0] == 0
    torch.testing.assert_close(s.betas[[1, -1]], torch.tensor([1e-4, 0.02], dtype=torch.float64))
    torch.testing.assert_close(s.alpha_bars[1:], torch.cumprod(1 - s.betas[1:], 0))
    short = D.NoiseSchedule.linear(100)
    torch.testing.assert_close(short.betas[[1, -1]], torch.tensor([1e-3, 0.2], dtype=torch.float64))


def test_cosine_schedule_follows_its_formula():
    T, s = 50, 0.008
    sched = D.NoiseSchedule.cosine(T, s)
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    torch.testing.assert_close(sched.alpha_bars[:-1], (f / f[0])[:-1])  # the last beta is clipped to 0.999
    assert sched.betas[1:].max() <= 0.999


@pytest.mark.parametrize("t", [1, 10, 100])
def test_q_sample_has_the_schedules_mean_and_variance(t):
    s = D.NoiseSchedule.linear(100)
    x0 = torch.tensor([[0.8, -0.5, 0.0]], dtype=torch.float64).expand(200_000, 3)
    xt = s.q_sample(x0, torch.full((200_000,), t), generator=gen(11))
    ab = s.alpha_bars[t]
    torch.testing.assert_close(xt.mean(0), ab.sqrt() * x0[0], atol=0.01, rtol=0)
    torch.testing.assert_close(xt.var(0), (1 - ab).expand(3), atol=0.01, rtol=0)


def test_the_one_jump_marginal_equals_the_chain_of_single_steps():
    """t forward steps q(x_s | x_{s-1}) give the same Gaussian as q(x_t | x0) in one jump."""
    s, t, n = D.NoiseSchedule.linear(50), 30, 200_000
    x = torch.full((n, 2), 0.6, dtype=torch.float64)
    g = gen(12)
    for step in range(1, t + 1):
        x = s.q_step(x, torch.full((n,), step), generator=g)
    ab = s.alpha_bars[t]
    torch.testing.assert_close(x.mean(0), (ab.sqrt() * 0.6).expand(2), atol=0.01, rtol=0)
    torch.testing.assert_close(x.var(0), (1 - ab).expand(2), atol=0.01, rtol=0)


@pytest.mark.parametrize("t", [2, 17, 100])
def test_q_posterior_is_gaussian_conditioning_of_the_joint(t):
    """(x_{t-1}, x_t) given x0 is jointly Gaussian per pixel; condition it by the textbook formula."""
    s = D.NoiseSchedule.linear(100)
    ab, ab_prev, a = s.alpha_bars[t], s.alpha_bars[t - 1], s.alphas[t]
    x0 = torch.tensor([[0.3, -0.9]], dtype=torch.float64)
    x_t = torch.tensor([[1.1, 0.2]], dtype=torch.float64)
    cov = a.sqrt() * (1 - ab_prev)  # Cov(x_{t-1}, x_t | x0)
    mean = ab_prev.sqrt() * x0 + cov / (1 - ab) * (x_t - ab.sqrt() * x0)
    var = (1 - ab_prev) - cov**2 / (1 - ab)
    got_mean, got_var = s.q_posterior(x0, x_t, torch.tensor([t]))
    torch.testing.assert_close(got_mean, mean)
    torch.testing.assert_close(got_var, var.reshape(1))
    torch.testing.assert_close(s.posterior_variances[t], var)


def test_the_mean_from_a_noise_prediction_is_the_posterior_mean_at_the_predicted_x0():
    s = D.NoiseSchedule.linear(100)
    g = gen(13)
    x_t, eps_hat = torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64), torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 5, 50, 100])
    x0_hat = s.predict_x0(x_t, eps_hat, t)
    torch.testing.assert_close(s.eps_to_mean(x_t, eps_hat, t), s.q_posterior(x0_hat, x_t, t)[0])


def test_predict_x0_is_tweedie_in_the_rescaled_coordinates():
    """x_t / sqrt(ab) = x0 + sigma eps with sigma^2 = (1 - ab) / ab; its score is -eps_hat / (sigma sqrt(ab)) ... times sqrt(ab)."""
    s = D.NoiseSchedule.linear(100)
    g = gen(14)
    x_t, eps_hat = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([5, 5, 5])
    ab = s.alpha_bars[5]
    sigma = ((1 - ab) / ab).sqrt().item()
    y = x_t / ab.sqrt()
    score_y = -eps_hat / (1 - ab).sqrt() * ab.sqrt()  # chain rule: d/dy = sqrt(ab) d/dx_t
    torch.testing.assert_close(s.predict_x0(x_t, eps_hat, t), D.tweedie_denoise(y, score_y, sigma))


# --------------------------------------------------------------------------- the ELBO's pieces
def test_normal_kl_matches_torch_distributions():
    g = gen(15)
    mq, mp = torch.randn(5, 1, 2, 3, generator=g, dtype=torch.float64), torch.randn(5, 1, 2, 3, generator=g, dtype=torch.float64)
    vq, vp = torch.rand(5, generator=g, dtype=torch.float64) + 0.1, torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    q = Independent(Normal(mq, vq.sqrt().view(5, 1, 1, 1).expand_as(mq)), 3)
    p = Independent(Normal(mp, vp.sqrt().view(5, 1, 1, 1).expand_as(mp)), 3)
    torch.testing.assert_close(D.normal_kl(mq, vq, mp, vp), kl_divergence(q, p))


def test_the_kl_term_is_the_weighted_noise_prediction_error():
    """KL(q(x_{t-1}|x_t,x0) || p(x_{t-1}|x_t)) = lambda_t ||eps - eps_hat||^2 when sigma_t^2 = beta~_t."""
    s = D.NoiseSchedule.linear(100)
    g = gen(16)
    x0 = torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps, eps_hat = torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64), torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 3, 10, 40, 99, 100])
    x_t = s.q_sample(x0, t, eps)
    mean_q, var_q = s.q_posterior(x0, x_t, t)
    kl = D.normal_kl(mean_q, var_q, s.eps_to_mean(x_t, eps_hat, t), var_q)
    torch.testing.assert_close(kl, s.elbo_weights()[t] * D.eps_prediction_error(eps_hat, eps))
    b, a, ab = s.betas[t], s.alphas[t], s.alpha_bars[t]
    torch.testing.assert_close(s.elbo_weights()[t], b**2 / (2 * s.posterior_variances[t] * a * (1 - ab)))


def test_discretized_gaussian_is_a_distribution_over_256_grey_levels():
    levels = torch.arange(256, dtype=torch.float64) / 255 * 2 - 1  # every grey level of one pixel
    for mean, var in [(0.0, 0.01), (0.93, 1e-4), (-1.0, 0.5), (3.0, 1e-3)]:
        lp = D.discretized_gaussian_log_prob(levels.view(256, 1), torch.full((256, 1), mean, dtype=torch.float64),
                                             torch.full((256,), var, dtype=torch.float64))
        assert torch.isfinite(lp).all()
        torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_discretized_gaussian_matches_the_normal_cdf_on_interior_bins():
    x0 = torch.tensor([[-0.5, 0.2, 0.6]], dtype=torch.float64).round(decimals=2)
    x0 = torch.round((x0 + 1) / 2 * 255) / 255 * 2 - 1
    mean, var = torch.tensor([[-0.4, 0.2, 0.0]], dtype=torch.float64), torch.tensor([0.01], dtype=torch.float64)
    n = Normal(mean, var.sqrt())
    expected = (n.cdf(x0 + 1 / 255) - n.cdf(x0 - 1 / 255)).log().sum(1)
    torch.testing.assert_close(D.discretized_gaussian_log_prob(x0, mean, var), expected)


class _PointMassDDPM(D.DDPM):
    """The exact noise predictor for data that is one image x*: eps = (x_t - sqrt(ab) x*) / sqrt(1 - ab)."""

    def __init__(self, x_star, **kw):
        super().__init__(**kw)
        self.x_star = D.to_signed(x_star)

    def forward(self, x_t, t):
        ab = self.schedule.alpha_bars[t.cpu()].to(x_t.dtype).view(-1, 1, 1, 1)
        return (x_t - ab.sqrt() * self.x_star) / (1 - ab).sqrt()


def test_diffusion_elbo_terms_sum_to_the_whole_and_the_bound_is_a_log_probability():
    ddpm = D.DDPM(image_shape=(1, 4, 4), T=20, hidden=16, blocks=1)
    x = torch.round(torch.rand(5, 1, 4, 4, generator=gen(17)) * 255) / 255
    out = D.diffusion_elbo(ddpm, x, generator=gen(18))
    assert out.kl.shape == (5, 19) and out.elbo.shape == out.recon.shape == out.prior.shape == (5,)
    torch.testing.assert_close(out.elbo, out.recon - out.prior - out.kl.sum(1))
    assert (out.kl >= 0).all() and (out.prior >= 0).all() and (out.elbo < 0).all() and (out.recon <= 0).all()
    again = D.diffusion_elbo(ddpm, x, generator=gen(18))
    torch.testing.assert_close(again.elbo, out.elbo)  # the generator fixes every draw


def test_diffusion_elbo_of_the_exact_network_for_one_image():
    """With the exact noise predictor for a point mass at x*, every KL term vanishes and the
    reconstruction is the mass of N(x*, beta_1) on x*'s grey-level bin, pixel by pixel."""
    x_star = torch.full((1, 1, 2, 2), 128 / 255)
    ddpm = _PointMassDDPM(x_star, image_shape=(1, 2, 2), T=30, hidden=4, blocks=0)
    out = D.diffusion_elbo(ddpm, x_star.expand(3, 1, 2, 2), generator=gen(19))
    assert out.kl.abs().max() < 1e-4, out.kl.abs().max()
    half_bin = (1 / 255) / math.sqrt(ddpm.schedule.betas[1].item())
    per_pixel = math.log(math.erf(half_bin / math.sqrt(2)))  # Phi(h) - Phi(-h)
    torch.testing.assert_close(out.recon, torch.full((3,), 4 * per_pixel), atol=1e-4, rtol=1e-4)
    ab_T = ddpm.schedule.alpha_bars[-1].item()
    x0 = D.to_signed(x_star)
    prior = 0.5 * (ab_T * x0.pow(2).sum() + 4 * (1 - ab_T - 1 - math.log(1 - ab_T)))
    torch.testing.assert_close(out.prior, prior.expand(3).float(), atol=1e-6, rtol=1e-4)


# --------------------------------------------------------------------------- sampling
def test_sampling_timesteps_run_from_T_to_zero():
    assert D.sampling_timesteps(100, 100) == list(range(100, -1, -1))
    taus = D.sampling_timesteps(100, 7)
    assert taus[0] == 100 and taus[-1] == 0 and len(taus) == 8 and all(a > b for a, b in zip(taus[:-1], taus[1:], strict=True))
    assert D.sampling_timesteps(100, 1) == [100, 0]


def test_ddpm_step_is_the_posterior_at_the_predicted_x0_plus_noise():
    s = D.NoiseSchedule.linear(100)
    g = gen(20)
    x_t, eps_hat, z = (torch.randn(3, 1, 2, 2, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.full((3,), 40)
    mean, var = s.q_posterior(s.predict_x0(x_t, eps_hat, t), x_t, t)
    got = D.ddpm_step(x_t, eps_hat, s.alpha_bars[40].item(), s.alpha_bars[39].item(), z)
    torch.testing.assert_close(got, mean + var.sqrt().view(-1, 1, 1, 1) * z)
    last = D.ddpm_step(x_t, eps_hat, s.alpha_bars[40].item(), 1.0, None)  # a jump to step 0: Tweedie's x0
    torch.testing.assert_close(last, s.predict_x0(x_t, eps_hat, t))


@pytest.mark.parametrize("steps", [200, 20])
def test_sampling_with_the_exact_noise_predictor_recovers_gaussian_data(steps):
    """For data N(m, s^2 I) the exact predictor is E[eps | x_t] = sqrt(1 - ab)(x_t - sqrt(ab) m)/(ab s^2 + 1 - ab).

    With all 200 steps the samples have the data's mean and spread; with 20 they keep the mean but
    are too narrow: each long step's variance beta~ is the one for a known x0, smaller than the
    reverse step's true variance.
    """
    sched, m, sd = D.NoiseSchedule.linear(200), torch.tensor([0.5, -0.3]), 0.4

    def eps_exact(x_t, t):
        ab = sched.alpha_bars[t].float().unsqueeze(1)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * m) / (ab * sd**2 + 1 - ab)

    # clip=False: the data is not an image on [-1, 1] (about 10% of N(0.5, 0.4^2) lies above 1), and clipping
    # the estimate of x0 there would pull the samples' mean down
    x = D.ddpm_sample(eps_exact, sched, (100_000, 2), steps=steps, clip=False, generator=gen(21))
    torch.testing.assert_close(x.mean(0), m, atol=0.01, rtol=0)
    if steps == 200:
        torch.testing.assert_close(x.std(0), torch.full((2,), sd), atol=0.02, rtol=0)
    else:
        assert (x.std(0) < sd - 0.05).all(), x.std(0)


def test_ddpm_sample_is_fixed_by_its_generator_and_returns_images():
    ddpm = D.DDPM(image_shape=(1, 4, 4), T=10, hidden=8, blocks=1)
    a = ddpm.sample(6, generator=gen(22))
    b = ddpm.sample(6, generator=gen(22))
    c = ddpm.sample(6, steps=3, generator=gen(22))
    assert a.shape == (6, 1, 4, 4) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_to_signed_and_to_unit_are_inverse_on_grey_levels():
    x = torch.rand(3, 1, 4, 4, generator=gen(23))
    torch.testing.assert_close(D.to_unit(D.to_signed(x)), x)
    assert D.to_signed(torch.zeros(1, 1)).item() == -1 and D.to_signed(torch.ones(1, 1)).item() == 1


# --------------------------------------------------------------------------- training
def test_fit_with_the_diffusion_loss_lowers_the_noise_prediction_error():
    x = torch.zeros(256, 1, 4, 4)
    x[:, :, 1:3, 1:3] = 1.0  # one image, repeated: an easy distribution
    ddpm = D.DDPM(image_shape=(1, 4, 4), T=20, hidden=32, blocks=1)
    history = vb.fit(ddpm, x, steps=300, batch_size=64, lr=3e-3, loss=D.DiffusionLoss(), progress=False, device="cpu")
    mse = history.train["mse"]
    assert mse[-1] < 0.5 * mse[0], mse
    out = D.DiffusionLoss()(ddpm, x[:8], x[:8])
    assert isinstance(out, vb.LossOutput) and out.loss.dim() == 0


def test_the_diffusion_loss_is_deterministic_under_fit_seed():
    x = torch.rand(64, 1, 4, 4, generator=gen(24))

    def run(global_seed):
        torch.manual_seed(7)  # the same initial weights
        ddpm = D.DDPM(image_shape=(1, 4, 4), T=10, hidden=8, blocks=1)
        torch.manual_seed(global_seed)  # a different global state when fit starts: its seed must override it
        vb.fit(ddpm, x, steps=5, batch_size=16, loss=D.DiffusionLoss(), progress=False, device="cpu", seed=3)
        return ddpm.out[1].weight.detach().clone()

    assert torch.equal(run(0), run(1))


# --------------------------------------------------------------------------- the network's two faces
def test_the_noise_and_the_clean_image_estimates_add_up_to_x_t():
    for predict in ("x0", "eps"):
        ddpm = D.DDPM(image_shape=(1, 3, 3), T=50, hidden=16, blocks=1, predict=predict)
        x_t = torch.randn(5, 1, 3, 3, generator=gen(30))
        t = torch.tensor([1, 2, 10, 30, 50])
        ab = ddpm.schedule.alpha_bars[t].float().view(-1, 1, 1, 1)
        with torch.no_grad():
            torch.testing.assert_close(ab.sqrt() * ddpm.denoise(x_t, t) + (1 - ab).sqrt() * ddpm(x_t, t), x_t, atol=1e-5, rtol=1e-4)


def test_init_output_bias_starts_the_denoiser_at_the_mean_image():
    x = torch.rand(50, 1, 3, 3, generator=gen(31))
    ddpm = D.DDPM(image_shape=(1, 3, 3), T=20, hidden=8, blocks=1)
    torch.nn.init.zeros_(ddpm.out[1].weight)
    ddpm.init_output_bias(x)
    with torch.no_grad():
        out = ddpm.denoise(torch.randn(4, 1, 3, 3, generator=gen(32)), torch.tensor([1, 5, 10, 20]))
    torch.testing.assert_close(out, D.to_signed(x).mean(0).expand(4, 1, 3, 3))


def test_the_two_weightings_differ_by_the_signal_to_noise_ratio():
    """||eps - eps_hat||^2 = ab / (1 - ab) ||x0 - x0_hat||^2 for the same draw."""
    s = D.NoiseSchedule.linear(100)
    g = gen(32)
    x0, x0_hat, eps = (torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.tensor([1, 20, 70, 100])
    x_t = s.q_sample(x0, t, eps)
    ab = s.alpha_bars[t].view(-1, 1, 1, 1)
    eps_hat = (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()
    snr = s.alpha_bars[t] / (1 - s.alpha_bars[t])
    torch.testing.assert_close(D.eps_prediction_error(eps_hat, eps), snr * vb.reconstruction_error(x0, x0_hat))


# --------------------------------------------------------------------------- the project check of chapter 13
def _score_model_by_dsm(x, sigma, steps):
    """A correct solution: an MLP trained on the DSM target with fresh noise per batch (global RNG, unseeded)."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128), torch.nn.SiLU(), torch.nn.Linear(128, 2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        xb = x[torch.randint(len(x), (256,))]
        x_noisy = xb + sigma * torch.randn_like(xb)
        loss = 0.5 * (net(x_noisy) - (xb - x_noisy) / sigma**2).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.mark.parametrize("seed", [0, 1])
def test_the_score_model_check_accepts_correct_runs_with_any_draws(seed, capsys):
    torch.manual_seed(seed)
    vb.checks.train_score_model(_score_model_by_dsm)
    assert "✓ train_score_model" in capsys.readouterr().out


def test_the_score_model_check_names_a_denoiser_returned_instead_of_a_score():
    def denoiser_instead(x, sigma, steps):
        net = _score_model_by_dsm(x, sigma, steps)
        return lambda x_noisy: x_noisy + sigma**2 * net(x_noisy)  # the denoised point, by Tweedie

    torch.manual_seed(0)
    with pytest.raises(vb.checks.CheckFailed, match="the denoised points, not the score"):
        vb.checks.train_score_model(denoiser_instead)
