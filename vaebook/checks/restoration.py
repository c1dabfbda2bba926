"""The checks of the exercises on restoring images: corrupted pairs, denoising and super-resolution (chapters 2 and 3).

The random corruptions are checked by their statistics and by where their randomness comes from; the
project (``bicubic_then_conv``) on what the net it builds produces after a short training.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import data as _data
from .core import Case, CheckFailed, check
from .core import digits as _digits
from .core import gen as _gen

__all__ = ["gaussian_noise_pairs", "salt_and_pepper", "square_symmetries", "pixel_shuffle", "psnr", "bicubic_then_conv"]


# --------------------------------------------------------------------------- corruptions (chapter 2)
def gaussian_noise_pairs(fn: Callable[[Tensor, float, torch.Generator], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, sigma, generator)`` returns ``(noisy, clean)`` with ``noisy = x + sigma * N(0, I)``.

    Checked by drawing the noise from the same generator state: use ``torch.randn(x.shape, generator=generator)``.
    """

    def ref(x, sigma, generator):
        return _data.add_gaussian_noise(x, sigma, generator=generator), x

    def run(fn_, x, sigma, seed):
        return fn_(x, sigma, _gen(seed))

    cases = [
        Case((torch.rand(3, 1, 28, 28, generator=_gen(3)), 0.5, 10), "sigma 0.5"),
        Case((torch.rand(1, 1, 28, 28, generator=_gen(4)), 0.0, 11), "sigma 0, batch of 1"),
    ]
    hints = [(lambda r, case: (r[1], r[0]), "return the pair in the order (noisy input, clean target).")]
    check(
        "gaussian_noise_pairs",
        lambda x, s, seed: run(fn, x, s, seed),
        lambda x, s, seed: run(ref, x, s, seed),
        cases,
        hints=hints,
        strict=strict,
    )


def salt_and_pepper(fn: Callable[[Tensor, float, torch.Generator], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, p, generator)`` sets a fraction ``p`` of pixels to 0 or 1; checked by its statistics."""
    x = torch.full((64, 1, 28, 28), 0.5)

    def stats_of(fn_, p, seed):
        out = fn_(x, p, _gen(seed))
        if not isinstance(out, Tensor) or out.shape != x.shape:
            return ("shape", tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__)
        changed = out != 0.5
        values = out[changed]
        only_01 = bool(((values == 0) | (values == 1)).all()) if values.numel() else True
        frac = round(changed.float().mean().item(), 2)
        salt = round((values == 1).float().mean().item(), 1) if values.numel() else 0.5
        return (frac, only_01, salt)

    def ref_stats(p, seed):
        return (round(p, 2), True, 0.5)

    cases = [Case((0.1, 0), "p = 0.1"), Case((0.3, 1), "p = 0.3"), Case((0.0, 2), "p = 0 leaves the image")]

    def draws_come_from_the_generator():
        before = torch.random.get_rng_state()
        a, b, c = fn(x, 0.3, _gen(7)), fn(x, 0.3, _gen(7)), fn(x, 0.3, _gen(8))
        if not torch.equal(torch.random.get_rng_state(), before):
            raise CheckFailed("salt_and_pepper: it drew from torch's global random generator; draw every random "
                              "number from the generator argument (torch.rand(x.shape, generator=generator))")
        if not torch.equal(a, b):
            raise CheckFailed("salt_and_pepper: two calls with the same generator seed gave different images; "
                              "use only the generator passed in")
        if torch.equal(a, c):
            raise CheckFailed("salt_and_pepper: two different generator seeds gave the same image; the corruption "
                              "must be random, drawn from the generator, not a fixed pattern")

    check(
        "salt_and_pepper (fraction changed, only 0s and 1s, share of 1s)",
        lambda p, seed: stats_of(fn, p, seed),
        ref_stats,
        cases,
        atol=0.011,
        rtol=0,
        extra=draws_come_from_the_generator,
        strict=strict,
    )


def square_symmetries(fn: Callable[[Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x)`` returns each square image of ``x`` (``(n, c, h, h)``) under the 8 symmetries of
    the square, ``(8 n, c, h, h)``, in any order (the images are compared sorted by their pixels)."""

    def in_order(out, x):
        if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[1:] != x.shape[1:]:
            return out  # the comparison reports the type or the shape
        rows = out.detach().flatten(1)
        return out[sorted(range(len(rows)), key=lambda i: rows[i].tolist())]

    def rotations_only(x):
        return torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])

    def channel_mirror(x):
        turned = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        return torch.cat(turned + [t.flip(1) for t in turned])

    g = _gen(9)
    cases = [
        Case((torch.rand(3, 1, 4, 4, generator=g),), "3 random 4 x 4 images"),
        Case((torch.rand(2, 2, 5, 5, generator=g),), "2 images of 2 channels, 5 x 5"),
        Case((torch.rand(1, 1, 16, 16, generator=g),), "one 16 x 16 patch, as on the page"),
    ]
    hints = [
        (lambda r, case: in_order(rotations_only(case.args[0]), case.args[0]),
         "the 4 rotations are half of the 8: add each rotation mirrored (flip a pixel dimension, 2 or 3)."),
        (lambda r, case: in_order(channel_mirror(case.args[0]), case.args[0]),
         "mirror along a pixel dimension (dims 2 or 3 of (n, c, h, w)); dimension 1 holds the channels."),
    ]
    check(
        "square_symmetries (the 8 n images, sorted)",
        lambda x: in_order(fn(x.clone()), x),
        lambda x: in_order(_data.square_symmetries(x), x),
        cases,
        hints=hints,
        strict=strict,
    )


# --------------------------------------------------------------------------- super-resolution (chapter 3)
def pixel_shuffle(fn: Callable[[Tensor, int], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(t, r)`` rearranges ``(b, c*r*r, h, w)`` into ``(b, c, h*r, w*r)`` like ``torch.nn.PixelShuffle``."""
    g = _gen(5)
    cases = [
        Case((torch.randn(2, 4, 3, 3, generator=g), 2), "r=2, one output channel"),
        Case((torch.randn(1, 32, 7, 7, generator=g), 4), "r=4, two output channels, batch of 1"),
        Case((torch.arange(9.0).view(1, 9, 1, 1), 3), "r=3 on a single pixel"),
    ]
    check("pixel_shuffle", fn, lambda t, r: torch.nn.functional.pixel_shuffle(t, r), cases, atol=0, rtol=0, strict=strict)


def psnr(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, reference)`` returns each image's PSNR in dB for images in [0, 1], shape ``(b,)``."""
    from ..metrics import psnr as ref

    g = _gen(6)
    cases = [
        Case((torch.rand(3, 1, 8, 8, generator=g), torch.rand(3, 1, 8, 8, generator=g)), "3 random images"),
        Case((torch.full((1, 1, 4, 4), 0.1), torch.zeros(1, 1, 4, 4)), "batch of 1, error 0.1 everywhere"),
    ]
    hints = [
        (lambda r, case: r / 2, "PSNR is 10 log10(R^2 / MSE): square the peak, not 10 log10(R / MSE)."),
        (lambda r, case: 2 * r, "use 10 log10 of a ratio of powers (squared values), not 20 log10."),
    ]
    check("psnr", fn, ref, cases, atol=1e-3, rtol=1e-4, hints=hints, strict=strict)


def _psnr(x: Tensor, ref: Tensor) -> float:
    from ..metrics import psnr as p

    return p(x.clamp(0, 1), ref).mean().item()


def bicubic_then_conv(make: Callable[..., torch.nn.Module], *, strict: bool = False) -> None:
    """Project (chapter 3): ``make(channels, n_layers, scale)`` builds the high-resolution alternative.

    The net upsamples by bicubic interpolation first and then runs ``n_layers`` 3x3 convolutions
    of ``channels`` channels and a last one to one channel on the large image, added to it. Checked
    on what it produces: its output shape, that it is exactly bicubic interpolation when its last
    layer is zero, its count of multiply-adds against the library's low-resolution net (``scale**2``
    times as many per hidden layer), and that a short training lifts it above bicubic interpolation.
    """
    from .. import data as d
    from .. import models, train
    from ..objectives import reconstruction_error
    from ..losses import LossOutput

    def run(channels, n_layers, scale):
        net = make(channels, n_layers, scale)
        if not isinstance(net, torch.nn.Module):
            raise CheckFailed(f"bicubic_then_conv: make({channels}, {n_layers}, {scale}) should return a torch.nn.Module, got {type(net).__name__}")
        return net

    def shape_of(channels, n_layers, scale):
        return tuple(run(channels, n_layers, scale)(torch.rand(2, 1, 7, 7, generator=_gen(0))).shape)

    cases = [Case((8, 2, 4), "8 channels, 2 layers, 4x"), Case((4, 1, 2), "4 channels, 1 layer, 2x")]

    def produces_what_it_should():
        net = run(16, 3, 4)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        if len(convs) != 4 or convs[-1].out_channels != 1 or any(c.kernel_size != (3, 3) for c in convs):
            raise CheckFailed(f"bicubic_then_conv: expected 3 hidden 3x3 convolutions and a last 3x3 one to 1 channel, "
                              f"got {[(c.in_channels, c.out_channels, c.kernel_size) for c in convs]}")
        low = torch.rand(3, 1, 7, 7, generator=_gen(1))
        with torch.no_grad():
            convs[-1].weight.zero_()
            if convs[-1].bias is not None:
                convs[-1].bias.zero_()
            bicubic = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
            if not torch.allclose(net(low), bicubic, atol=1e-5):
                raise CheckFailed("bicubic_then_conv: with its last layer zero, the net should output the bicubic "
                                  "upsampling itself (up + body(up)), but it does not")

        def hidden_macs(m, side):  # multiply-adds of the convolutions between the first and the last, on side x side
            inner = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)][1:-1]
            return sum(c.in_channels * c.out_channels * 9 * side * side for c in inner)

        ours, lib = hidden_macs(run(16, 3, 4), 28), hidden_macs(models.SuperResolver(scale=4, channels=16, n_layers=3), 7)
        if ours != 16 * lib:
            raise CheckFailed(f"bicubic_then_conv: its hidden layers should cost 16 times the library's, which work "
                              f"at 7x7 ({16 * lib:,} multiply-adds), got {ours:,}")
        torch.manual_seed(0)
        x = _digits("train", 512)
        net = run(16, 3, 4)
        loss = lambda m, xi, t: LossOutput(reconstruction_error(t, m(xi)).mean(), {})  # noqa: E731
        train.fit(net, x, steps=150, batch_size=32, lr=1.5e-3, corrupt=lambda xb, g: d.downsample(xb, 4), loss=loss,
                  progress=False, device="cpu", seed=0)
        test = _digits("test", 200)
        with torch.no_grad():
            gain = (_psnr(net(d.downsample(test, 4)), test) - _psnr(d.upsample(d.downsample(test, 4), 4), test))
        if gain <= 0.5:
            raise CheckFailed(f"bicubic_then_conv: after 150 steps of training it should beat bicubic interpolation by "
                              f"more than 0.5 dB on held-out digits, got {gain:.2f} dB")

    check("bicubic_then_conv (output shape)", lambda c, n, r: shape_of(c, n, r),
          lambda c, n, r: (2, 1, 7 * r, 7 * r), cases, extra=produces_what_it_should, strict=strict)
