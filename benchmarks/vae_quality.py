"""Train the library's VAE recipe for a fixed wall-clock budget; report the test NLL, measured twice.

    python benchmarks/vae_quality.py --root ../shared/data --seconds 60 [--save vae.pt]
    python benchmarks/vae_quality.py --root ../shared/data --seconds 60 --recipe train_vae [--batch-size 256 ...]

The recipe is :func:`vaebook.train_budget_vae` (see its docstring). ``--recipe train_vae`` trains
``vb.VAE(...)`` with :func:`vaebook.train_vae` instead, and the options after it change one choice
at a time (the model's ``--prior``, ``--prior-components``, ``--z-dim``, ``--hidden``,
``--activation``; the training's ``--batch-size``, ``--lr``, ``--schedule``), so that each row of the
README's table of what was tried can be re-run.

The test NLL is the importance-sampled estimate (``vb.log_likelihood``, k=1000) on the first
1,000 test images, binarized once with a fixed seed, in nats (lower is better); the test -ELBO is
``vb.model_elbo``'s (one code per image, closed-form KL where the prior allows it).

Both are then measured again by :func:`independent_estimates`, a second estimator written here
from ``torch.distributions`` alone: it shares only the trained encoder and decoder networks with
the library, none of its densities, sampling or log-mean-exp. The two must agree within 1 nat.

Published for comparison (Burda et al., 2015, after 3,280 epochs, k=5,000): 86.76 nats for a VAE
with one stochastic layer, 84.78 nats for an IWAE with k=50.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import distributions as D

import vaebook as vb


def prior_distribution(vae: vb.VAE) -> D.Distribution:
    """The model's prior rebuilt as a ``torch.distributions`` object from its parameters."""
    d = vae.config.z_dim
    if vae.prior_is_standard:
        return D.Independent(D.Normal(torch.zeros(d), torch.ones(d)), 1)
    p = vae.prior
    return D.MixtureSameFamily(
        D.Categorical(logits=p.logits.detach()),
        D.Independent(D.Normal(p.means.detach(), torch.exp(0.5 * p.logvars.detach())), 1),
    )


@torch.no_grad()
def independent_estimates(vae: vb.VAE, x: torch.Tensor, k: int, seed: int, chunk: int = 20) -> tuple[float, float]:
    """``(NLL, -ELBO)`` in nats, averaged over ``x``: k draws from q(z|x) per image, weights from torch.distributions.

    NLL: -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x). -ELBO: minus the mean of the same k log-weights
    (a k-sample Monte Carlo ELBO, so its KL term is estimated, not the closed form).
    """
    if vae.likelihood != "bernoulli":
        raise ValueError(f"vae: the benchmark measures Bernoulli VAEs, got likelihood={vae.likelihood!r}")
    torch.manual_seed(seed)
    prior = prior_distribution(vae)
    nll, neg_elbo = 0.0, 0.0
    for xb in x.split(chunk):
        mu, logvar = vae.encode(xb)  # (b, d) each: the trained encoder network
        q = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)
        z = q.sample((k,))  # (k, b, d)
        logits = vae.decode(z)  # (k, b, 1, 28, 28): the trained decoder network
        log_px = D.Independent(D.Bernoulli(logits=logits), 3).log_prob(xb.expand_as(logits))  # (k, b)
        log_w = log_px + prior.log_prob(z) - q.log_prob(z)  # (k, b)
        nll -= (torch.logsumexp(log_w, dim=0) - math.log(k)).sum().item()
        neg_elbo -= log_w.mean(dim=0).sum().item()
    return nll / len(x), neg_elbo / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="a folder holding torchvision's MNIST/raw files")
    ap.add_argument("--seconds", type=float, default=60.0, help="wall-clock training budget")
    ap.add_argument("--save", type=Path, default=None, help="write the trained model here (vb.save)")
    ap.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
    ap.add_argument("--seed", type=int, default=0, help="the training seed")
    ap.add_argument("--recipe", choices=("train_budget_vae", "train_vae"), default="train_budget_vae")
    model = ap.add_argument_group("the model's config, with --recipe train_vae (default: VAEConfig's)")
    model.add_argument("--z-dim", type=int)
    model.add_argument("--hidden", type=lambda s: tuple(int(h) for h in s.split(",")), help="widths, e.g. 512,512")
    model.add_argument("--activation")
    model.add_argument("--prior", choices=("standard", "mixture"))
    model.add_argument("--prior-components", type=int)
    training = ap.add_argument_group("training (default: the recipe's)")
    training.add_argument("--batch-size", type=int)
    training.add_argument("--lr", type=float)
    training.add_argument("--schedule")
    args = ap.parse_args()

    def given(*names: str) -> dict:  # the options given on the command line
        return {k: getattr(args, k) for k in names if getattr(args, k) is not None}

    model_options = given("z_dim", "hidden", "activation", "prior", "prior_components")
    overrides = given("batch_size", "lr", "schedule")
    train = vb.load_mnist("train", root=args.root, download=False)
    test = vb.load_mnist("test", root=args.root, download=False)
    if not train.full:
        raise SystemExit(f"{args.root} does not hold the full MNIST (found the offline fallback)")
    x_test = vb.binarize(test.x[:1000], torch.Generator().manual_seed(0))

    if args.recipe == "train_budget_vae":
        if model_options:
            raise SystemExit(f"{', '.join(model_options)}: train_budget_vae builds its own model; use --recipe train_vae")
        vae, hist = vb.train_budget_vae(train, max_seconds=args.seconds, seed=args.seed, device="cpu", progress=False, **overrides)
    else:
        vb.seed_everything(args.seed)
        vae = vb.VAE(**model_options)  # the default config is train_vae's architecture
        hist = vb.train_vae(vae, train, max_seconds=args.seconds, device="cpu", progress=False, seed=args.seed, **overrides)
    t0 = time.perf_counter()
    nll = -vb.log_likelihood(vae, x_test, K=args.k, batch_size=100, generator=torch.Generator().manual_seed(1)).mean().item()
    with torch.no_grad():
        vb.seed_everything(1)
        neg_elbo = -vb.model_elbo(vae, x_test).elbo.mean().item()
    t1 = time.perf_counter()
    nll2, neg_elbo2 = independent_estimates(vae, x_test, args.k, seed=2)
    t2 = time.perf_counter()
    options = " ".join(f"{k}={v}" for k, v in {**model_options, **overrides}.items()) or "the defaults"
    print(f"recipe: vb.{args.recipe} with {options}")
    print(f"trained {hist.seconds:.0f} s: {hist.epochs} epochs, {hist.steps} steps, {hist.images_per_second:,.0f} images/s")
    print(f"test NLL (k={args.k}, first 1,000 test images): {nll:.2f} nats;  test -ELBO: {neg_elbo:.2f} nats  [{t1 - t0:.0f} s]")
    print(f"independent estimator (torch.distributions): NLL {nll2:.2f} nats ({nll2 - nll:+.2f});  "
          f"-ELBO {neg_elbo2:.2f} nats ({neg_elbo2 - neg_elbo:+.2f})  [{t2 - t1:.0f} s]")
    if max(abs(nll2 - nll), abs(neg_elbo2 - neg_elbo)) > 1.0:
        raise SystemExit("the two estimators disagree by more than 1 nat")
    if args.save:
        vb.save(vae, args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
