"""Seeded draws do not depend on the device: every draw of training is made on the CPU, then moved.

A chapter's hidden checks assert the numbers of a seeded CPU run, and ``fit`` trains on a GPU where
there is one (Colab's GPU runtime). CUDA's generator draws other numbers than the CPU's for the same
seed, so the library draws everything random on the CPU (:mod:`vaebook.draws`) and moves it.

There is no GPU here. These tests train on PyTorch's ``meta`` device instead, whose tensors have
shapes and no values: a draw made on the training device shows up as a draw on ``meta``. Every random
function of torch is wrapped to record where each draw was made, from which generator, and its numbers.
A run on ``meta`` must make the same draws, with the same numbers, as the same run on the CPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import torch

import vaebook as vb
from vaebook import diffusion as D
from vaebook import draws

DRAWS = ("randn", "rand", "randint", "randperm", "bernoulli", "multinomial", "normal", "randn_like", "rand_like", "randint_like")
IN_PLACE = ("normal_", "uniform_", "bernoulli_", "random_", "exponential_", "cauchy_", "log_normal_", "geometric_")


@dataclass
class Draw:
    name: str
    device: str  # where the numbers were made
    generator: str  # "global", or the device of the generator passed
    values: torch.Tensor | None  # the numbers, where they exist (not on meta)

    def same_as(self, other: "Draw") -> bool:
        return (self.name, self.device, self.generator) == (other.name, other.device, other.generator) and (
            self.values is not None and other.values is not None and self.values.dtype == other.values.dtype
            and torch.equal(self.values, other.values)
        )


@pytest.fixture
def recorded(monkeypatch) -> list[Draw]:
    """Every random draw made through torch while the test runs, in order."""
    log: list[Draw] = []

    def wrap(name, real):
        def recording(*args, **kwargs):
            out = real(*args, **kwargs)
            g = kwargs.get("generator")
            values = out.detach().clone() if out.device.type == "cpu" else None
            log.append(Draw(name, out.device.type, g.device.type if g is not None else "global", values))
            return out
        return recording

    for name in DRAWS:
        monkeypatch.setattr(torch, name, wrap(name, getattr(torch, name)))
    for name in IN_PLACE:
        monkeypatch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
    return log


@pytest.fixture
def meta_training(monkeypatch):
    """``fit`` on ``meta``: its weight check reads values, which meta tensors do not have."""
    monkeypatch.setattr(vb.train, "_check_weights", lambda model, where: None)


@pytest.fixture
def meta_unchecked(monkeypatch):
    """The guards that read values (NaN, ranges) pass meta tensors, which have none to read."""
    for name in ("check_finite", "check_range"):
        real = getattr(vb.guards, name)
        passing = lambda label, t, *args, _real=real: t if t.device.type == "meta" else _real(label, t, *args)  # noqa: E731
        for module in [m for key, m in sys.modules.items() if key.startswith("vaebook")]:
            if getattr(module, name, None) is real:  # the modules that imported it by name, and guards itself
                monkeypatch.setattr(module, name, passing)
    monkeypatch.setattr(torch.distributions.Distribution, "_validate_args", False)  # torch.distributions' own checks


class ShapesOnly:
    """The model's own loss, run for its draws; it returns a zero that trains nothing.

    Meta tensors hold no values, so the loss's value checks are off and the scalar that ``fit``
    tests for NaN is a CPU zero. The CPU run uses the same wrapper, so both runs draw alike.
    """

    def __init__(self, loss):
        self.loss, self.batches = loss, []

    def __call__(self, model, x, target):
        with vb.guards.value_checks(False):
            self.loss(model, x, target)
        self.batches.append((x.device.type, target is x))
        return vb.LossOutput(torch.zeros((), requires_grad=True), {})


def chapter2_corrupt(seen: list):
    """Chapter 2's kind of corruption: it draws on ``x.device`` from the generator that ``fit`` passes."""

    def corrupt(x, generator):
        seen.append((x.device.type, generator.device.type))
        b = x.shape[0]
        sigma = 0.8 * torch.rand(b, 1, 1, 1, generator=generator, device=x.device)  # (b, 1, 1, 1)
        gaussian = x + sigma * torch.randn(x.shape, generator=generator, device=x.device)
        speckled = vb.salt_and_pepper(x, 0.2, generator)
        return torch.where(torch.rand(b, 1, 1, 1, generator=generator, device=x.device) < 0.25, speckled, gaussian)

    return corrupt


def images(n=96, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


CASES = {
    "VAE, binarized, evaluated": lambda: (vb.VAE(z_dim=3, hidden=(16,)), vb.ELBOLoss(), dict(binarize=True, test_data=images(40, 1))),
    "VAE, mixture prior": lambda: (vb.VAE(z_dim=3, hidden=(16,), prior="mixture", prior_components=4), vb.ELBOLoss(), dict(binarize=True)),
    "IWAE, DReG": lambda: (vb.VAE(z_dim=3, hidden=(16,)), vb.IWAELoss(K=4, estimator="dreg"), dict(binarize=True)),
    "denoising autoencoder": lambda: (vb.Autoencoder(z_dim=4, hidden=(16,)), vb.ReconstructionLoss(), dict(test_data=images(40, 1))),
    "noisy pairs": lambda: (vb.Autoencoder(z_dim=4, hidden=(16,)), vb.ReconstructionLoss(), {}),
    "diffusion": lambda: (D.DDPM(hidden=16, T=10, image_shape=(1, 28, 28)), D.DiffusionLoss(), {}),
}


def train_and_record(case: str, device: str, recorded: list[Draw]) -> tuple[list[Draw], ShapesOnly, list]:
    vb.seed_everything(0)
    model, loss, options = CASES[case]()  # built on the CPU, as the chapters build theirs
    model.to(device)  # where the caller keeps it: fit brings it back there
    data = images()
    seen: list = []
    if case == "denoising autoencoder":
        options["corrupt"] = chapter2_corrupt(seen)
    if case == "noisy pairs":
        data = (vb.add_gaussian_noise(data, 0.3, torch.Generator().manual_seed(2)), data)
    wrapped = ShapesOnly(loss)
    recorded.clear()
    vb.fit(model, data, steps=5, batch_size=16, loss=wrapped, device=device, seed=3, progress=False, **options)
    return list(recorded), wrapped, seen


@pytest.mark.parametrize("case", list(CASES))
def test_training_on_another_device_draws_the_cpu_numbers(case, recorded, meta_training):
    on_cpu, _, _ = train_and_record(case, "cpu", recorded)
    on_meta, loss, corrupt_saw = train_and_record(case, "meta", recorded)
    assert loss.batches and all(dev == "meta" for dev, _ in loss.batches)  # it trained on the device asked for
    own_target = case not in ("noisy pairs", "denoising autoencoder")
    assert all(itself == own_target for _, itself in loss.batches)  # a batch that is its own target is moved once
    made_on = sorted({(d.name, d.device, d.generator) for d in on_meta})
    assert all(d.device == "cpu" and d.generator in ("cpu", "global") for d in on_meta), made_on
    assert any(d.name == "randperm" and d.generator == "cpu" for d in on_meta)  # the batch order, from fit's own generator
    assert len(on_meta) == len(on_cpu) and all(a.same_as(b) for a, b in zip(on_meta, on_cpu, strict=True))
    if case == "denoising autoencoder":
        assert corrupt_saw and set(corrupt_saw) == {("cpu", "cpu")}  # corrupt gets a CPU batch and a CPU generator


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_fit_draws_its_batches_and_noise_from_the_cpu_generators(device, recorded, meta_training):
    """The numbers of a seeded VAE run, drawn here by hand: the batch order and the binarizations from
    a CPU generator seeded with ``seed``, the reparametrization noise from the CPU's global generator,
    which ``fit`` seeds with ``seed`` too. On the CPU these are the numbers fit always drew."""
    vb.seed_everything(0)
    vae = vb.VAE(z_dim=3, hidden=(16,)).to(device)
    data = images()
    loss = ShapesOnly(vb.ELBOLoss())
    recorded.clear()
    vb.fit(vae, data, steps=2, batch_size=16, binarize=True, loss=loss, device=device, seed=3, progress=False)
    made = list(recorded)

    g = torch.Generator().manual_seed(3)
    order = torch.randperm(96, generator=g)
    first = torch.rand(16, 1, 28, 28, generator=g)  # binarizes the first batch, data[order[:16]]
    second = torch.rand(16, 1, 28, 28, generator=g)
    torch.manual_seed(3)
    eps1, eps2 = torch.randn(16, 3), torch.randn(16, 3)  # z = mu + sigma * eps, one per image
    expected = [("randperm", order), ("rand", first), ("randn", eps1), ("rand", second), ("randn", eps2)]
    assert [d.name for d in made] == [name for name, _ in expected]
    assert all(torch.equal(d.values, v) and d.device == "cpu" for d, (_, v) in zip(made, expected, strict=True))
    assert [d.generator for d in made] == ["cpu", "cpu", "global", "cpu", "global"]
    assert [dev for dev, _ in loss.batches] == [device, device]


def meta_vae(likelihood="bernoulli"):
    vb.seed_everything(0)
    return vb.VAE(z_dim=3, hidden=(16,), likelihood=likelihood)


def one_call(name: str, device: str):
    """Each of the library's functions that draw, on inputs kept on ``device``, with a seeded CPU generator."""
    g = torch.Generator().manual_seed(5)
    x = images(4).to(device)
    x_bin = (images(4) > 0.5).float().to(device)
    mu, logvar = torch.linspace(-1, 1, 12).view(4, 3).to(device), torch.full((4, 3), -0.5).to(device)
    schedule = D.NoiseSchedule.named("linear", 10)
    t = torch.tensor([1, 3, 7, 10])
    calls = {
        "reparameterize": lambda: vb.reparameterize(mu, logvar, generator=g),
        "reparameterize, global generator": lambda: vb.reparameterize(mu, logvar),
        "binarize": lambda: vb.binarize(x, g),
        "add_gaussian_noise": lambda: vb.add_gaussian_noise(x, 0.3, g),
        "salt_and_pepper": lambda: vb.salt_and_pepper(x, 0.3, g),
        "mask_pixels": lambda: vb.mask_pixels(x, 0.3, g),
        "mutual_information": lambda: vb.mutual_information(mu, logvar, generator=g),
        "log_weights": lambda: vb.log_weights(meta_vae().to(device), x_bin, 3, generator=g),
        "iwae_objective": lambda: vb.iwae_objective(meta_vae().to(device), x_bin, 3, estimator="dreg", generator=g),
        "sample, Bernoulli": lambda: meta_vae().to(device).sample(4, generator=g, mean=False),
        "sample, Gaussian": lambda: meta_vae("gaussian").to(device).sample(4, generator=g, mean=False),
        "sample, continuous Bernoulli": lambda: meta_vae("continuous_bernoulli").to(device).sample(4, generator=g, mean=False),
        "q_sample": lambda: schedule.q_sample(D.to_signed(x), t, generator=g),
        "q_step": lambda: schedule.q_step(D.to_signed(x), t, generator=g),
    }
    with vb.guards.value_checks(False):
        return calls[name]()


CALLS = ["reparameterize", "reparameterize, global generator", "binarize", "add_gaussian_noise", "salt_and_pepper",
         "mask_pixels", "mutual_information", "log_weights", "iwae_objective", "sample, Bernoulli", "sample, Gaussian",
         "sample, continuous Bernoulli", "q_sample", "q_step"]
# (MixturePrior.sample is left out: it has always drawn on the CPU, from the prior's weights copied
# there, which a meta tensor cannot give.)


@pytest.mark.parametrize("name", CALLS)
def test_library_draws_are_made_on_the_cpu_and_moved(name, recorded, meta_unchecked):
    torch.manual_seed(11)
    out_cpu = one_call(name, "cpu")
    on_cpu = list(recorded)
    recorded.clear()
    torch.manual_seed(11)
    out_meta = one_call(name, "meta")
    assert out_meta.device.type == "meta" and out_meta.shape == out_cpu.shape  # the result is where the inputs are
    drawn = [d for d in recorded if d.name not in IN_PLACE]  # the models' own initial weights are drawn in place, on the CPU
    assert drawn, "expected the call to draw"
    assert all(d.device == "cpu" for d in recorded), sorted({(d.name, d.device) for d in recorded})
    assert len(recorded) == len(on_cpu) and all(a.same_as(b) for a, b in zip(recorded, on_cpu, strict=True))


def test_the_cpu_draw_that_replaces_bernoulli_gives_its_numbers():
    """On a GPU, ``binarize`` and ``VAE.sample`` compare CPU uniforms with the probabilities: on the
    CPU that is ``torch.bernoulli``'s own draw, bit for bit, and leaves the generator where it does."""
    probs = torch.sigmoid(3 * torch.randn(64, 784, generator=torch.Generator().manual_seed(0)))  # (64, 784), as a decoder's
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    by_bernoulli = torch.bernoulli(probs, generator=g1)
    by_uniforms = (draws.rand(probs.shape, generator=g2, dtype=probs.dtype) < probs).to(probs.dtype)
    assert torch.equal(by_bernoulli, by_uniforms)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_draws_keep_a_generator_on_its_own_device():
    g = torch.Generator().manual_seed(0)
    assert draws.source_device(g) == torch.device("cpu") and draws.source_device(None) == torch.device("cpu")
    out = draws.randn((2, 3), generator=g, device="meta")
    assert out.device.type == "meta" and out.shape == (2, 3)
    torch.manual_seed(0)
    a = draws.randn((5,))
    torch.manual_seed(0)
    assert torch.equal(a, torch.randn(5))  # no device: the CPU's tensor itself, unmoved


@pytest.mark.parametrize("builder", ["train_2d_vae", "train_budget_vae"])
def test_models_the_library_builds_start_from_the_cpu_weights(builder, monkeypatch):
    """The recipes that build their own VAE build it on the CPU, whatever device it will train on, so
    its initial weights are the CPU's (this held before draws moved to the CPU, and must stay so)."""
    built = {}

    def no_training(vae, data, **options):
        built["vae"], built["device"] = vae, options.get("device")
        return vb.History()

    monkeypatch.setattr(vb.recipes, "train_vae", no_training)
    data = vb.ImageData(images(64), torch.zeros(64, dtype=torch.long), "random")
    if builder == "train_2d_vae":
        vb.train_2d_vae(data, steps=1, seed=4, device="meta")
        vb.seed_everything(4)
        expected = vb.VAE(z_dim=2)
    else:
        vb.train_budget_vae(data, steps=1, seed=4, device="meta")
        vb.seed_everything(4)
        expected = vb.VAE(prior="mixture", prior_components=vb.recipes.BUDGET_PRIOR_COMPONENTS)
    assert built["device"] == "meta"
    weights = built["vae"].state_dict()
    assert all(w.device.type == "cpu" for w in weights.values())
    assert all(torch.equal(w, expected.state_dict()[k]) for k, w in weights.items())
