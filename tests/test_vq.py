"""Oracle tests of the VQ-VAE (chapter 15): the quantizer, its gradient, its losses, the moving-average codebook,
code usage, the model, the continuous twin and the prior over codes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import vaebook as vb
from vaebook import vq


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_nearest_code_matches_brute_force_over_every_pair():
    z = torch.randn(5, 3, 4, generator=_gen(0))  # (..., D) with two leading dimensions
    book = torch.randn(7, 4, generator=_gen(1))
    got = vq.nearest_code(z, book)
    dist = ((z.unsqueeze(-2) - book) ** 2).sum(-1)  # (5, 3, 7), every pair by subtraction
    want = dist.argmin(-1)
    assert got.shape == (5, 3) and torch.equal(got, want)
    # a codebook entry far from the origin with a large norm is not chosen just for its dot product
    book2 = torch.tensor([[10.0, 0.0], [1.0, 0.0]])
    assert vq.nearest_code(torch.tensor([[2.0, 0.0]]), book2).item() == 1


def test_straight_through_forward_is_the_entry_and_backward_is_the_identity():
    z_e = torch.randn(4, 3, dtype=torch.float64, generator=_gen(2), requires_grad=True)
    z_q = torch.randn(4, 3, dtype=torch.float64, generator=_gen(3), requires_grad=True)
    out = vq.straight_through(z_e, z_q)
    torch.testing.assert_close(out, z_q.detach(), rtol=0, atol=1e-15)  # the value of z_q
    upstream = torch.randn(4, 3, dtype=torch.float64, generator=_gen(4))
    (out * upstream).sum().backward()
    torch.testing.assert_close(z_e.grad, upstream, rtol=0, atol=0)  # the gradient passes unchanged
    assert z_q.grad is None  # and none reaches the entries this way
    # through a nonlinear loss too: the gradient w.r.t. z_e is the loss's gradient at z_q
    z_e.grad = None
    loss = torch.sin(vq.straight_through(z_e, z_q)).sum()
    loss.backward()
    torch.testing.assert_close(z_e.grad, torch.cos(z_q.detach()))


def test_vq_terms_are_the_squared_distance_with_gradients_to_one_side_each():
    z_e = torch.randn(3, 2, 5, dtype=torch.float64, generator=_gen(5), requires_grad=True)
    e = torch.randn(3, 2, 5, dtype=torch.float64, generator=_gen(6), requires_grad=True)
    terms = vq.vq_terms(z_e, e)
    want = ((z_e - e) ** 2).sum((1, 2)).detach()
    torch.testing.assert_close(terms.codebook.detach(), want)
    torch.testing.assert_close(terms.commitment.detach(), want)
    g_e, = torch.autograd.grad(terms.codebook.sum(), e)
    torch.testing.assert_close(g_e, 2 * (e - z_e).detach())
    assert torch.autograd.grad(terms.codebook.sum(), z_e, allow_unused=True)[0] is None
    g_z, = torch.autograd.grad(terms.commitment.sum(), z_e)
    torch.testing.assert_close(g_z, 2 * (z_e - e).detach())
    assert torch.autograd.grad(terms.commitment.sum(), e, allow_unused=True)[0] is None


def test_ema_update_matches_a_hand_computation():
    counts = torch.tensor([2.0, 0.0, 1.0])
    sums = torch.tensor([[2.0, 2.0], [0.0, 0.0], [3.0, -3.0]])
    z = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    idx = torch.tensor([0, 0, 2])
    new_counts, new_sums, book = vq.ema_codebook_update(counts, sums, z, idx, decay=0.5, eps=0.0)
    # N = 0.5 N + 0.5 n with n = (2, 0, 1); m = 0.5 m + 0.5 s with s_0 = (4, 0), s_2 = (0, 5)
    torch.testing.assert_close(new_counts, torch.tensor([2.0, 0.0, 1.0]))
    torch.testing.assert_close(new_sums, torch.tensor([[3.0, 1.0], [0.0, 0.0], [1.5, 1.0]]))
    torch.testing.assert_close(book[[0, 2]], torch.tensor([[1.5, 0.5], [1.5, 1.0]]))
    # with Laplace smoothing an unused entry stays finite (its sums are 0, so it sits at the origin)
    _, _, book = vq.ema_codebook_update(counts, sums, z, idx, decay=0.5, eps=1e-5)
    assert torch.isfinite(book).all() and torch.equal(book[1], torch.zeros(2))
    smoothed = (new_counts + 1e-5) / (3 + 3e-5) * 3
    torch.testing.assert_close(book[0], new_sums[0] / smoothed[0])
    # inputs untouched
    assert torch.equal(counts, torch.tensor([2.0, 0.0, 1.0]))


def test_ema_with_decay_zero_puts_each_used_entry_at_the_mean_of_its_vectors():
    z = torch.randn(50, 3, generator=_gen(7))
    book = torch.randn(4, 3, generator=_gen(8))
    idx = vq.nearest_code(z, book)
    _, _, new = vq.ema_codebook_update(torch.zeros(4), torch.zeros(4, 3), z, idx, decay=0.0, eps=0.0)
    for j in idx.unique():
        torch.testing.assert_close(new[j], z[idx == j].mean(0))


@pytest.mark.parametrize("m", [1, 5, 64])
def test_perplexity_of_uniform_usage_is_the_codebook_size(m):
    usage = vq.code_usage(torch.arange(m).repeat(3), m)
    assert usage.perplexity == pytest.approx(m, rel=1e-12) and usage.dead_share == 0.0


def test_perplexity_matches_the_entropy_of_torch_distributions_and_counts_dead_codes():
    idx = torch.tensor([0, 0, 0, 1, 3, 3])
    usage = vq.code_usage(idx, 6)
    p = torch.tensor([3, 1, 0, 2, 0, 0], dtype=torch.float64) / 6
    entropy = torch.distributions.Categorical(probs=p).entropy().item()
    assert usage.perplexity == pytest.approx(math.exp(entropy), rel=1e-12)
    assert usage.dead_share == pytest.approx(3 / 6)
    assert torch.equal(usage.counts, torch.tensor([3, 1, 0, 2, 0, 0], dtype=torch.float64))
    assert vq.code_usage(torch.zeros(10, dtype=torch.long), 8).perplexity == pytest.approx(1.0)


def test_vqvae_shapes_rate_and_the_gradient_skipping_the_quantizer():
    torch.manual_seed(0)
    model = vq.VQVAE(codebook_size=8, code_dim=4, channels=(4, 8))
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.3), generator=_gen(9))
    out = model(x)
    assert out.x_logits.shape == (3, 1, 28, 28) and out.indices.shape == (3, 7, 7)
    assert model.rate == pytest.approx(49 * math.log(8))
    torch.testing.assert_close(model.decode_codes(out.indices), out.x_logits)  # the forward pass uses the entries
    # the reconstruction term's gradient reaches the encoder (it skips the quantizer), not the codebook
    recon = -vb.bernoulli_log_prob(x, out.x_logits).sum()
    recon.backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.grad is None
    # distortion = -log p(x | z_q) by torch.distributions
    want = -torch.distributions.Bernoulli(logits=out.x_logits.detach()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.distortion(x), want)


def test_vqvae_loss_is_recon_plus_codebook_plus_weighted_commitment():
    torch.manual_seed(1)
    model = vq.VQVAE(codebook_size=8, code_dim=4, channels=(4, 8), commitment=0.3)
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.3), generator=_gen(10))
    out = vq.VQVAELoss()(model, x, x)
    with torch.no_grad():
        z_e = model.encode(x)  # (b, 7, 7, D)
        e = model.quantizer.codebook[vq.nearest_code(z_e, model.quantizer.codebook)]
        d2 = ((z_e - e) ** 2).flatten(1).sum(1)
        recon = -vb.bernoulli_log_prob(x, model.decode_vectors(e))
    torch.testing.assert_close(out.loss, (recon + d2 + 0.3 * d2).mean())
    torch.testing.assert_close(out.metrics["recon"], recon.mean())
    ema_model = vq.VQVAE(codebook_size=8, code_dim=4, channels=(4, 8), commitment=0.3, ema=0.9).eval()
    out = vq.VQVAELoss()(ema_model, x, x)  # with moving averages the codebook term is left out
    with torch.no_grad():
        r = ema_model(x)
        recon = -vb.bernoulli_log_prob(x, r.x_logits)
    torch.testing.assert_close(out.loss, (recon + 0.3 * r.terms.commitment).mean())


def test_training_falls_and_restarts_revive_dead_codes():
    x = (torch.rand(256, 1, 28, 28, generator=_gen(11)) < 0.2).float()
    usages = {}
    for restart in (0, 5):
        vb.seed_everything(0)
        model = vq.VQVAE(codebook_size=32, code_dim=4, channels=(4, 8), restart_every=restart)
        h = vb.fit(model, x, steps=40, batch_size=32, loss=vq.VQVAELoss(), progress=False, device="cpu")
        assert h.train["recon"][-1] < h.train["recon"][0]
        usages[restart] = vq.code_usage(model.codes(x), 32)
        assert (model.quantizer.restarted > 0) == (restart > 0)
    assert usages[5].dead_share < usages[0].dead_share and usages[5].perplexity > usages[0].perplexity


def test_ema_quantizer_moves_entries_towards_their_vectors_in_training_only():
    torch.manual_seed(2)
    q = vq.VectorQuantizer(4, 2, ema=0.5)
    z = torch.randn(20, 2, generator=_gen(12))
    before = q.codebook.clone()
    q.eval()
    q(z)
    assert torch.equal(q.codebook, before)
    q.train()
    idx = vq.nearest_code(z, before)
    _, _, want = vq.ema_codebook_update(torch.zeros(4), torch.zeros(4, 2), z, idx, 0.5)
    q(z)
    torch.testing.assert_close(q.codebook, want)


def test_grid_gaussian_vae_rate_is_the_closed_form_kl_and_distortion_the_bernoulli_nll():
    torch.manual_seed(3)
    model = vq.GridGaussianVAE(code_dim=2, channels=(4, 8))
    x = torch.bernoulli(torch.full((2, 1, 28, 28), 0.3), generator=_gen(13))
    eps = torch.randn(2, 7, 7, 2, generator=_gen(14))
    with torch.no_grad():
        rd = model.rate_distortion(x, eps=eps)
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
        z = mu + (0.5 * logvar).exp() * eps.permute(0, 3, 1, 2)
        nll = -torch.distributions.Bernoulli(logits=model.decoder(z)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(rd.rate, kl)
    torch.testing.assert_close(rd.distortion, nll)
    loss = vq.GridVAELoss(target_rate=5.0)
    torch.manual_seed(0)
    out = loss(model, x, x)
    torch.manual_seed(0)
    rd2 = model.rate_distortion(x)
    torch.testing.assert_close(out.loss, rd2.distortion.mean() + (rd2.rate.mean() - 5.0).abs())


def test_code_prior_fits_counts_and_samples_their_frequencies():
    codes = torch.tensor([[[0, 1]], [[0, 2]], [[1, 2]], [[0, 2]]])  # (4, 1, 2), M = 3
    prior = vq.CodePrior.fit(codes, 3, alpha=1.0)
    torch.testing.assert_close(prior.probs[0, 0], torch.tensor([4.0, 2.0, 1.0]) / 7)
    torch.testing.assert_close(prior.probs[0, 1], torch.tensor([1.0, 2.0, 4.0]) / 7)
    lp = prior.log_prob(torch.tensor([[[0, 2]]]))
    torch.testing.assert_close(lp, torch.tensor([math.log(4 / 7) + math.log(4 / 7)]))
    uniform = vq.CodePrior.uniform((7, 7), 16)
    torch.testing.assert_close(uniform.log_prob(torch.zeros(2, 7, 7, dtype=torch.long)), torch.full((2,), -49 * math.log(16)))
    draws = prior.sample(20_000, _gen(15))  # frequencies within 4 standard errors of the probabilities
    freq = F.one_hot(draws, 3).double().mean(0)[0]  # (2, 3)
    assert (freq - prior.probs[0].double()).abs().max() < 4 * math.sqrt(0.25 / 20_000)


BAD = [
    (lambda: vq.nearest_code(torch.zeros(3, 4), torch.zeros(5, 2)), ValueError, "z_e: expected vectors of shape (..., 2)"),
    (lambda: vq.nearest_code(torch.zeros(3, 2), torch.zeros(5)), ValueError, "codebook: expected a tensor with 2 dimensions"),
    (lambda: vq.straight_through(torch.zeros(3, 2), torch.zeros(3, 3)), ValueError, "z_q: expected the shape of z_e"),
    (lambda: vq.vq_terms(torch.zeros(3), torch.zeros(3)), ValueError, "with a batch dimension"),
    (lambda: vq.code_usage(torch.tensor([0, 4]), 4), ValueError, "indices: expected values from 0 to 3, got values from 0 to 4"),
    (lambda: vq.code_usage(torch.tensor([0.5]), 4), ValueError, "indices: expected a non-empty tensor of integer indices"),
    (lambda: vq.code_usage(torch.tensor([0]), 0), ValueError, "codebook_size: expected an int >= 1, got 0"),
    (lambda: vq.ema_codebook_update(torch.zeros(3), torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), 1.5),
     ValueError, "decay: expected a number <= 1"),
    (lambda: vq.ema_codebook_update(torch.zeros(3), torch.zeros(3, 2), torch.zeros(4, 2), torch.full((4,), 3), 0.5),
     ValueError, "indices: expected values from 0 to 2"),
    (lambda: vq.VQVAE(codebook_size=1), ValueError, "VQVAEConfig.codebook_size: expected an int >= 2, got 1"),
    (lambda: vq.VQVAE(ema=1.0), ValueError, "VQVAEConfig.ema"),
    (lambda: vq.VQVAE(image_shape=(1, 30, 30)), ValueError, "divisible by 4"),
    (lambda: vq.VQVAE()(torch.zeros(2, 1, 14, 14)), ValueError, "x: expected images of shape (b, 1, 28, 28) or (b, 784)"),
    (lambda: vq.VQVAE().decode_codes(torch.full((1, 7, 7), 64)), ValueError, "indices: expected values from 0 to 63"),
    (lambda: vq.VQVAE().decode_codes(torch.zeros(1, 5, 5, dtype=torch.long)), ValueError, "indices: expected integer indices of shape (b, 7, 7)"),
    (lambda: vq.VQVAELoss()(vb.VAE(), torch.zeros(2, 784), torch.zeros(2, 784)), TypeError, "model: expected a vaebook.vq.VQVAE"),
    (lambda: vq.GridVAELoss(target_rate=-1.0), ValueError, "target_rate (nats per image): expected a number >= 0"),
    (lambda: vq.CodePrior.fit(torch.zeros(2, 7, 7), 4), ValueError, "indices: expected integer codes of shape (n, h, w)"),
    (lambda: vq.CodePrior(torch.ones(7, 7, 3)), ValueError, "probs: expected probabilities"),
    (lambda: vq.CodePrior.uniform((7, 7), 4).sample(0), ValueError, "n: expected an int >= 1, got 0"),
]


@pytest.mark.parametrize("call, kind, words", BAD, ids=[w for _, _, w in BAD])
def test_bad_input_is_named(call, kind, words):
    with pytest.raises(kind) as err:
        call()
    assert words in str(err.value), str(err.value)
