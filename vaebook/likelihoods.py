r"""The decoder's likelihood :math:`p(x\mid z)` as an object the model holds, in the spirit of ``torch.distributions``.

Each decoder of the book has one class here, and everything that depends on which decoder a
model has asks its object instead of comparing names:

- ``log_prob(x, out)``: :math:`\log p(x\mid z)` summed over the pixels of each example, where
  ``out`` is the decoder's output :math:`d_\theta(z)` (it may carry leading sample dimensions);
- ``mean(out)``: :math:`\mathbb E[x\mid z]`, in [0, 1] for the book's decoders;
- ``sample(out, generator)``: a draw of :math:`x\mid z` (on the CPU's generator, moved: :mod:`vaebook.draws`);
- ``log_prob_all_pairs(x, out)``: :math:`\log p(x_i\mid z_g)` for every example and every decoded
  point, which quadrature (:mod:`vaebook.exact`) needs;
- ``network_output(raw)``: what the decoder network's last layer becomes: logits as they are, or
  a Gaussian mean squashed into [0, 1] by a sigmoid;
- ``binary``: whether the likelihood is a distribution over {0, 1} (then training binarizes the data).

The classes: :class:`Bernoulli` (the lecture's :math:`\sigma(d_\theta(z))`), :class:`Gaussian`
(:math:`\mathcal N(d_\theta(z), cI)`, with a fixed ``c`` or, ``learned=True``, a ``c`` that the model
learns and that carries its gradient), and :class:`ContinuousBernoulli` (a density on grey levels).
A model built from a config names its likelihood (``VAEConfig.likelihood``), and :func:`likelihood`
turns the name into the object; :func:`of` gives any latent model's object, also for a model of
your own whose ``likelihood`` is one of the names.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from . import draws, stats
from .guards import check_choice, check_float_tensor, check_positive, check_range, describe

__all__ = ["Likelihood", "Bernoulli", "Gaussian", "ContinuousBernoulli", "NAMES", "likelihood", "of"]


class Likelihood:
    """The decoder's :math:`p(x\\mid z)`: see the module's docstring for what each method gives."""

    name: ClassVar[str]
    binary: ClassVar[bool] = False  # a distribution over {0, 1}: fit binarizes grey levels for it

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.log_prob: a subclass of Likelihood must define it")

    def mean(self, out: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.mean: a subclass of Likelihood must define it")

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.sample: a subclass of Likelihood must define it")

    def network_output(self, raw: Tensor) -> Tensor:
        """The decoder's output ``out`` from its network's last layer (logits stay logits)."""
        return raw

    def log_prob_all_pairs(self, x: Tensor, out: Tensor) -> Tensor:
        """``log p(x_i | z_g)`` for every decoded point ``g`` (``out``: ``(m, *x.shape[1:])``) and example ``i``: ``(m, b)``.

        Computed point by point in chunks that bound memory (the Bernoulli likelihoods override it
        with one matrix product).
        """
        step = max(1, 2**22 // (x.shape[0] * x[0].numel()))  # bounds the (m', b, d) tensor below
        parts = [self.log_prob(x, o.unsqueeze(1).expand(-1, *x.shape)) for o in out.split(step)]  # (m', b) each
        return torch.cat(parts, dim=0)  # (m, b)

    def __eq__(self, other: object) -> bool:
        # A likelihood equals its name, so that ``model.likelihood == "gaussian"`` keeps working.
        if isinstance(other, str):
            return other == self.name
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __str__(self) -> str:
        return self.name


class Bernoulli(Likelihood):
    r"""Binary pixels: :math:`x_j \sim \mathrm{Bernoulli}(\sigma(\ell_j))`, the decoder's output ``out`` being the logits :math:`\ell`.

    Book: eq-bernoulli-decoder
    """

    name = "bernoulli"
    binary = True

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return stats.bernoulli_log_prob(x, out)

    def mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(_output("out", out))

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        m = self.mean(out)  # torch.bernoulli(m)'s own draw on the CPU, bit for bit: a uniform u per pixel, u < m
        u = draws.rand(m.shape, generator=generator, dtype=m.dtype, device=m.device)
        return torch.lt(u, m, out=u)

    def log_prob_all_pairs(self, x: Tensor, out: Tensor) -> Tensor:
        # The Bernoulli term is linear in x: sum_j x_j l_j - softplus(l_j) (the stable form of
        # stats.bernoulli_log_prob) for all pairs at once, from one matrix product.
        check_range("x (Bernoulli targets)", x, 0.0, 1.0)
        logits = out.flatten(1)  # (m, d)
        return logits @ x.flatten(1).T - F.softplus(logits).sum(1, keepdim=True)  # (m, b)


class ContinuousBernoulli(Bernoulli):
    r"""Grey levels: the continuous Bernoulli density of Loaiza-Ganem & Cunningham (2019), from logits.

    Book: eq-continuous-bernoulli
    """

    name = "continuous_bernoulli"
    binary = False

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return stats.continuous_bernoulli_log_prob(x, out)

    def mean(self, out: Tensor) -> Tensor:
        return torch.distributions.ContinuousBernoulli(logits=_output("out", out)).mean

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = draws.rand(_output("out", out).shape, generator=generator, device=out.device)
        return torch.distributions.ContinuousBernoulli(logits=out).icdf(u)

    def log_prob_all_pairs(self, x: Tensor, out: Tensor) -> Tensor:
        logits = out.flatten(1)  # (m, d)
        zeros = torch.zeros_like(logits)  # + sum_j log C(l_j), which does not depend on x
        log_c = stats.continuous_bernoulli_log_prob(zeros, logits) - stats.bernoulli_log_prob(zeros, logits)  # (m,)
        return super().log_prob_all_pairs(x, out) + log_c.unsqueeze(1)


class Gaussian(Likelihood):
    r""":math:`\mathcal N(d_\theta(z), cI)`: the decoder's output ``out`` is the mean, ``c`` the variance.

    - ``c``: a number, or a scalar tensor (a learned variance, :math:`\exp` of a parameter, which
      keeps its gradient); ``learned`` says which.
    - ``squash``: the mean is the network's last layer through a sigmoid, so grey levels stay in
      [0, 1] (the :class:`~vaebook.VAE`'s Gaussian decoder); ``False`` leaves it as it is.

    Book: eq-gaussian-decoder
    """

    name = "gaussian"

    def __init__(self, c: float | Tensor = 1.0, *, learned: bool = False, squash: bool = True):
        if isinstance(c, Tensor):  # a learned variance, exp of a parameter: positive by construction
            if c.numel() != 1:
                raise ValueError(f"c (the Gaussian's variance): expected a scalar, got a tensor of shape {tuple(c.shape)}")
        else:
            c = check_positive("c (the Gaussian's variance)", c)
        self.c = c
        self.learned = learned
        self.squash = squash

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return stats.gaussian_log_prob(x, out, self.c)

    def mean(self, out: Tensor) -> Tensor:
        return _output("out", out)

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = draws.randn(_output("out", out).shape, generator=generator, device=out.device)
        return out + torch.as_tensor(self.c).sqrt() * noise

    def network_output(self, raw: Tensor) -> Tensor:
        return torch.sigmoid(raw) if self.squash else raw

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.name
        if not isinstance(other, Gaussian):
            return False
        same_c = other.c is self.c or (not isinstance(self.c, Tensor) and not isinstance(other.c, Tensor) and other.c == self.c)
        return same_c and (other.learned, other.squash) == (self.learned, self.squash)

    __hash__ = Likelihood.__hash__

    def __repr__(self) -> str:
        c = f"{float(self.c):.4g}" if isinstance(self.c, (int, float)) or self.c.numel() == 1 else "tensor"
        return f"Gaussian(c={c}{', learned' if self.learned else ''})"


def _output(name: str, out: Tensor) -> Tensor:
    return check_float_tensor(f"{name} (the decoder's output)", out)


_CLASSES: dict[str, type[Likelihood]] = {cls.name: cls for cls in (Bernoulli, Gaussian, ContinuousBernoulli)}
NAMES = tuple(_CLASSES)  # the names a config may give: "bernoulli", "gaussian", "continuous_bernoulli"


def likelihood(name: str | Likelihood, c: float | Tensor = 1.0, *, learned: bool = False) -> Likelihood:
    """The likelihood object for a name (``c`` and ``learned`` go to the Gaussian); an object is returned as it is."""
    if isinstance(name, Likelihood):
        return name
    check_choice("likelihood", name, NAMES)
    cls = _CLASSES[name]
    return cls(c, learned=learned) if cls is Gaussian else cls()


def of(model) -> Likelihood:
    """A latent model's likelihood: its ``likelihood`` object, or the object for the name it gives (with its ``c``)."""
    lik = getattr(model, "likelihood", None)
    if isinstance(lik, Likelihood):
        return lik
    if isinstance(lik, str):
        return likelihood(lik, getattr(model, "c", 1.0))
    raise TypeError(f"model: expected a likelihood (a vaebook.likelihoods.Likelihood or one of {', '.join(NAMES)}), "
                    f"got {describe(lik)} from a {type(model).__name__}")
