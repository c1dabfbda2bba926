"""fused.py: the hand-derived ELBO step equals autograd's and finite differences, applies only where
it is exact, and the direct Adam call is opt.step() bit for bit."""

import pytest
import torch

import vaebook as vb
from vaebook.fused import AdamStep, FusedELBOStep, fused_elbo_step

SHAPE = (1, 4, 5)  # 20 pixels: small enough for float64 finite differences


def _vae(activation="elu", hidden=(16, 8), seed=0, **kw):
    torch.manual_seed(seed)
    return vb.VAE(z_dim=3, hidden=hidden, activation=activation, image_shape=SHAPE, **kw).double()


def _batch(n=7, seed=1, likelihood="bernoulli"):
    """Binary pixels for the Bernoulli decoder, grey levels for the Gaussian one."""
    g = torch.Generator().manual_seed(seed)
    grey = torch.rand(n, *SHAPE, dtype=torch.float64, generator=g)
    return grey if likelihood == "gaussian" else torch.bernoulli(grey, generator=g)


# the decoders the step covers: Bernoulli, and Gaussian with fixed variances on both sides of 1
DECODERS = {"bernoulli": {}, "gaussian c=0.1": dict(likelihood="gaussian", c=0.1), "gaussian c=2": dict(likelihood="gaussian", c=2.0),
            "gaussian learned c": dict(likelihood="gaussian", c=0.3, learn_c=True)}


def _run(model, seed, step):
    """``step()`` with the global generator seeded (so both paths draw the same eps), and a copy of every gradient after it."""
    for p in model.parameters():
        p.grad = None
    torch.manual_seed(seed)
    out = step()
    return out, [p.grad.clone() for p in model.parameters()]


def _autograd(model, loss, x, seed):
    """The oracle: the library's ELBOLoss through autograd."""

    def step():
        out = loss(model, x, x)
        out.loss.backward()
        return out

    return _run(model, seed, step)


def _fused(model, loss, x, seed):
    return _run(model, seed, lambda: fused_elbo_step(model, loss)(x))


def _assert_fused_equals_autograd(model, loss, x):
    """The fused step's loss and metrics (to 1e-12) and every gradient (to 1e-10) are autograd's, on the same noise."""
    ref, ref_grads = _autograd(model, loss, x, seed=5)
    out, grads = _fused(model, loss, x, seed=5)
    torch.testing.assert_close(out.loss, ref.loss.detach(), rtol=0, atol=1e-12)
    for k in ("elbo", "recon", "kl"):
        torch.testing.assert_close(out.metrics[k], ref.metrics[k], rtol=0, atol=1e-12)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads, strict=True):
        assert g.shape == r.shape, name
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12, msg=name)
    assert not out.loss.requires_grad and all(not v.requires_grad for v in out.metrics.values())


@pytest.mark.parametrize("activation", ["relu", "elu", "tanh", "silu", "softplus", "linear"])
@pytest.mark.parametrize("hidden", [(16,), (16, 8)])
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
@pytest.mark.parametrize("decoder", DECODERS)
def test_fused_step_equals_autograd(activation, hidden, beta, decoder):
    kw = DECODERS[decoder]
    model, x = _vae(activation, hidden, **kw), _batch(likelihood=kw.get("likelihood", "bernoulli"))
    loss = vb.ELBOLoss(beta=beta)
    _assert_fused_equals_autograd(model, loss, x)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("free_bits", [0.013, 0.02])  # between the coordinates' KL at the initial weights
def test_fused_step_with_free_bits_equals_autograd(decoder, free_bits):
    """The floor is met by some coordinates and not by others (asserted), so both sides of it are tested."""
    kw = DECODERS[decoder]
    model, x = _vae("elu", **kw), _batch(likelihood=kw.get("likelihood", "bernoulli"))
    loss = vb.ELBOLoss(beta=0.8, free_bits=free_bits)
    with torch.no_grad():
        kl_mean = vb.kl_per_dimension(*model.encode(x)).mean(0)  # (z_dim,)
    assert (kl_mean >= free_bits).any() and (kl_mean < free_bits).any(), kl_mean
    _assert_fused_equals_autograd(model, loss, x)


@pytest.mark.parametrize("activation", ["elu", "tanh"])
@pytest.mark.parametrize("decoder", DECODERS)
def test_fused_gradient_matches_finite_differences(activation, decoder):
    """An oracle that shares nothing with the step: central differences of the loss along random directions."""
    kw = DECODERS[decoder]
    model, x = _vae(activation, **kw), _batch(likelihood=kw.get("likelihood", "bernoulli"))
    loss = vb.ELBOLoss(beta=0.6)
    _, grads = _fused(model, loss, x, seed=9)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(3)
    h = 1e-6
    for _ in range(4):
        v = [torch.randn(p.shape, dtype=p.dtype, generator=g) for p in params]
        values = []
        for step in (h, -h):
            with torch.no_grad():
                torch._foreach_add_(params, v, alpha=step)
                torch.manual_seed(9)  # the same noise eps at both points
                values.append(loss(model, x, x).loss.item())
                torch._foreach_add_(params, v, alpha=-step)
        numeric = (values[0] - values[1]) / (2 * h)
        analytic = sum((gr * d).sum().item() for gr, d in zip(grads, v, strict=True))
        assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def test_fused_step_applies_to_the_course_vaes_and_to_nothing_else():
    assert isinstance(fused_elbo_step(vb.VAE(), vb.ELBOLoss()), FusedELBOStep)  # train_vae's model
    assert isinstance(fused_elbo_step(vb.VAE(z_dim=20, hidden=(400,), activation="relu"), vb.ELBOLoss(beta=0.5)), FusedELBOStep)
    assert isinstance(fused_elbo_step(vb.VAE(likelihood="gaussian", c=0.01), vb.ELBOLoss(beta=0.2)), FusedELBOStep)  # chapter 12's
    assert isinstance(fused_elbo_step(vb.VAE(likelihood="gaussian", c=2.0), vb.ELBOLoss(free_bits=0.5)), FusedELBOStep)  # chapter 11's
    assert isinstance(fused_elbo_step(vb.VAE(likelihood="gaussian", learn_c=True), vb.ELBOLoss()), FusedELBOStep)

    class MyVAE(vb.VAE):
        pass

    class MyLoss(vb.ELBOLoss):
        pass

    hooked = vb.VAE(hidden=(8,))
    hooked.decoder.register_forward_hook(lambda m, i, o: None)
    frozen = vb.VAE(hidden=(8,))
    frozen.encoder[1][0].weight.requires_grad_(False)
    tensor_hooked = vb.VAE(hidden=(8,))
    tensor_hooked.decoder[0].bias.register_hook(lambda g: g)
    refused = {
        "conv": (vb.VAE(arch="conv", hidden=(4, 8)), vb.ELBOLoss()),
        "continuous Bernoulli": (vb.VAE(likelihood="continuous_bernoulli"), vb.ELBOLoss()),
        "mixture prior": (vb.VAE(prior="mixture"), vb.ELBOLoss()),
        "IWAE loss": (vb.VAE(), vb.IWAELoss(K=5)),
        "a subclass of ELBOLoss": (vb.VAE(), MyLoss()),
        "a subclass of VAE": (MyVAE(), vb.ELBOLoss()),
        "an autoencoder": (vb.Autoencoder(), vb.ELBOLoss()),
        "a forward hook": (hooked, vb.ELBOLoss()),
        "a frozen weight": (frozen, vb.ELBOLoss()),
        "a gradient hook": (tensor_hooked, vb.ELBOLoss()),
        "bfloat16": (vb.VAE(hidden=(8,)).to(torch.bfloat16), vb.ELBOLoss()),
    }
    for why, (model, loss) in refused.items():
        assert fused_elbo_step(model, loss) is None, why


@pytest.fixture(scope="module")
def digits():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 28, 28, generator=g) * (torch.rand(256, 1, 28, 28, generator=g) < 0.2)
    return vb.ImageData(x, torch.zeros(256, dtype=torch.long), "synthetic")


def _train(digits, fused, model=None, **kw):
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=4, hidden=(32,), **(model or {}))
    binary = vae.likelihood == "bernoulli"
    hist = vb.fit(vae, digits, steps=40, lr=3e-3, batch_size=32, binarize=binary, progress=False, device="cpu", fused=fused, **kw)
    after = torch.randn(3)  # the next global draw: equal iff both runs drew the same noise
    return vae, hist, after


@pytest.mark.parametrize("callbacks", [[], [vb.KLWarmup(0.5)]], ids=["elbo", "kl-warmup"])
@pytest.mark.parametrize("model", [{}, dict(likelihood="gaussian", c=0.1), dict(likelihood="gaussian", learn_c=True)],
                         ids=["bernoulli", "gaussian", "gaussian-learned-c"])
def test_fit_with_the_fused_step_trains_as_autograd_does(digits, callbacks, model):
    a, hist_a, next_a = _train(digits, fused=False, model=model, callbacks=list(callbacks))
    b, hist_b, next_b = _train(digits, fused=True, model=model, callbacks=list(callbacks))
    assert fused_elbo_step(b, vb.ELBOLoss()) is not None  # the second run did take the fused path
    assert torch.equal(next_a, next_b)  # the same eps, step for step
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-5, msg=name)  # float32 rounding over 40 Adam steps
    for k in ("loss", "elbo", "kl"):
        torch.testing.assert_close(torch.tensor(hist_b.train[k]), torch.tensor(hist_a.train[k]), rtol=1e-4, atol=1e-3)
    assert hist_b.train["elbo"][-1] > hist_b.train["elbo"][0] + 5  # and it trains


def test_fit_still_checks_the_first_batch_on_the_fused_path():
    vae = vb.VAE(z_dim=2, hidden=(8,))
    grey_out_of_range = torch.full((16, 1, 28, 28), 1.5)
    with pytest.raises(ValueError, match=r"x \(Bernoulli targets\)"):
        vb.fit(vae, grey_out_of_range, steps=2, batch_size=8, progress=False, device="cpu")


def _adam_pair(**opts):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())
    return a, b, torch.optim.Adam(a.parameters(), **opts), torch.optim.Adam(b.parameters(), **opts)


@pytest.mark.parametrize("opts", [dict(lr=1e-2, fused=True), dict(lr=1e-2, fused=True, weight_decay=0.1),
                                  dict(lr=1e-2), dict(lr=1e-2, fused=True, amsgrad=True)],
                         ids=["fused", "weight-decay", "foreach", "amsgrad"])
def test_adam_step_is_opt_step_bit_for_bit(opts):
    a, b, opt_a, opt_b = _adam_pair(**opts)
    direct = AdamStep(opt_b)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        x = torch.randn(8, 5, generator=g)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad(set_to_none=True)
            model(x).pow(2).sum().backward()
            opt.param_groups[0]["lr"] = 1e-2 / (step + 1)  # fit changes the learning rate every step
        opt_a.step()
        direct()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        for key in opt_a.state[pa]:
            assert torch.equal(opt_a.state[pa][key], opt_b.state[pb][key]), key
    assert direct.direct == (opts.get("fused", False) and not opts.get("amsgrad", False))


def test_adam_step_runs_step_hooks_through_opt_step():
    _, b, _, opt = _adam_pair(lr=1e-2, fused=True)
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(1))
    direct = AdamStep(opt)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        b(torch.ones(2, 5)).sum().backward()
        direct()
    assert len(calls) == 3


# --------------------------------------------------------------------------- private names, checked once
# The direct Adam call and the activations' one-pass backward kernels use names PyTorch does not
# promise. Each is checked where the step is built; where it is missing or behaves otherwise, the
# public path gives the same parameters.
def _adam_run(monkeypatch=None, **patch):
    """Six steps of fit's optimizer through AdamStep; (parameters, whether the kernel was called directly)."""
    _, b, _, opt = _adam_pair(lr=1e-2, fused=True, weight_decay=0.1)
    direct = AdamStep(opt)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        opt.zero_grad(set_to_none=True)
        b(torch.randn(8, 5, generator=g)).pow(2).sum().backward()
        opt.param_groups[0]["lr"] = 1e-2 / (step + 1)
        direct()
    return [p.detach().clone() for p in b.parameters()], direct.direct


def _kernel_that_does_nothing(*args, **kwargs):
    return None


def _kernel_with_another_signature(params, grads, exp_avgs, exp_avg_sqs, steps, lr):
    raise AssertionError("never called: the keyword arguments do not match")


class _TorchWith:
    """torch as vaebook.fused sees it, with some attributes replaced (None: removed). torch.optim's own
    code, which opt.step() runs, keeps the real ones."""

    def __init__(self, **changed):
        self.changed = changed

    def __getattr__(self, name):
        if name not in self.changed:
            return getattr(torch, name)
        if self.changed[name] is None:
            raise AttributeError(f"module 'torch' has no attribute '{name}'")
        return self.changed[name]


@pytest.mark.parametrize("change", ["kernel removed", "kernel does nothing", "kernel re-signed", "foreach removed",
                                    "no global hook registry", "no hook registry on the optimizer"])
def test_adam_step_falls_back_to_opt_step_when_a_private_name_changes(monkeypatch, change):
    from vaebook import fused

    kept, used_kernel = _adam_run()
    assert used_kernel  # this PyTorch has the kernel, and it passed the check
    if change == "kernel removed":
        monkeypatch.setattr(fused, "_ops", _TorchWith(_fused_adam_=None))
    elif change == "kernel does nothing":
        monkeypatch.setattr(fused, "_ops", _TorchWith(_fused_adam_=_kernel_that_does_nothing))
    elif change == "kernel re-signed":
        monkeypatch.setattr(fused, "_ops", _TorchWith(_fused_adam_=_kernel_with_another_signature))
    elif change == "foreach removed":
        monkeypatch.setattr(fused, "_ops", _TorchWith(_foreach_add_=None))
    elif change == "no global hook registry":
        monkeypatch.setattr(fused, "_optimizer", object())
    else:
        monkeypatch.setattr(fused, "_OPT_HOOKS", fused._OPT_HOOKS + ("_hooks_kept_elsewhere",))
    fallback, used_kernel = _adam_run()
    assert not used_kernel
    for a, b in zip(kept, fallback, strict=True):
        assert torch.equal(a, b)


KINDS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU, "tanh": torch.nn.Tanh, "silu": torch.nn.SiLU, "softplus": torch.nn.Softplus}


def _fused_fit(digits, activation):
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=4, hidden=(32,), activation=activation)
    vb.fit(vae, digits, steps=25, lr=3e-3, batch_size=32, binarize=True, progress=False, device="cpu")
    return [p.detach().clone() for p in vae.parameters()]


@pytest.mark.parametrize("activation", ["relu", "elu", "tanh", "silu", "softplus"])
def test_activation_backward_falls_back_to_public_formulas(monkeypatch, digits, activation):
    from vaebook import fused

    kind = KINDS[activation]
    fused._BACKWARD.clear()
    assert fused._activation_backward(kind) is not fused._ACTIVATIONS[kind][1]  # the aten kernel passed its check
    with_kernel = _fused_fit(digits, activation)

    monkeypatch.setitem(fused._ATEN_BACKWARD, kind, ("no_such_backward", fused._ATEN_BACKWARD[kind][1]))  # renamed
    fused._BACKWARD.clear()
    try:
        assert fused._activation_backward(kind) is fused._ACTIVATIONS[kind][1]
        public = _fused_fit(digits, activation)
    finally:
        fused._BACKWARD.clear()
    for a, b in zip(with_kernel, public, strict=True):
        if activation == "relu":  # the course's activation: the same parameters bit for bit
            assert torch.equal(a, b)
        else:  # the formulas round differently from the kernels: 25 Adam steps in float32
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_activation_kernel_that_disagrees_is_not_used(monkeypatch):
    from vaebook import fused

    monkeypatch.setitem(fused._ATEN_BACKWARD, torch.nn.Tanh, ("tanh_backward", lambda g, a, h: (g, a)))  # re-signed: a for h
    fused._BACKWARD.clear()
    try:
        assert fused._activation_backward(torch.nn.Tanh) is fused._ACTIVATIONS[torch.nn.Tanh][1]
    finally:
        fused._BACKWARD.clear()


@pytest.mark.parametrize("activation", ["relu", "elu", "tanh", "silu", "softplus"])
def test_public_activation_formulas_equal_autograd(activation):
    from vaebook import fused

    kind = KINDS[activation]
    assert fused._probe(kind, fused._ACTIVATIONS[kind][1])


def test_fused_step_refuses_global_module_hooks_and_unknown_hook_registries(monkeypatch, digits):
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: calls.append(type(m).__name__))
    try:
        vae = vb.VAE(z_dim=2, hidden=(8,))
        assert fused_elbo_step(vae, vb.ELBOLoss()) is None
        vb.fit(vae, digits, steps=3, batch_size=16, progress=False, device="cpu")
        assert calls.count("Linear") >= 4 * 3  # the hook saw the four layers at every step: autograd's path ran them
    finally:
        handle.remove()
    assert isinstance(fused_elbo_step(vb.VAE(hidden=(8,)), vb.ELBOLoss()), FusedELBOStep)
    monkeypatch.delattr(torch.nn.modules.module, "_global_forward_hooks")
    assert fused_elbo_step(vb.VAE(hidden=(8,)), vb.ELBOLoss()) is None  # where hooks live is unknown: autograd
