r"""A hand-derived training step for the MLP VAE: the ELBO's gradients without autograd's graph.

On a CPU a small model's step is mostly not arithmetic: autograd records a node for every
operation, then walks them back one by one, and each tensor operation costs a few microseconds of
dispatch whatever its size. For the one model the course trains most, a :class:`~vaebook.VAE` with
MLP encoder and decoder, a Bernoulli decoder and the standard normal prior, under the default
:class:`~vaebook.ELBOLoss`, the backward pass is short enough to write out. :func:`vaebook.fit` uses
it there (``fit(fused=False)`` turns it off) and autograd everywhere else.

With :math:`a_k = h_{k-1} W_k^\top + b_k` and :math:`h_k = \mathrm{act}(a_k)` for each layer, the
loss of a batch of :math:`b` images is :math:`L = -\frac1b \sum_i \big(\log p(x_i\mid z_i) - \beta\,\mathrm{KL}_i\big)`, where
:math:`\ell` are the decoder's logits. Its gradients, from the output back:

.. math::

    \frac{\partial L}{\partial \ell} = \frac1b\big(\sigma(\ell) - x\big)

    \frac{\partial L}{\partial W_k} = g_k^\top h_{k-1}, \qquad
    \frac{\partial L}{\partial b_k} = \textstyle\sum_i g_{k,i}

    \frac{\partial L}{\partial h_{k-1}} = g_k W_k

where :math:`g_k = \partial L / \partial a_k`; then through the code
:math:`z = \mu + \sigma \odot \epsilon` and the closed-form KL term,

.. math::

    \frac{\partial L}{\partial \mu} = \frac{\partial L}{\partial z} + \frac{\beta}{b}\,\mu

    \frac{\partial L}{\partial \log\sigma^2} = \frac12\,\frac{\partial L}{\partial z} \odot \epsilon \odot \sigma
        + \frac{\beta}{2b}\big(\sigma^2 - 1\big)

:class:`AdamStep` is the other half of a step: ``torch.optim.Adam(fused=True)``'s own kernel,
called without the Python bookkeeping around it, which for a model this small is about 40% of the
optimizer's time. Its update is the same, bit for bit.

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

from . import stats
from .losses import ELBOLoss, LossOutput
from .models import VAE
from .objectives import elbo

__all__ = ["FusedELBOStep", "fused_elbo_step", "AdamStep"]

# activation module -> (forward, backward from the gradient at its output and its input and output);
# the backward functions are the kernels autograd itself runs for these activations
_ACTIVATIONS: dict[type, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor, Tensor], Tensor]]] = {
    nn.ReLU: (torch.relu, lambda g, a, h: torch.ops.aten.threshold_backward(g, h, 0)),
    nn.ELU: (F.elu, lambda g, a, h: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, True, h)),
    nn.Tanh: (torch.tanh, lambda g, a, h: torch.ops.aten.tanh_backward(g, h)),
    nn.SiLU: (F.silu, lambda g, a, h: torch.ops.aten.silu_backward(g, a)),
    nn.Softplus: (F.softplus, lambda g, a, h: torch.ops.aten.softplus_backward(g, a, 1.0, 20.0)),
    nn.Identity: (lambda a: a, lambda g, a, h: g),
}


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


def _hooked(model: nn.Module) -> bool:
    """Whether anything is attached that autograd or a module call would run and this step would not."""
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return True
    return any(p._backward_hooks for p in model.parameters())


class FusedELBOStep:
    """``step(x) -> LossOutput``: the loss and metrics of :class:`~vaebook.ELBOLoss` on the batch ``x``,
    with every parameter's ``.grad`` set to its gradient, in one pass without autograd.

    Build it with :func:`fused_elbo_step`, which says whether a model and loss qualify. ``beta`` is
    read from the loss at every call, so :class:`~vaebook.KLWarmup` works as it does with autograd.
    """

    def __init__(self, model: VAE, loss: ELBOLoss, encoder: list, decoder: list):
        self.model, self.loss = model, loss
        self.encoder, self.decoder = encoder, decoder
        self.z_dim = model.config.z_dim

    @torch.no_grad()
    def __call__(self, x: Tensor) -> LossOutput:
        b, zd, beta = x.shape[0], self.z_dim, float(self.loss.beta)
        x = x.reshape(b, -1)  # (b, D)
        acts_e, e = _forward(self.encoder, x)  # e: (b, 2 z_dim)
        mu, logvar = e[:, :zd], e[:, zd:]
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)  # the draw stats.reparameterize makes
        z = stats.reparameterize(mu, logvar, eps)  # (b, z_dim)
        acts_d, logits = _forward(self.decoder, z)  # (b, D)
        terms = elbo(x, logits, mu, logvar)  # the library's own terms: log p(x|z) and the closed-form KL
        loss = -(terms.recon - beta * terms.kl).mean()

        std, var_m1 = torch.exp(0.5 * logvar), torch.expm1(logvar)  # sigma, sigma^2 - 1
        g = torch.sigmoid(logits).sub_(x).mul_(1.0 / b)  # dL/dlogits
        g_z = _backward(self.decoder, acts_d, z, g).mm(self.decoder[0][0].weight)  # dL/dz
        g_e = torch.empty_like(e)
        torch.add(g_z, mu, alpha=beta / b, out=g_e[:, :zd])
        g_e[:, zd:] = (g_z * eps * std).mul_(0.5).add_(var_m1, alpha=0.5 * beta / b)
        _backward(self.encoder, acts_e, x, g_e)  # (no gradient for the data)
        return LossOutput(loss, {"elbo": terms.elbo.mean(), "recon": terms.recon.mean(), "kl": terms.kl.mean()})


def _forward(layers: list, h: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """Run ``layers`` on ``h``; keep each layer's (pre-activation, output) for the backward pass."""
    saved = []
    for lin, act in layers:
        a = torch.addmm(lin.bias, h, lin.weight.t())
        h = _ACTIVATIONS[type(act)][0](a) if act is not None else a
        saved.append((a, h))
    return saved, h


def _backward(layers: list, saved: list, h_in: Tensor, g: Tensor) -> Tensor:
    """Set the ``.grad`` of every layer's weight and bias from ``g``, the loss's gradient at the last
    layer's output; return the gradient at the first layer's pre-activation (``h_in`` is its input)."""
    for k in range(len(layers) - 1, -1, -1):
        lin, act = layers[k]
        a, h = saved[k]
        if act is not None:
            g = _ACTIVATIONS[type(act)][1](g, a, h)
        below = saved[k - 1][1] if k > 0 else h_in
        lin.weight.grad = g.t().mm(below)  # (out, in)
        lin.bias.grad = g.sum(0)
        if k > 0:
            g = g.mm(lin.weight)
    return g


def fused_elbo_step(model: nn.Module, loss) -> FusedELBOStep | None:
    """The fused step for ``model`` under ``loss``, or ``None`` where it does not apply.

    It applies to a :class:`~vaebook.VAE` (the class itself, not a subclass) with ``arch="mlp"``, the
    Bernoulli decoder and the standard normal prior, every parameter trainable, float32 or float64
    on the CPU, and no hooks; under an :class:`~vaebook.ELBOLoss` (the class itself) without free
    bits. Everything else trains with autograd, as before.
    """
    if type(model) is not VAE or type(loss) is not ELBOLoss or loss.free_bits != 0:
        return None
    cfg = model.config
    if cfg.arch != "mlp" or cfg.likelihood != "bernoulli" or cfg.prior != "standard":
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
    if covered != {id(p) for p in params}:  # a parameter the step would not reach (none today)
        return None
    return FusedELBOStep(model, loss, encoder, decoder)


class AdamStep:
    """``AdamStep(opt)()`` does what ``opt.step()`` does, bit for bit; for a ``torch.optim.Adam`` with
    ``fused=True`` and one parameter group, once its state exists, it calls the fused kernel itself.

    ``Optimizer.step`` spends about 0.2 ms a call on bookkeeping (hooks, grouping the tensors by
    device, profiling labels) around a kernel that takes about 0.3 ms for the 784-400-20 VAE on a
    2-core CPU. Anything the direct call does not cover (another optimizer, AMSGrad, a tensor
    learning rate, step hooks, a missing gradient) goes through ``opt.step()``.
    """

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt
        group = opt.param_groups[0]
        self.direct = (
            type(opt) is torch.optim.Adam and len(opt.param_groups) == 1 and hasattr(torch, "_fused_adam_")
            and bool(group.get("fused")) and not any(group.get(k) for k in ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay"))
        )
        self.params = list(group["params"])

    def _can_call_kernel(self) -> bool:
        opt, group = self.opt, self.opt.param_groups[0]
        return (
            self.direct and len(opt.state) == len(self.params)
            and len(group["params"]) == len(self.params) and all(a is b for a, b in zip(group["params"], self.params, strict=True))
            and isinstance(group["lr"], float) and all(isinstance(b, float) for b in group["betas"])
            and not (opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks)
            and not (_optimizer._global_optimizer_pre_hooks or _optimizer._global_optimizer_post_hooks)
            and all(p.grad is not None for p in self.params)
        )

    def __call__(self) -> None:
        if not self._can_call_kernel():
            self.opt.step()
            return
        group, state = self.opt.param_groups[0], self.opt.state
        states = [state[p] for p in self.params]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)  # as torch.optim.adam._fused_adam does, then its kernel
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            self.params, [p.grad for p in self.params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [], steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
            eps=group["eps"], maximize=False, grad_scale=None, found_inf=None,
        )
