"""metrics.py: PSNR's closed form, and the realism score's behaviour on real and broken digits."""

import math

import pytest
import torch

import vaebook as vb


def test_psnr_closed_form():
    ref = torch.zeros(2, 1, 4, 4)
    x = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.5)])
    got = vb.psnr(x, ref)
    torch.testing.assert_close(got, torch.tensor([20.0, 10 * math.log10(4)]))
    # halving the squared error gains 10*log10(2) = 3.01 dB
    torch.testing.assert_close(vb.psnr(x / math.sqrt(2), ref) - got, torch.full((2,), 10 * math.log10(2)))


@pytest.fixture(scope="module")
def real_digits():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vb.OfflineDataWarning)
        return vb.load_mnist("test", root="/nonexistent-vaebook-test-root", download=False)


def test_shipped_classifier_reads_real_digits(real_digits):
    _, probs = vb.classifier_features(real_digits.x[:500])
    acc = (probs.argmax(1) == real_digits.y[:500]).float().mean().item()
    assert acc > 0.97


def test_realism_score_ranks_real_over_blurred_over_noise(real_digits):
    g = torch.Generator().manual_seed(0)
    reference = real_digits.x[:500]
    real = real_digits.x[500:1000]
    blurred = torch.nn.functional.avg_pool2d(real, 5, stride=1, padding=2)  # smeared strokes
    noise = torch.rand(500, 1, 28, 28, generator=g)
    mean_digit = reference.mean(0, keepdim=True).expand(500, 1, 28, 28)  # close in pixels to everything
    s_real, s_blur, s_noise, s_mean = (vb.realism_score(x, reference) for x in (real, blurred, noise, mean_digit))
    assert s_real.precision > 0.6 and s_real.recall > 0.6
    assert s_real.precision > s_blur.precision > s_noise.precision
    assert s_noise.precision < 0.05
    assert s_mean.recall < 0.05  # one image repeated covers almost none of the real digits
    assert s_real.confidence > 0.95
    # why confidence is not the headline: the classifier is just as sure about uniform noise
    assert s_noise.confidence > 0.9


