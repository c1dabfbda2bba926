"""How fast vb.fit trains, against a DataLoader loop and a plain in-memory loop, in one run.

    python benchmarks/train_speed.py [--root ../shared/data] [--epochs 3]

All three train the same 784-400-20 MLP VAE (pytorch/examples' architecture: ReLU, Bernoulli
decoder) with Adam (lr 1e-3, batch 128) for the same number of epochs on the same images, with
dynamic binarization in every loop:

1. ``vb.fit``: batches cut from tensors held in memory, and gradients from the hand-derived step of
   ``vaebook.fused``; and ``vb.fit(fused=False)``, the same loop with autograd's backward pass;
2. a pytorch/examples-style loop: ``DataLoader`` over torchvision's ``MNIST`` with ``ToTensor``
   (a PIL image and a tensor conversion per item, then collation);
3. a plain loop over tensors in memory (the fastest thing one would write by hand).

It prints images per second for each (the median over rounds taken in turn), the ratios, and the
final test ELBO of each.

**Against the machine's limit.** In the same rounds, taking turns with the loops, it times this
machine's fp32 matrix products at the model's own shapes: for every linear layer at batch 128, the
forward product, the weight gradient and the input gradient (none for the first layer, whose input
is data). Their FLOPs per step over their time is the GEMM rate; ``vb.fit``'s arithmetic rate is
its images per second times those FLOPs per image. Their ratio, the GEMM share, says how much of a
step is the unavoidable arithmetic and how much is everything else (the optimizer, elementwise
ops, the binarization draw, Python). The ceiling beside it counts the two other kernels no step can
skip, the binarization's uniform draw and the fused Adam kernel, timed alone: the share a step would
reach if its elementwise operations and Python cost nothing.
**Where the rest goes.** Last, it runs ``vb.fit`` for a few hundred steps under ``torch.profiler``
and splits the profiled time into the matrix products, the optimizer, the binarization draw, the
batch gather, the other tensor operations (elementwise and reductions, forward and backward), and
the remainder that no operator accounts for (Python: the loop, the loss's argument checks, autograd's
bookkeeping). The profiler slows small operations down, so the shares are of the profiled run.
Timings are wall-clock on whatever machine runs it; the README quotes a 2-core CPU.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings

import torch
from torch.utils.data import DataLoader, Dataset

import vaebook as vb


def make_model() -> vb.VAE:
    vb.seed_everything(0)
    return vb.VAE(z_dim=20, hidden=(400,), activation="relu")


def neg_elbo(model, x):
    return -vb.model_elbo(model, x).elbo.mean()


class ToTensorMNIST(Dataset):
    """torchvision's per-item path: a uint8 array -> PIL image -> ToTensor, one item at a time."""

    def __init__(self, root, offline_x):
        from torchvision import datasets, transforms

        self.tf = transforms.ToTensor()
        if root is not None:
            self.ds = datasets.MNIST(root, train=True, download=False, transform=self.tf)
        else:  # offline: the same per-item conversion over the fallback digits
            from PIL import Image

            self.ds = None
            self.images = [Image.fromarray((x[0] * 255).round().to(torch.uint8).numpy(), mode="L") for x in offline_x]

    def __len__(self):
        return len(self.ds) if self.ds is not None else len(self.images)

    def __getitem__(self, i):
        if self.ds is not None:
            return self.ds[i]
        return self.tf(self.images[i]), 0


def run_dataloader(train, root, epochs, bs):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(ToTensorMNIST(root, train.x), batch_size=bs, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    n = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            x = torch.bernoulli(x)
            loss = neg_elbo(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += x.shape[0]
    return model, n / (time.perf_counter() - t0)


def run_plain(train, epochs, bs):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = train.x
    g = torch.Generator().manual_seed(0)
    n = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(x_all) - bs + 1, bs):
            x = torch.bernoulli(x_all[perm[i:i + bs]], generator=g)
            loss = neg_elbo(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += bs
    return model, n / (time.perf_counter() - t0)


def gemm_shapes(model: vb.VAE) -> list[tuple[int, int, bool]]:
    """``(in, out, needs_input_grad)`` of every linear layer of the model, in the order a step runs them."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return [(m.in_features, m.out_features, i > 0) for i, m in enumerate(linears)]


def gemm_flops_per_step(shapes, bs: int) -> float:
    """FLOPs of the matrix products of one training step: 2 multiply-adds' worth per product entry."""
    return sum(2.0 * bs * i * o * (3 if grad_in else 2) for i, o, grad_in in shapes)


def _median_seconds(fn, repeats: int = 200) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls, after 10 to warm up."""
    for _ in range(10):  # warm-up
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_gemms(shapes, bs: int, repeats: int = 200) -> float:
    """Seconds per step spent in the step's matrix products alone, at these shapes (median of repeats)."""
    g = torch.Generator().manual_seed(0)
    total = 0.0
    for i, o, grad_in in shapes:
        a, w, gout = (torch.randn(bs, i, generator=g), torch.randn(o, i, generator=g), torch.randn(bs, o, generator=g))
        pairs = [(a, w.T), (gout.T, a)] + ([(gout, w)] if grad_in else [])  # forward, dW, dx
        for left, right in pairs:
            total += _median_seconds(functools.partial(torch.matmul, left, right), repeats)
    return total


def time_floor_extras(model: vb.VAE, bs: int) -> float:
    """Seconds per step of the two other kernels no step can skip: the uniform draw of the
    binarization (one per pixel, from one generator) and the fused Adam kernel over the parameters."""
    g = torch.Generator().manual_seed(0)
    draw = _median_seconds(lambda: torch.rand(bs, 784, generator=g))
    params = [p.detach().clone() for p in model.parameters()]
    grads, m, v = ([torch.randn_like(p) * 1e-3 for p in params] for _ in range(3))
    v = [t.abs() for t in v]
    steps = [torch.tensor(10.0) for _ in params]
    adam = _median_seconds(lambda: torch._fused_adam_(params, grads, m, v, [], steps, amsgrad=False, lr=1e-3, beta1=0.9,
                                                      beta2=0.999, weight_decay=0.0, eps=1e-8, maximize=False))
    return draw + adam


PROFILE_CATEGORIES = (  # (name, operators whose own time it counts); everything else is "other operators"
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("optimizer (fused Adam, zero_grad)", ("aten::_fused_adam_", "aten::_foreach_add_", "Optimizer.step#Adam.step", "Optimizer.zero_grad#Adam.zero_grad")),
    ("binarization draw", ("aten::uniform_", "aten::bernoulli_", "aten::lt")),
    ("batch gather", ("aten::index", "aten::index_select")),
)


def profile_fit(train, bs: int, steps: int = 300) -> list[tuple[str, float]]:
    """Shares of a profiled ``vb.fit`` run's wall time, by PROFILE_CATEGORIES, then the rest."""
    from torch.profiler import ProfilerActivity, profile

    data = train[: bs * 100]  # 100 steps an epoch, so the one-off checks at the door are a small part
    model = make_model()
    vb.fit(model, data, steps=50, lr=1e-3, batch_size=bs, binarize=True, device="cpu", progress=False, seed=0)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        vb.fit(model, data, steps=steps, lr=1e-3, batch_size=bs, binarize=True, device="cpu", progress=False, seed=0)
        wall = time.perf_counter() - t0
    own = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}  # seconds, one entry per operator
    shares, counted = [], 0.0
    for name, keys in PROFILE_CATEGORIES:
        t = sum(own.get(k, 0.0) for k in keys)
        shares.append((name, t / wall))
        counted += t
    ops = sum(t for k, t in own.items() if k.startswith("aten::") or "#" in k)
    shares.append(("other operators (elementwise, reductions, copies)", (ops - counted) / wall))
    shares.append(("no operator (Python, autograd bookkeeping)", max(0.0, 1.0 - ops / wall)))
    return shares


def run_fit(train, epochs, bs, fused=True):
    model = make_model()
    hist = vb.fit(model, train, epochs=epochs, lr=1e-3, batch_size=bs, binarize=True, device="cpu", progress=False, seed=0,
                  fused=fused)
    return model, hist.images_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="../shared/data", help="a folder with MNIST/raw (default: ../shared/data)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="turns each loop takes; medians are reported")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vb.OfflineDataWarning)
        train = vb.load_mnist("train", root=args.root, download=False)
        test = vb.load_mnist("test", root=args.root, download=False)
    root = args.root if train.full else None
    print(f"data: {train.source}, {len(train):,} training images; {args.epochs} epochs, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")

    runs = (
        ("vb.fit", lambda: run_fit(train, args.epochs, args.batch_size)),
        ("vb.fit(fused=False)", lambda: run_fit(train, args.epochs, args.batch_size, fused=False)),
        ("DataLoader + ToTensor", lambda: run_dataloader(train, root, args.epochs, args.batch_size)),
        ("plain in-memory loop", lambda: run_plain(train, args.epochs, args.batch_size)),
    )
    # The loops take turns, `rounds` times, and each reports its median speed: a shared 2-core
    # machine's speed drifts by tens of percent over a minute, which one pass would mistake for a
    # difference between the loops. Every round trains the same seeded model, so the ELBO repeats.
    speeds: dict[str, list[float]] = {name: [] for name, _ in runs}
    elbos: dict[str, float] = {}
    shapes = gemm_shapes(make_model())
    flops_step = gemm_flops_per_step(shapes, args.batch_size)
    gemm_rates: list[float] = []
    ceilings: list[float] = []  # the share a step would reach if only its GEMMs, draw and Adam kernel cost time
    for r in range(args.rounds):
        gemm_seconds = time_gemms(shapes, args.batch_size)
        gemm_rates.append(flops_step / gemm_seconds)
        ceilings.append(gemm_seconds / (gemm_seconds + time_floor_extras(make_model(), args.batch_size)))
        print(f"  round {r + 1}: {'GEMMs at the model shapes':<24} {gemm_rates[-1] / 1e9:9.1f} GFLOP/s", flush=True)
        for name, fn in runs:
            model, ips = fn()
            speeds[name].append(ips)
            x_test = vb.binarize(test.x[:2000], torch.Generator().manual_seed(1))
            with torch.no_grad():
                vb.seed_everything(2)
                elbos[name] = vb.model_elbo(model, x_test).elbo.mean().item()
            print(f"  round {r + 1}: {name:<24} {ips:>9,.0f} images/s   test ELBO {elbos[name]:8.2f} nats", flush=True)
    results = {name: (statistics.median(v), elbos[name]) for name, v in speeds.items()}
    print()
    for name, (ips, elbo) in results.items():
        print(f"  {name:<24} median {ips:>9,.0f} images/s   test ELBO {elbo:8.2f} nats")

    fit_ips, fit_elbo = results["vb.fit"]
    dl_ips, _ = results["DataLoader + ToTensor"]
    plain_ips, plain_elbo = results["plain in-memory loop"]
    print()
    print(f"vb.fit / DataLoader loop : {fit_ips / dl_ips:5.2f}x   (target >= 3)")
    print(f"vb.fit / plain loop      : {fit_ips / plain_ips:5.2f}x   (target >= 1, i.e. not slower)")
    print(f"vb.fit / fused=False     : {fit_ips / results['vb.fit(fused=False)'][0]:5.2f}x   (the hand-derived step against autograd)")
    print(f"ELBO, vb.fit - plain loop: {fit_elbo - plain_elbo:+5.2f} nats (target within 1 nat)")
    gemm = statistics.median(gemm_rates)
    fit_rate = fit_ips * flops_step / args.batch_size
    print(f"GEMM rate at the model's shapes: {gemm / 1e9:.1f} GFLOP/s (median of {len(gemm_rates)}); "
          f"vb.fit's arithmetic rate: {fit_rate / 1e9:.1f} GFLOP/s")
    print(f"vb.fit's share of the GEMM rate: {fit_rate / gemm:5.2f}   (target >= 0.6)")
    print(f"ceiling: the share of a step that ran only its GEMMs, the binarization's uniform draw and the fused "
          f"Adam kernel: {statistics.median(ceilings):5.2f}")
    print()
    print(f"where a step of vb.fit goes (torch.profiler, 300 steps at batch {args.batch_size}, shares of the profiled time):")
    for name, share in profile_fit(train, args.batch_size):
        print(f"  {name:<52} {share:6.1%}")


if __name__ == "__main__":
    main()
