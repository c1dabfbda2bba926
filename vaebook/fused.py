r"""A hand-derived training step for the MLP VAE: the ELBO's gradients without autograd's graph.

On a CPU a small model's step is mostly not arithmetic: autograd records a node for every
operation, then walks them back one by one, and each tensor operation costs a few microseconds of
dispatch whatever its size. For the one model the course trains most, a :class:`~vaebook.VAE` with
MLP encoder and decoder, a Bernoulli decoder and the standard normal prior, under the default
:class:`~vaebook.ELBOLoss`, the backward pass is short enough to write out. The same holds for the
Gaussian decoder, with a fixed or a learned variance :math:`c` (chapters 9, 11 and 12 train it on grey levels).
:func:`vaebook.fit` uses it there (``fit(fused=False)`` turns it off) and autograd everywhere else.

With :math:`a_k = h_{k-1} W_k^\top + b_k` and :math:`h_k = \mathrm{act}(a_k)` for each layer, the
loss of a batch of :math:`b` images is :math:`L = -\frac1b \sum_i \big(\log p(x_i\mid z_i) - \beta\,\mathrm{KL}_i\big)`, where
:math:`\ell` are the decoder's logits. Its gradients, from the output back:

.. math::

    \frac{\partial L}{\partial \ell} = \frac1b\big(\sigma(\ell) - x\big)

for the Bernoulli decoder, and for the Gaussian one, whose mean is :math:`m = \sigma(\ell)` and whose
log-likelihood is :math:`-\lVert x - m\rVert^2/(2c)` plus a constant,

.. math::

    \frac{\partial L}{\partial \ell} = \frac{1}{bc}\,(m - x) \odot m \odot (1 - m)

and, where :math:`c` is learned (as :math:`\log c`, for :math:`d` pixels),
:math:`\partial L / \partial \log c = \frac d2 - \frac{1}{2bc}\sum_i \lVert x_i - m_i\rVert^2`.

Then, for every layer,

.. math::

    \frac{\partial L}{\partial W_k} = g_k^\top h_{k-1}, \qquad
    \frac{\partial L}{\partial b_k} = \textstyle\sum_i g_{k,i}

    \frac{\partial L}{\partial h_{k-1}} = g_k W_k

where :math:`g_k = \partial L / \partial a_k`; then through the code
:math:`z = \mu + \sigma \odot \epsilon` and the closed-form KL term,

.. math::

    \frac{\partial L}{\partial \mu} = \frac{\partial L}{\partial z} + \frac{\beta}{b}\,\mu

    \frac{\partial L}{\partial \log\sigma^2} = \frac12\,\frac{\partial L}{\partial z} \odot \epsilon \odot \sigma
        + \frac{\beta}{2b}\big(\sigma^2 - 1\big)

With free bits (:func:`~vaebook.free_bits_kl`) the two KL parts are multiplied, coordinate by
coordinate, by 1 where the batch-average KL of that coordinate is at least the floor :math:`\lambda`,
and by 0 below it.

:class:`AdamStep` is the other half of a step: ``torch.optim.Adam(fused=True)``'s own kernel,
called without the Python bookkeeping around it, which for a model this small is about 40% of the
optimizer's time. Its update is the same, bit for bit.

Both halves can use names that PyTorch does not promise from one release to the next: the fused
Adam kernel, the hook registries of modules and optimizers, and the one-pass backward kernels of the
activations (``torch.ops.aten.*_backward``). Each is checked once, where the step is built, against
the public path; where one is missing or behaves otherwise, the step falls back to public code (the
activations' formulas below, ``opt.step()``, or autograd where hooks cannot be seen), with the same
parameters as a result (``tests/test_fused.py`` removes each name and compares).

The fused step draws the same noise from the same generator as the autograd path, so a seeded run sees the
same codes, and it computes the loss with the library's own :func:`~vaebook.stats.reparameterize` and
:func:`~vaebook.elbo`; only the backward pass is written out. Its gradients agree with autograd's to rounding (``tests/test_fused.py`` checks them
against autograd and against finite differences). ``benchmarks/train_speed.py`` measures the gain.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import optimizer as _optimizer

from . import likelihoods, stats
from .diagnostics import kl_per_dimension
from .losses import ELBOLoss, LossOutput, free_bits_kl
from .models import VAE
from .objectives import ELBO, elbo

__all__ = ["FusedELBOStep", "fused_elbo_step", "AdamStep"]

# Activation module -> (forward, backward from the gradient at its output and its input ``a`` and
# output ``h``), in public operations only. The ``torch.ops.aten.*_backward`` kernels that autograd
# itself runs do the same in one pass each; PyTorch does not promise their names or signatures, so
# :func:`_activation_backward` uses one only after checking it once against these formulas.
_ACTIVATIONS: dict[type, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor, Tensor], Tensor]]] = {
    nn.ReLU: (torch.relu, lambda g, a, h: g * (h > 0)),
    nn.ELU: (F.elu, lambda g, a, h: torch.where(h > 0, g, g * (h + 1.0))),
    nn.Tanh: (torch.tanh, lambda g, a, h: g * (1.0 - h * h)),
    nn.SiLU: (F.silu, lambda g, a, h: g * torch.sigmoid(a) * (1.0 + a * (1.0 - torch.sigmoid(a)))),
    nn.Softplus: (F.softplus, lambda g, a, h: torch.where(a > 20.0, g, g * torch.sigmoid(a))),
    nn.Identity: (lambda a: a, lambda g, a, h: g),
}
# activation module -> (name of its aten backward kernel, the kernel's arguments from g, a and h)
_ATEN_BACKWARD: dict[type, tuple[str, Callable[[Tensor, Tensor, Tensor], tuple]]] = {
    nn.ReLU: ("threshold_backward", lambda g, a, h: (g, h, 0)),
    nn.ELU: ("elu_backward", lambda g, a, h: (g, 1.0, 1.0, 1.0, True, h)),
    nn.Tanh: ("tanh_backward", lambda g, a, h: (g, h)),
    nn.SiLU: ("silu_backward", lambda g, a, h: (g, a)),
    nn.Softplus: ("softplus_backward", lambda g, a, h: (g, a, 1.0, 20.0)),
}


def _aten_kernel(kind: type) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    name, arguments = _ATEN_BACKWARD[kind]
    op = getattr(torch.ops.aten, name)
    return lambda g, a, h: op(*arguments(g, a, h))


def _probe(kind: type, backward: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Whether ``backward`` gives autograd's gradient through activation ``kind`` on a small float64 probe."""
    a = torch.linspace(-25.0, 25.0, 41, dtype=torch.float64).requires_grad_()
    h = _ACTIVATIONS[kind][0](a)
    g = torch.linspace(-1.0, 1.0, 41, dtype=torch.float64)
    (want,) = torch.autograd.grad(h, a, g)
    with torch.no_grad():
        got = backward(g, a.detach(), h.detach())
    return isinstance(got, Tensor) and got.shape == want.shape and torch.allclose(got, want, rtol=1e-12, atol=1e-15)


# Which backward each activation uses, decided once per process on first use: the answer depends only
# on the installed PyTorch, so it is kept for the life of the interpreter (tests clear it with
# ``_BACKWARD.clear()`` after changing torch's attributes).
_BACKWARD: dict[type, Callable[[Tensor, Tensor, Tensor], Tensor]] = {}


def _activation_backward(kind: type) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The backward of activation ``kind``: the aten kernel where it exists and passes :func:`_probe`,
    else the public formula of ``_ACTIVATIONS``."""
    if kind not in _BACKWARD:
        chosen = _ACTIVATIONS[kind][1]
        if kind in _ATEN_BACKWARD:
            try:
                kernel = _aten_kernel(kind)
                if _probe(kind, kernel):
                    chosen = kernel
            except (AttributeError, RuntimeError, TypeError):  # renamed, removed or re-signed in this PyTorch
                pass
        _BACKWARD[kind] = chosen
    return _BACKWARD[kind]


def _layers(net: nn.Module) -> list[tuple[nn.Linear, nn.Module | None]] | None:
    """``[(linear, activation after it or None), ...]`` for an ``nn.Sequential`` of linear layers and
    plain activations (an optional leading ``nn.Flatten``); ``None`` for anything else."""
    if type(net) is not nn.Sequential:
        return None
    mods = list(net)
    if mods and type(mods[0]) is nn.Flatten:
        mods = mods[1:]
        if len(mods) == 1 and type(mods[0]) is nn.Sequential:
            mods = list(mods[0])
    out: list[tuple[nn.Linear, nn.Module | None]] = []
    for m in mods:
        if type(m) is nn.Linear and m.bias is not None:
            out.append((m, None))
        elif type(m) in _ACTIVATIONS and out and out[-1][1] is None:
            if type(m) is nn.ELU and m.alpha != 1.0 or type(m) is nn.Softplus and (m.beta != 1.0 or m.threshold != 20.0):
                return None
            out[-1] = (out[-1][0], m)
        else:
            return None
    return out or None


# Module and parameter attributes that hold hooks, and the module-wide (global) hook registries.
# None of these names is public: where one is missing, the step assumes that something is attached.
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_MODULE_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                        "_global_backward_pre_hooks")
_UNKNOWN = object()


def _hooked(model: nn.Module) -> bool:
    """Whether anything is attached that autograd or a module call would run and this step would not
    (or whether this PyTorch keeps its hooks where this function cannot see them)."""
    registries = [getattr(nn.modules.module, name, _UNKNOWN) for name in _GLOBAL_MODULE_HOOKS]
    registries += [getattr(m, name, _UNKNOWN) for m in model.modules() for name in _MODULE_HOOKS]
    registries += [getattr(p, "_backward_hooks", _UNKNOWN) for p in model.parameters()]
    return any(r is _UNKNOWN or bool(r) for r in registries)


class FusedELBOStep:
    """``step(x) -> LossOutput``: the loss and metrics of :class:`~vaebook.ELBOLoss` on the batch ``x``,
    with every parameter's ``.grad`` set to its gradient, in one pass without autograd.

    Build it with :func:`fused_elbo_step`, which says whether a model and loss qualify. ``step(x, objective)``
    takes the loss as it stands at this point of training, ``objective`` (``ELBOLoss.at_progress``, whose KL weight
    may be warming up); ``beta`` and ``free_bits`` are read from it at every call.
    """

    def __init__(self, model: VAE, loss: ELBOLoss, encoder: list, decoder: list):
        self.model, self.loss = model, loss
        self.encoder, self.decoder = encoder, decoder
        self.z_dim = model.config.z_dim
        self.gaussian = isinstance(model.likelihood, likelihoods.Gaussian)  # else Bernoulli (fused_elbo_step admits no other)
        # each layer's activation backward, chosen once here (see _activation_backward)
        self.backward = {type(act): _activation_backward(type(act)) for _, act in encoder + decoder if act is not None}

    @torch.no_grad()
    def __call__(self, x: Tensor, objective: ELBOLoss | None = None) -> LossOutput:
        objective = self.loss if objective is None else objective  # the loss as it stands at this step
        b, zd, beta = x.shape[0], self.z_dim, float(objective.beta)
        x = x.reshape(b, -1)  # (b, D)
        acts_e, e = _forward(self.encoder, x)  # e: (b, 2 z_dim)
        mu, logvar = e[:, :zd], e[:, zd:]
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)  # the draw stats.reparameterize makes
        z = stats.reparameterize(mu, logvar, eps)  # (b, z_dim)
        acts_d, logits = _forward(self.decoder, z)  # (b, D)
        c: float | Tensor = 1.0  # the Gaussian's variance (unused by the Bernoulli decoder)
        log_c = self.model.log_c if self.gaussian else None  # a parameter where c is learned, else None
        if not self.gaussian:  # Bernoulli: the decoder's output is the logits
            out = logits
            g = torch.sigmoid(logits).sub_(x).mul_(1.0 / b)  # dL/dlogits
        else:  # Gaussian: the mean is sigmoid(logits), as in VAE.decode; c is read at every call, as beta
            c = log_c.exp() if log_c is not None else float(self.model.c)
            out = torch.sigmoid(logits)
            g = (out - x).mul_(out).mul_(1.0 - out).div_(b * c)  # dL/dlogits
        likelihood = likelihoods.Gaussian(c) if self.gaussian else likelihoods.Bernoulli()
        free_bits = objective.free_bits
        if free_bits == 0:  # the library's own terms: log p(x|z) and the closed-form KL, as ELBOLoss computes them
            terms = elbo(x, out, mu, logvar, likelihood=likelihood)
            loss = -(terms.recon - beta * terms.kl).mean()
            kl_weight: float | Tensor = beta / b  # dL/dKL_ij
        else:  # free bits, as ELBOLoss computes them: each coordinate's batch-average KL, floored
            recon, kl_j = likelihood.log_prob(x, out), kl_per_dimension(mu, logvar)  # (b,), (b, z_dim)
            kl = kl_j.sum(dim=1)
            terms = ELBO(recon - kl, recon, kl)
            loss = -(recon.mean() - beta * free_bits_kl(kl_j, free_bits))
            kl_weight = (kl_j.mean(dim=0) >= free_bits).to(mu.dtype).mul_(beta / b)  # (z_dim,): no gradient below the floor

        if log_c is not None:  # dL/dlog c = d/2 - mean squared error / (2c)
            d = x.shape[1]
            log_c.grad = (0.5 * d - 0.5 * _squared_error(x, out).mean() / c).reshape(log_c.shape)

        std, var_m1 = torch.exp(0.5 * logvar), torch.expm1(logvar)  # sigma, sigma^2 - 1
        g_z = _backward(self.decoder, acts_d, z, g, self.backward).mm(self.decoder[0][0].weight)  # dL/dz
        g_e = torch.empty_like(e)
        if isinstance(kl_weight, float):
            torch.add(g_z, mu, alpha=kl_weight, out=g_e[:, :zd])
            g_e[:, zd:] = (g_z * eps * std).mul_(0.5).add_(var_m1, alpha=0.5 * kl_weight)
        else:
            torch.addcmul(g_z, mu, kl_weight, out=g_e[:, :zd])
            g_e[:, zd:] = (g_z * eps * std).mul_(0.5).addcmul_(var_m1, kl_weight, value=0.5)
        _backward(self.encoder, acts_e, x, g_e, self.backward)  # (no gradient for the data)
        return LossOutput(loss, {"elbo": terms.elbo.mean(), "recon": terms.recon.mean(), "kl": terms.kl.mean()})


def _squared_error(x: Tensor, mean: Tensor) -> Tensor:
    """``||x - mean||^2`` of each row, shape ``(b,)``."""
    return (x - mean).pow(2).sum(dim=1)


def _forward(layers: list, h: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """Run ``layers`` on ``h``; keep each layer's (pre-activation, output) for the backward pass."""
    saved = []
    for lin, act in layers:
        a = torch.addmm(lin.bias, h, lin.weight.t())
        h = _ACTIVATIONS[type(act)][0](a) if act is not None else a
        saved.append((a, h))
    return saved, h


def _backward(layers: list, saved: list, h_in: Tensor, g: Tensor, backward: dict) -> Tensor:
    """Set the ``.grad`` of every layer's weight and bias from ``g``, the loss's gradient at the last
    layer's output; return the gradient at the first layer's pre-activation (``h_in`` is its input).
    ``backward`` maps each activation's type to its backward function."""
    for k in range(len(layers) - 1, -1, -1):
        lin, act = layers[k]
        a, h = saved[k]
        if act is not None:
            g = backward[type(act)](g, a, h)
        below = saved[k - 1][1] if k > 0 else h_in
        lin.weight.grad = g.t().mm(below)  # (out, in)
        lin.bias.grad = g.sum(0)
        if k > 0:
            g = g.mm(lin.weight)
    return g


def fused_elbo_step(model: nn.Module, loss) -> FusedELBOStep | None:
    """The fused step for ``model`` under ``loss``, or ``None`` where it does not apply.

    It applies to a :class:`~vaebook.VAE` (the class itself, not a subclass) with ``arch="mlp"``, the
    Bernoulli decoder or the Gaussian one (with a fixed or a learned ``c``), the standard normal
    prior, every parameter trainable, float32 or float64
    on the CPU, and no hooks; under an :class:`~vaebook.ELBOLoss` (the class itself), with or without
    free bits. Everything else trains with autograd, as before.
    """
    if type(model) is not VAE or type(loss) is not ELBOLoss:
        return None
    cfg = model.config
    if cfg.arch != "mlp" or type(model.likelihood) not in (likelihoods.Bernoulli, likelihoods.Gaussian) or not model.prior_is_standard:
        return None
    params = list(model.parameters())
    if not params or not all(p.requires_grad and p.device.type == "cpu" and p.dtype == params[0].dtype for p in params):
        return None
    if params[0].dtype not in (torch.float32, torch.float64) or _hooked(model):
        return None
    encoder, decoder = _layers(model.encoder), _layers(model.decoder)
    if encoder is None or decoder is None or encoder[-1][1] is not None or decoder[-1][1] is not None:
        return None
    covered = {id(p) for lin, _ in encoder + decoder for p in (lin.weight, lin.bias)}
    if model.log_c is not None:
        covered.add(id(model.log_c))
    if covered != {id(p) for p in params}:  # a parameter the step would not reach (none today)
        return None
    return FusedELBOStep(model, loss, encoder, decoder)


# Private names the direct Adam call relies on. PyTorch promises none of them: AdamStep checks them
# once, when it is built (see _kernel_agrees), and goes through opt.step() wherever one is missing.
_OPT_HOOKS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
_GLOBAL_OPT_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
_ops = torch  # where the private kernels are looked up (the tests swap in a torch without them)


def _fused_adam_kernel(params: list, grads: list, states: list, group: dict) -> None:
    """One fused Adam update, as ``torch.optim.adam._fused_adam`` makes it: the step counts, then the kernel."""
    steps = [s["step"] for s in states]
    _ops._foreach_add_(steps, 1)
    beta1, beta2 = group["betas"]
    _ops._fused_adam_(
        params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
        [], steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
        eps=group["eps"], maximize=False, grad_scale=None, found_inf=None,
    )


def _kernel_agrees(dtype: torch.dtype) -> bool:
    """Whether :func:`_fused_adam_kernel` exists in this PyTorch and repeats ``opt.step()``'s update bit
    for bit: three steps of a fused Adam on a few numbers (weight decay on, learning rate changing),
    one run through ``opt.step()`` and one through the kernel. Any error says no."""
    try:
        w = torch.linspace(-1.0, 1.0, 7, dtype=dtype)
        a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
        opt_a = torch.optim.Adam([a], lr=0.1, weight_decay=0.01, fused=True)
        opt_b = torch.optim.Adam([b], lr=0.1, weight_decay=0.01, fused=True)
        for k in range(3):
            for p, opt in ((a, opt_a), (b, opt_b)):
                p.grad = torch.cos(p.detach() * (k + 1))
                opt.param_groups[0]["lr"] = 0.1 / (k + 1)
            opt_a.step()
            if k == 0:
                opt_b.step()  # makes the state the kernel then updates
            else:
                with torch.no_grad():
                    _fused_adam_kernel([b], [b.grad], [opt_b.state[b]], opt_b.param_groups[0])
        return torch.equal(a, b) and all(torch.equal(opt_a.state[a][k], opt_b.state[b][k]) for k in opt_a.state[a])
    except (AttributeError, RuntimeError, TypeError, ValueError, KeyError):
        return False


class AdamStep:
    """``AdamStep(opt)()`` does what ``opt.step()`` does, bit for bit; for a ``torch.optim.Adam`` with
    ``fused=True`` and one parameter group, once its state exists, it calls the fused kernel itself.

    ``Optimizer.step`` spends about 0.2 ms a call on bookkeeping (hooks, grouping the tensors by
    device, profiling labels) around a kernel that takes about 0.3 ms for the 784-400-20 VAE on a
    2-core CPU. The kernel (``torch._fused_adam_``) and the hook registries it must look at are
    private to PyTorch, so ``AdamStep`` first checks, once, that the direct call reproduces
    ``opt.step()`` on a few numbers in this PyTorch (``direct`` says whether it will be used).
    Anything the direct call does not cover (another optimizer, AMSGrad, a tensor learning rate,
    step hooks, a missing gradient, a PyTorch where the check fails) goes through ``opt.step()``.
    """

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt
        group = opt.param_groups[0]
        self.params = list(group["params"])
        self.direct = (
            type(opt) is torch.optim.Adam and len(opt.param_groups) == 1 and bool(group.get("fused"))
            and not any(group.get(k) for k in ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay"))
            and all(hasattr(opt, name) for name in _OPT_HOOKS)
            and all(hasattr(_optimizer, name) for name in _GLOBAL_OPT_HOOKS)
            and bool(self.params) and _kernel_agrees(self.params[0].dtype)
        )

    def _can_call_kernel(self) -> bool:
        opt, group = self.opt, self.opt.param_groups[0]
        return (
            self.direct and len(opt.state) == len(self.params)
            and len(group["params"]) == len(self.params) and all(a is b for a, b in zip(group["params"], self.params, strict=True))
            and isinstance(group["lr"], float) and all(isinstance(b, float) for b in group["betas"])
            and not any(getattr(opt, name) for name in _OPT_HOOKS)
            and not any(getattr(_optimizer, name) for name in _GLOBAL_OPT_HOOKS)
            and all(p.grad is not None for p in self.params)
        )

    def __call__(self) -> None:
        if not self._can_call_kernel():
            self.opt.step()
            return
        states = [self.opt.state[p] for p in self.params]
        _fused_adam_kernel(self.params, [p.grad for p in self.params], states, self.opt.param_groups[0])
