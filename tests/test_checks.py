"""vaebook.checks: every check passes the right answer and fails common wrong answers helpfully."""

import math

import pytest
import torch

import vaebook as vb
from vaebook import checks


# Right answers, written independently of the library (as a student would).
def kl_right(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


RIGHT = {
    "class_means": lambda x, y: torch.stack([x[y == d].mean(0) for d in range(10)]),
    "reconstruction_error": lambda x, x_hat: ((x - x_hat) ** 2).flatten(1).sum(1),
    "pca_reconstruction": lambda x, m, c: (x - m) @ c.T @ c + m,
    "gaussian_noise_pairs": lambda x, s, g: (x + s * torch.randn(x.shape, generator=g), x),
    "salt_and_pepper": lambda x, p, g: vb.salt_and_pepper(x, p, generator=g),
    "pixel_shuffle": lambda t, r: t.view(t.shape[0], -1, r, r, t.shape[2], t.shape[3]).permute(0, 1, 4, 2, 5, 3).reshape(t.shape[0], -1, t.shape[2] * r, t.shape[3] * r),
    "psnr": lambda x, y: 10 * torch.log10(1 / ((x - y) ** 2).flatten(1).mean(1)),
    "code_statistics": lambda z: (z.mean(0), z.std(0)),
    "bernoulli_log_likelihood": lambda x, l: (x * l - torch.nn.functional.softplus(l)).sum(-1),
    "naive_log_likelihood": lambda a: torch.logsumexp(a, 0) - math.log(a.shape[0]),
    "elbo": lambda x, l, mu, lv: (x * l - torch.nn.functional.softplus(l)).sum(-1) - kl_right(mu, lv),
    "em_responsibilities": lambda x, w, m, s: torch.softmax(torch.distributions.Normal(m, s).log_prob(x[:, None]) + w.log(), 1),
    "reparameterize": lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps,
    "gaussian_kl": kl_right,
    "importance_log_likelihood": lambda a, b, c: torch.logsumexp(a + b - c, 0) - math.log(a.shape[0]),
    "interpolate": lambda a, b, n: torch.stack([a + t * (b - a) for t in torch.linspace(0, 1, n)]),
}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_each_check_passes_a_right_answer(name):
    result = getattr(checks, name)(RIGHT[name])
    assert result and result.passed is True
    assert repr(result).startswith("✓ ")


def test_every_check_is_covered_here():
    public = [n for n in checks.__all__ if n not in ("CheckFailed", "CheckResult", "Case", "check")]
    assert sorted(public) == sorted(RIGHT)


def _fails(check, fn, *fragments):
    with pytest.raises(checks.CheckFailed) as info:
        check(fn)
    message = str(info.value)
    for f in fragments:
        assert f in message, message
    return message


def test_kl_with_the_sign_flipped_fails_with_a_hint():
    msg = _fails(checks.gaussian_kl, lambda mu, lv: -kl_right(mu, lv), "wrong result on case 1 of 4", "sign is flipped", "expected: [", "got:      [")
    assert "tensor of shape (5, 3)" in msg  # names the input's shapes


def test_kl_missing_the_half_fails_with_a_hint():
    _fails(checks.gaussian_kl, lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(-1), "factor 1/2 is missing")


def test_a_hint_is_computed_on_the_case_that_failed():
    """A mistake that shows only on a later input still gets its hint, worked out on that input."""
    cases = [checks.Case((1.0,), "x = 1"), checks.Case((2.0,), "x = 2")]
    hints = [(lambda r, case: r + case.args[0], "you added x.")]
    student = lambda x: x * x + (x if x > 1.5 else 0.0)  # noqa: E731  right at x = 1, wrong at x = 2
    with pytest.raises(checks.CheckFailed) as info:
        checks.check("square", student, lambda x: x * x, cases, hints=hints)
    assert "case 2 of 2 (x = 2" in str(info.value) and "Hint: you added x." in str(info.value)


def test_kl_summed_over_the_batch_reports_the_shape():
    _fails(checks.gaussian_kl, lambda mu, lv: kl_right(mu, lv).sum(), "expected shape (5,), got ()")


def test_reconstruction_error_averaged_instead_of_summed():
    _fails(checks.reconstruction_error, lambda x, xh: ((x - xh) ** 2).flatten(1).mean(1), "average over pixels")


def test_reparameterize_with_variance_instead_of_std_and_without_gradient():
    _fails(checks.reparameterize, lambda mu, lv, eps: mu + lv.exp() * eps, "sigma = exp(logvar / 2)")
    _fails(checks.reparameterize, lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(), "no gradient reaches mu and logvar")


def test_importance_sampling_mean_of_logs_is_the_elbo():
    _fails(checks.importance_log_likelihood, lambda a, b, c: (a + b - c).mean(0), "not the mean of the log-weights")


def test_elbo_returned_as_loss():
    _fails(checks.elbo, lambda x, l, mu, lv: -RIGHT["elbo"](x, l, mu, lv), "you returned its negative")


def test_bernoulli_from_probabilities_overflows_on_saturated_logits():
    def naive(x, logits):
        p = torch.sigmoid(logits)
        return (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)

    _fails(checks.bernoulli_log_likelihood, naive, "case 2 of 3", "saturated logits")


def test_a_crash_is_reported_with_the_input():
    def crashes(mu, logvar):
        return mu @ logvar  # (5, 3) @ (5, 3): shapes do not fit

    _fails(checks.gaussian_kl, crashes, "your function raised RuntimeError on case 1 of 4", "tensor of shape (5, 3)")


def test_not_yet_implemented_is_a_message_not_a_traceback(monkeypatch):
    def stub(mu, logvar):
        raise NotImplementedError()

    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    result = checks.gaussian_kl(stub)
    assert not result
    assert repr(result).startswith("gaussian_kl: not yet implemented")
    monkeypatch.setenv("VAEBOOK_STRICT_CHECKS", "1")
    with pytest.raises(checks.CheckFailed, match="not yet implemented"):
        checks.gaussian_kl(stub)


def test_passing_a_call_instead_of_the_function():
    with pytest.raises(TypeError, match="pass your function itself"):
        checks.gaussian_kl(torch.zeros(3))
