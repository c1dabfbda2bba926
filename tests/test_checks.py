"""vaebook.checks: every check passes the right answer and fails common wrong answers helpfully."""

import math
import os

import pytest
import torch

import vaebook as vb
from vaebook import checks


# Right answers, written independently of the library (as a student would).
def kl_right(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


class _BicubicThenConv(torch.nn.Module):
    """Upsample by bicubic interpolation, then learn a residual on the large image."""

    def __init__(self, channels=64, n_layers=4, scale=4):
        super().__init__()
        self.up = torch.nn.Upsample(scale_factor=scale, mode="bicubic", align_corners=False)
        widths = [1] + [channels] * n_layers
        body = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            body += [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.ReLU()]
        self.body = torch.nn.Sequential(*body, torch.nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, y):
        big = self.up(y)
        return big + self.body(big)


def _ppca_posterior(x, W, b, c):
    """The E-step through the k x k matrix M = W^T W + c I, solved rather than inverted."""
    M = W.T @ W + c * torch.eye(W.shape[1], dtype=W.dtype)
    return torch.linalg.solve(M, W.T @ (x - b).T).T, c * torch.linalg.inv(M)


def _dreg_surrogate(model, x, eps):
    """sum_i w~_i^2 log w_i, with log q at the encoder's outputs held fixed and the weights constants."""
    mu, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    z = mu + std * eps  # (k, b, z)
    q = torch.distributions.Normal(mu.detach(), std.detach())
    p_x = torch.distributions.Bernoulli(logits=model.decode(z).flatten(2))
    log_w = p_x.log_prob(x.flatten(1)).sum(-1) + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    w = torch.softmax(log_w, 0).detach()
    return (w * w * log_w).sum(0)


def _diffusion_kl(x0, x_t, mean_p, var_p, ab_t, ab_prev):
    """Through the noise: x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), and the KL of eq-diffusion-kl written per coordinate."""
    alpha = ab_t / ab_prev
    var_q = (1 - ab_prev) / (1 - ab_t) * (1 - alpha)
    eps = (x_t - ab_t**0.5 * x0) / (1 - ab_t) ** 0.5
    mean_q = (x_t - (1 - alpha) / (1 - ab_t) ** 0.5 * eps) / alpha**0.5
    per = 0.5 * (math.log(var_p / var_q) + var_q / var_p + (mean_q - mean_p) ** 2 / var_p - 1)
    return per.flatten(1).sum(1)


def _loss_weights(ab):
    """The first form of omega_t, beta_t^2 / (2 beta~_t alpha_t (1 - ab_t)), and the inverse SNR."""
    alpha = ab[1:] / ab[:-1]  # (T,): steps 1..T
    beta = 1 - alpha
    beta_tilde = (1 - ab[:-1]) / (1 - ab[1:]) * beta  # (T,)
    omega = beta**2 / (2 * beta_tilde * alpha * (1 - ab[1:]))
    return omega[1:], ((1 - ab) / ab)[2:]


def _ppca_m_step(x, m, S):
    """The same M-step by centring: W from the centred second moments (with n S added), then b."""
    n, d = x.shape
    xc, mc = x - x.mean(0), m - m.mean(0)
    W = torch.linalg.solve(mc.T @ mc + n * S, mc.T @ xc).T  # (d, k), S symmetric
    b = x.mean(0) - W @ m.mean(0)
    c = (((x - m @ W.T - b) ** 2).sum() + n * (W @ S * W).sum()) / (n * d)
    return W, b, c.item()


def _score_with_baseline(f, mu, logvar, eps, baseline):
    """Closed-form scores of the Gaussian: d log q / d mu = (z - mu) / var, d / d logvar = ((z - mu)^2 / var - 1) / 2."""
    var = logvar.exp()
    z = mu + var.sqrt() * eps  # (S, d)
    a = (f(z) - baseline).detach().unsqueeze(-1)  # (S, 1)
    return (a * (z - mu) / var).mean(0), (a * 0.5 * ((z - mu) ** 2 / var - 1)).mean(0)


def _vae_loss(model, x):
    mu, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(mu.shape)  # the global generator rather than randn_like: both are valid
    p_x = torch.distributions.Bernoulli(logits=model.decode(z).flatten(1))
    q, prior = torch.distributions.Normal(mu, std), torch.distributions.Normal(0.0, 1.0)
    return (torch.distributions.kl_divergence(q, prior).sum(1) - p_x.log_prob(x.flatten(1)).sum(1)).mean()


def _slerp(z0, z1, n):
    u0, u1 = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.atan2((u0 - u1 * (u0 @ u1)).norm(), u0 @ u1)  # the angle, accurate near 0 as well
    t = torch.linspace(0, 1, n).unsqueeze(1)
    if omega < 1e-7:
        return z0 + t * (z1 - z0)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _mutual_information(mu, logvar, eps):
    z = mu + (0.5 * logvar).exp() * eps  # (N, k)
    q = torch.distributions.Normal(mu.unsqueeze(0), (0.5 * logvar).exp().unsqueeze(0))  # batch (1, N, k)
    pairs = q.log_prob(z.unsqueeze(1)).sum(-1)  # (N, N): log q(z_n | x_m)
    return (pairs.diagonal() - (pairs.logsumexp(1) - math.log(len(mu)))).mean()


def _ddpm_step(x_t, eps_hat, ab_t, ab_prev, z):
    alpha = ab_t / ab_prev
    mean = (x_t - (1 - alpha) / math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(alpha)
    if z is None:
        return mean
    return mean + math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - alpha)) * z


def _score_model(x, sigma, steps):
    """Denoising score matching written the other way round: the target is -noise / sigma, the output scaled by 1 / sigma."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(steps):
        clean = x[torch.randperm(len(x))[:128]]
        noise = torch.randn(clean.shape)
        loss = (net(clean + sigma * noise) + noise).pow(2).sum(1).mean()  # net ~ -noise, so net / sigma ~ the score
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda x_noisy: net(x_noisy) / sigma


RIGHT = {
    "class_means": lambda x, y: torch.stack([x[y == d].mean(0) for d in range(10)]),
    "reconstruction_error": lambda x, x_hat: ((x - x_hat) ** 2).flatten(1).sum(1),
    "pca_reconstruction": lambda x, m, c: (x - m) @ c.T @ c + m,
    "gaussian_noise_pairs": lambda x, s, g: (x + s * torch.randn(x.shape, generator=g), x),
    "salt_and_pepper": lambda x, p, g: vb.salt_and_pepper(x, p, generator=g),
    # the 8 symmetries as {1, transpose} x {1, up-down, left-right, both}, in another order than the library's
    "square_symmetries": lambda x: torch.cat([t for b in (x, x.transpose(2, 3)) for t in (b, b.flip(2), b.flip(3), b.flip(2, 3))]),
    "pixel_shuffle": lambda t, r: t.view(t.shape[0], -1, r, r, t.shape[2], t.shape[3]).permute(0, 1, 4, 2, 5, 3).reshape(t.shape[0], -1, t.shape[2] * r, t.shape[3] * r),
    "psnr": lambda x, y: 10 * torch.log10(1 / ((x - y) ** 2).flatten(1).mean(1)),
    "code_statistics": lambda z: (z.mean(0), z.std(0)),
    "bernoulli_log_likelihood": lambda x, logits: (x * logits - torch.nn.functional.softplus(logits)).sum(-1),
    "naive_log_likelihood": lambda a: torch.logsumexp(a, 0) - math.log(a.shape[0]),
    "elbo": lambda x, logits, mu, lv: (x * logits - torch.nn.functional.softplus(logits)).sum(-1) - kl_right(mu, lv),
    "em_responsibilities": lambda x, w, m, s: torch.softmax(torch.distributions.Normal(m, s).log_prob(x[:, None]) + w.log(), 1),
    "reparameterize": lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps,
    "gaussian_kl": kl_right,
    "importance_log_likelihood": lambda a, b, c: torch.logsumexp(a + b - c, 0) - math.log(a.shape[0]),
    "effective_sample_size": lambda log_w: log_w.logsumexp(0).mul(2).sub((2 * log_w).logsumexp(0)).exp(),
    "dreg_surrogate": _dreg_surrogate,
    "importance_resample": lambda z, log_w, g: z.gather(0, torch.multinomial(log_w.T.softmax(1), 1, generator=g).T.unsqueeze(-1).expand(1, *z.shape[1:]))[0],
    "bicubic_then_conv": lambda channels=64, n_layers=4, scale=4: _BicubicThenConv(channels, n_layers, scale),
    "ppca_posterior": _ppca_posterior,
    "ppca_m_step": _ppca_m_step,
    "score_function_with_baseline": _score_with_baseline,
    "vae_loss": _vae_loss,
    "slerp": _slerp,
    "free_bits_kl": lambda kl, lam: torch.maximum(kl.mean(0), torch.tensor(float(lam))).sum(),
    "mutual_information": _mutual_information,
    "calibrated_gaussian_nll": lambda x, m: -torch.distributions.Normal(m, (x - m).pow(2).mean().sqrt()).log_prob(x).flatten(1).sum(1),
    "diffusion_kl": _diffusion_kl,
    "loss_weights": _loss_weights,
    "ddpm_step": _ddpm_step,
    "train_score_model": _score_model,
    "unlabelled_bound": lambda L, logits: (torch.distributions.Categorical(logits=logits).probs * L).sum(-1) + torch.distributions.Categorical(logits=logits).entropy(),
    "nearest_code": lambda z, e: torch.cdist(z, e).argmin(1),
    "latent_scale": lambda z: z.double().var(unbiased=False).rsqrt(),
    "iwae_loss": lambda model, x, target, k=5: vb.LossOutput(-(vb.log_weights(model, x, k).logsumexp(0) - math.log(k)).mean(), {}),
}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_each_check_passes_a_right_answer(name, capsys, monkeypatch):
    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    assert getattr(checks, name)(RIGHT[name]) is None  # a check returns nothing: no cell result
    out, err = capsys.readouterr()
    assert out.startswith("✓ ") and "correct on all" in out and err == ""
    assert getattr(checks, name)(RIGHT[name], strict=True) is None  # strict passes the right answer too


def _stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_each_check_reports_a_stub_on_stderr_and_raises_only_when_strict(name, capsys, monkeypatch):
    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    assert getattr(checks, name)(_stub) is None
    out, err = capsys.readouterr()
    assert out == "" and "not yet implemented" in err
    with pytest.raises(checks.CheckFailed, match="not yet implemented"):
        getattr(checks, name)(_stub, strict=True)


def test_every_check_is_covered_here():
    public = [n for n in checks.__all__ if n not in ("CheckFailed", "Case", "check")]
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
    _fails(checks.elbo, lambda x, logits, mu, lv: -RIGHT["elbo"](x, logits, mu, lv), "you returned its negative")


def test_bernoulli_from_probabilities_overflows_on_saturated_logits():
    def naive(x, logits):
        p = torch.sigmoid(logits)
        return (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)

    _fails(checks.bernoulli_log_likelihood, naive, "case 2 of 3", "saturated logits")


def test_a_crash_is_reported_with_the_input():
    def crashes(mu, logvar):
        return mu @ logvar  # (5, 3) @ (5, 3): shapes do not fit

    _fails(checks.gaussian_kl, crashes, "your function raised RuntimeError on case 1 of 4", "tensor of shape (5, 3)")


def test_not_yet_implemented_is_a_message_not_a_traceback(monkeypatch, capsys):
    def stub(mu, logvar):
        raise NotImplementedError()

    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    assert checks.gaussian_kl(stub) is None
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "gaussian_kl: not yet implemented. Replace `raise NotImplementedError()` with your code, then run this cell again.\n"
    monkeypatch.setenv("VAEBOOK_STRICT_CHECKS", "1")  # how the book's own notebooks run
    with pytest.raises(checks.CheckFailed, match="not yet implemented"):
        checks.gaussian_kl(stub)
    monkeypatch.setenv("VAEBOOK_STRICT_CHECKS", "0")
    assert checks.gaussian_kl(stub) is None


def test_strict_must_be_a_bool():
    with pytest.raises(TypeError, match=r"strict: expected True or False, got 'yes'"):
        checks.gaussian_kl(kl_right, strict="yes")


def test_extra_runs_only_after_every_case_matched(capsys):
    """reparameterize's gradient test runs after its cases, and the confirmation only after both."""
    _fails(checks.reparameterize, lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(), "no gradient")
    assert "✓" not in capsys.readouterr().out


def test_passing_a_call_instead_of_the_function():
    with pytest.raises(TypeError, match="pass your function itself"):
        checks.gaussian_kl(torch.zeros(3))


# A notebook with a check cell for each outcome, run by a real IPython kernel; nbgrader's own rule
# (nbgrader.utils.determine_grade) then grades each check cell from what the kernel produced.
_KERNEL_CELLS = {
    "setup": "import torch\nimport vaebook as vb",
    "right": "def gaussian_kl(mu, logvar):\n    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)",
    "check_right": "vb.checks.gaussian_kl(gaussian_kl)",
    "stub": "def gaussian_kl(mu, logvar):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
    "check_stub": "vb.checks.gaussian_kl(gaussian_kl)",
    "check_stub_strict": "vb.checks.gaussian_kl(gaussian_kl, strict=True)",
    "half": "def gaussian_kl(mu, logvar):\n    return (mu**2 + logvar.exp() - 1 - logvar).sum(-1)",
    "check_half": "vb.checks.gaussian_kl(gaussian_kl)",
    "after": "print('the notebook went on')",
}


def test_check_cells_in_a_real_kernel_show_no_result_and_nbgrader_grades_them(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade

    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    monkeypatch.setenv("VAEBOOK_PROGRESS", "0")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for key, src in _KERNEL_CELLS.items():
        cell = nbformat.v4.new_code_cell(src)
        if key.startswith("check_"):
            cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                         "grade_id": key, "schema_version": 3, "task": False}
        nb.cells.append(cell)
    # allow_errors: a wrong answer's CheckFailed must not stop the run, as in nbgrader's autograde
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True, resources={"metadata": {"path": os.getcwd()}}).execute()
    cells = dict(zip(_KERNEL_CELLS, nb.cells, strict=True))

    for key, cell in cells.items():
        assert not [o for o in cell.outputs if o.output_type == "execute_result"], f"{key}: a check cell showed a result"

    def streams(cell, name):
        return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)

    def errors(cell):
        return [o for o in cell.outputs if o.output_type == "error"]

    assert streams(cells["check_right"], "stdout").startswith("✓ gaussian_kl: correct on all 4 inputs")
    assert streams(cells["check_right"], "stderr") == "" and not errors(cells["check_right"])
    assert "gaussian_kl: not yet implemented" in streams(cells["check_stub"], "stderr")
    assert not errors(cells["check_stub"]) and streams(cells["check_stub"], "stdout") == ""
    strict = errors(cells["check_stub_strict"])
    assert strict and strict[0].ename == "CheckFailed" and "not yet implemented" in strict[0].evalue
    half = errors(cells["check_half"])
    assert half and half[0].ename == "CheckFailed" and "factor 1/2 is missing" in half[0].evalue
    assert streams(cells["after"], "stdout") == "the notebook went on\n"

    grades = {key: determine_grade(cell)[0] for key, cell in cells.items() if key.startswith("check_")}
    assert grades == {"check_right": 1.0, "check_stub": 0, "check_stub_strict": 0, "check_half": 0}


def _turns(x):
    return [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]


def test_square_symmetries_accepts_any_order_and_names_the_usual_slips():
    def shuffled(x):
        return vb.square_symmetries(x)[torch.randperm(8 * len(x), generator=torch.Generator().manual_seed(1))]

    checks.square_symmetries(shuffled, strict=True)  # the order of the 8 n images is free
    _fails(checks.square_symmetries, lambda x: torch.cat(_turns(x)), "wrong result on case 1 of 3", "the 4 rotations are half of the 8")
    _fails(checks.square_symmetries, lambda x: torch.cat(_turns(x) + [t.flip(1) for t in _turns(x)]), "dimension 1 holds the channels")
    # mirror images without the transposes: 4 distinct symmetries, each twice
    msg = _fails(checks.square_symmetries, lambda x: torch.cat([x, x.flip(2), x.flip(3), x.flip(2, 3)] * 2), "wrong result on case 1 of 3")
    assert "Hint" not in msg


@pytest.mark.parametrize("c_of, hint", [
    (lambda e: e.mean(1, keepdim=True), "one variance for the whole batch"),
    (lambda e: e.sum(1, keepdim=True).mean(), "divide the summed squared error by the number of pixels"),
    (lambda e: e.mean().sqrt(), "not its square root"),
])
def test_calibrated_nll_with_the_wrong_variance_fails_with_its_hint(c_of, hint):
    def wrong(x, m):
        e = (x - m).pow(2).flatten(1)
        return -torch.distributions.Normal(m.flatten(1), c_of(e).sqrt()).log_prob(x.flatten(1)).sum(1)

    _fails(checks.calibrated_gaussian_nll, wrong, "wrong result", hint)


# --------------------------------------------------------------------------- the exercises that need thought
def _dreg_like(model, x, eps, *, power=2, hold_q=True, hold_w=True):
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * eps
    q_mu, q_logvar = (mu.detach(), logvar.detach()) if hold_q else (mu, logvar)
    log_w = vb.bernoulli_log_prob(x, model.decode(z)) + vb.standard_normal_log_prob(z) - vb.diag_gaussian_log_prob(z, q_mu, q_logvar)
    w = torch.softmax(log_w.detach() if hold_w else log_w, 0)
    return (w.pow(power) * log_w).sum(0)


@pytest.mark.parametrize("kw, hint", [
    ({"hold_q": False}, "hold q's parameters fixed inside log q"),
    ({"power": 1}, "square the normalised weights"),
    ({"hold_w": False}, "the weights are constants of the surrogate"),
])
def test_dreg_surrogate_names_each_slip(kw, hint):
    _fails(checks.dreg_surrogate, lambda m, x, eps: _dreg_like(m, x, eps, **kw), "wrong result on case 1 of 3", hint)


def test_dreg_surrogate_rejects_the_plain_gradient_and_a_detached_surrogate():
    _fails(checks.dreg_surrogate, lambda m, x, eps: vb.iwae_objective(m, x, eps.shape[0], eps=eps), "that is the plain IWAE gradient")
    _fails(checks.dreg_surrogate, lambda m, x, eps: _dreg_surrogate(m, x, eps).detach(), "no gradient reaches the encoder")
    _fails(checks.dreg_surrogate, lambda m, x, eps: _dreg_surrogate(m, x, eps).sum(), "expected one surrogate value per example, shape (4,)")


def test_ppca_posterior_names_each_slip():
    def with_m(fn):
        def posterior(x, W, b, c):
            return fn(x, W, b, c, W.T @ W + c * torch.eye(W.shape[1], dtype=W.dtype))
        return posterior

    _fails(checks.ppca_posterior, with_m(lambda x, W, b, c, M: (x @ W @ M.inverse(), c * M.inverse())), "subtract b from x")
    _fails(checks.ppca_posterior, with_m(lambda x, W, b, c, M: ((x - b) @ W @ M.inverse(), M.inverse())), "the covariance is c M^-1")
    _fails(checks.ppca_posterior, lambda x, W, b, c: ((x - b) @ W @ (W.T @ W).inverse(), c * (W.T @ W).inverse()), "without the c I")
    _fails(checks.ppca_posterior, with_m(lambda x, W, b, c, M: ((x - b) @ W @ M.inverse(), (c * M.inverse()).diagonal())), "not its diagonal")


def test_the_diffusion_kl_checks_posterior_is_the_librarys():
    from vaebook.checks.denoising_diffusion import _forward_posterior

    s = vb.diffusion.NoiseSchedule.linear(100)
    g = torch.Generator().manual_seed(0)
    x0, x_t = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 50, 100])
    mean, var = s.q_posterior(x0, x_t, t)
    for i in range(3):
        m_i, v_i = _forward_posterior(x0[i:i + 1], x_t[i:i + 1], s.alpha_bars[t[i]].item(), s.alpha_bars[t[i] - 1].item())
        torch.testing.assert_close(m_i, mean[i:i + 1].to(m_i.dtype))
        assert math.isclose(v_i, var.flatten()[i].item() if var.numel() == 3 else var[i].flatten()[0].item(), rel_tol=1e-9)


def test_diffusion_kl_names_each_slip():
    def kl(mean_q, var_q, mean_p, var_p):
        return 0.5 * (math.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1).flatten(1).sum(1)

    def posterior(x0, x_t, ab_t, ab_prev):
        a = ab_t / ab_prev
        return ab_prev**0.5 * (1 - a) / (1 - ab_t) * x0 + a**0.5 * (1 - ab_prev) / (1 - ab_t) * x_t, (1 - ab_prev) / (1 - ab_t) * (1 - a)

    def beta_var(x0, x_t, m_p, v_p, ab_t, ab_prev):
        return kl(posterior(x0, x_t, ab_t, ab_prev)[0], 1 - ab_t / ab_prev, m_p, v_p)

    def reversed_kl(x0, x_t, m_p, v_p, ab_t, ab_prev):
        m_q, v_q = posterior(x0, x_t, ab_t, ab_prev)
        return kl(m_p, v_p, m_q, v_q)

    def means_only(x0, x_t, m_p, v_p, ab_t, ab_prev):
        return (posterior(x0, x_t, ab_t, ab_prev)[0] - m_p).pow(2).flatten(1).sum(1) / (2 * v_p)

    _fails(checks.diffusion_kl, beta_var, "case 1 of 4", "the forward posterior's variance is beta~_t")
    _fails(checks.diffusion_kl, reversed_kl, "case 2 of 4", "the forward posterior comes first")
    _fails(checks.diffusion_kl, means_only, "case 2 of 4", "only when the variances are equal")
    _fails(checks.diffusion_kl, lambda x0, x_t, m_p, v_p, ab_t, ab_prev: reversed_kl(x_t, x0, m_p, v_p, ab_t, ab_prev) * 0 + kl(
        posterior(x_t, x0, ab_t, ab_prev)[0], posterior(x0, x_t, ab_t, ab_prev)[1], m_p, v_p), "they are swapped")


def test_loss_weights_names_each_slip():
    def with_(omega_of, w_of):
        def weights(ab):
            alpha = ab[1:] / ab[:-1]
            return omega_of(ab, alpha)[1:], w_of(ab)[2:]
        return weights

    inv_snr = lambda ab: (1 - ab) / ab  # noqa: E731
    _fails(checks.loss_weights, with_(lambda ab, a: (1 - a) / (2 * a * (1 - ab[1:])), inv_snr), "1 - alpha_bar_{t-1}")
    _fails(checks.loss_weights, with_(lambda ab, a: (1 - a) / (a * (1 - ab[:-1])), inv_snr), "a factor 1/2 is missing")
    _fails(checks.loss_weights, with_(lambda ab, a: (1 - a) / (2 * a * (1 - ab[:-1])), lambda ab: ab / (1 - ab)), "the inverse of the signal-to-noise")


def test_slerp_run_backwards_gets_its_hint():
    _fails(checks.slerp, lambda z0, z1, n: _slerp(z0, z1, n).flip(0), "start at z0 and end at z1")


def test_nearest_code_without_the_entries_lengths_gets_its_hint():
    _fails(checks.nearest_code, lambda z, e: (z.pow(2).sum(1, keepdim=True) - 2 * z @ e.T).argmin(1), "||e||^2")
    _fails(checks.nearest_code, lambda z, e: torch.cdist(z, e).argmax(1), "argmin, not argmax")


def test_latent_scale_slips_get_their_hints():
    _fails(checks.latent_scale, lambda z: z.std(unbiased=False), "1/sigma_hat")
    _fails(checks.latent_scale, lambda z: z.pow(2).mean().rsqrt(), "subtract it before squaring")
    _fails(checks.latent_scale, lambda z: 1 / z.std(), "divides by n_z")
    _fails(checks.latent_scale, lambda z: 1 / z.std(dim=(0, 2, 3), unbiased=False), "not one per channel")
