"""Every bad input to the public API gets a clear error: a table, a row per case.

Each row calls the library with one thing wrong and asserts the exception's type and words of its
message: the argument's name, what was expected, and what came. A row that fails names the call.
A torch, numpy or matplotlib error from deep inside, or a silent wrong answer, is a bug of ours.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

import vaebook as vb
from vaebook import baselines as B
from vaebook import plot
from tests.ppca import make_ppca

NAN, INF = float("nan"), float("inf")


def imgs(n=2, value=None, dtype=torch.float32):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(dtype)
    if value is not None:
        x[0, 0, 3, 3] = value
    return x


def vae2(**kw):
    return vb.VAE(z_dim=2, hidden=(8,), **kw)


def ae2():
    return vb.Autoencoder(z_dim=2, hidden=(8,))


def grid():
    return vb.grid_posterior(vae2(), torch.bernoulli(torch.full((2, 784), 0.3)), n=5)


def _nan_data():
    x = imgs(8)
    x[3, 0, 0, 0] = NAN
    return x


def _targets_out_of_range():
    x = imgs(256)
    x[200, 0, 5, 5] = 1.7  # only in a late batch: the first batch alone would look fine
    return x


def _exploding_fit():
    vb.fit(ae2(), imgs(64), epochs=50, batch_size=8, lr=1e6, progress=False, device="cpu")


def _bad_loss(model, x, target):
    return model(x).pow(2).sum()


def _bad_labels(labels):
    clf = vb.DigitClassifier()
    return vb.fit(clf, (imgs(8), labels), epochs=1, batch_size=4, progress=False, device="cpu")


@dataclass
class Case:
    id: str
    call: Callable[[], object]
    error: type[Exception]
    words: tuple[str, ...]


def case(id, call, error, *words):
    return pytest.param(Case(id, call, error, words), id=id)


CASES = [
    # ------------------------------------------------------------------ stats: NaN, dtype, shapes
    case("kl-nan-mu", lambda: vb.gaussian_kl(torch.tensor([[NAN, 0.0]]), torch.zeros(1, 2)), ValueError, "mu:", "finite", "NaN at 1"),
    case("kl-inf-logvar", lambda: vb.gaussian_kl(torch.zeros(1, 2), torch.tensor([[INF, 0.0]])), ValueError, "logvar:", "infinity"),
    case("kl-shapes", lambda: vb.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "mu and logvar", "(2, 3)", "(2, 4)"),
    case("kl-1d", lambda: vb.gaussian_kl(torch.zeros(3), torch.zeros(3)), ValueError, "mu:", "(b, z_dim)"),
    case("kl-int", lambda: vb.gaussian_kl(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), TypeError, "mu:", "floating-point"),
    case("kl-list", lambda: vb.gaussian_kl([[0.0]], [[0.0]]), TypeError, "mu:", "torch.Tensor", "list"),
    case("kl-dtypes", lambda: vb.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)), TypeError, "logvar:", "torch.float32", "float64"),
    case("reparam-int", lambda: vb.reparameterize(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), TypeError, "mu:", "floating-point"),
    case("reparam-eps-shape", lambda: vb.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), eps=torch.zeros(2, 4)), ValueError, "eps:", "(2, 3)", "(2, 4)"),
    case("reparam-nan-logvar", lambda: vb.reparameterize(torch.zeros(1, 2), torch.tensor([[0.0, NAN]])), ValueError, "logvar:", "NaN"),
    case("normal-logprob-str", lambda: vb.standard_normal_log_prob("z"), TypeError, "z:", "torch.Tensor", "string"),
    case("diag-logprob-shape", lambda: vb.diag_gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2, 2)), ValueError, "z:", "(2, 2)"),
    case("bernoulli-range", lambda: vb.bernoulli_log_prob(torch.tensor([[0.0, 1.5]]), torch.zeros(1, 2)), ValueError, "Bernoulli targets", "[0, 1]", "1.5"),
    case("bernoulli-nan-target", lambda: vb.bernoulli_log_prob(torch.tensor([[0.0, NAN]]), torch.zeros(1, 2)), ValueError, "Bernoulli targets", "NaN"),
    case("bernoulli-uint8", lambda: vb.bernoulli_log_prob(torch.zeros(1, 2, dtype=torch.uint8), torch.zeros(1, 2)), TypeError, "x:", "x.float() / 255"),
    case("bernoulli-logits-shape", lambda: vb.bernoulli_log_prob(torch.zeros(1, 2), torch.zeros(1, 3)), ValueError, "logits:", "(1, 2)"),
    case("gaussian-c-zero", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), c=0.0), ValueError, "c (the variance)", "> 0", "0.0"),
    case("gaussian-c-nan", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), c=NAN), ValueError, "c (the variance)", "finite", "nan"),
    case("gaussian-c-inf", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), c=INF), ValueError, "c (the variance)", "finite", "inf"),
    case("gaussian-c-str", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), c="1"), TypeError, "c (the variance)", "a number", "string"),
    case("gaussian-c-tensor", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), c=torch.ones(3)), ValueError, "c (the variance)", "scalar", "(3,)"),
    case("gaussian-mean-shape", lambda: vb.gaussian_log_prob(torch.zeros(2, 3), torch.zeros(3, 2)), ValueError, "mean:", "(2, 3)"),
    case("gaussian-nan-x", lambda: vb.gaussian_log_prob(torch.tensor([[NAN]]), torch.zeros(1, 1)), ValueError, "x:", "NaN"),
    case("lme-dim", lambda: vb.log_mean_exp(torch.zeros(3, 2), dim=2), IndexError, "dim:", "-2 to 1", "2"),
    case("lme-dim-float", lambda: vb.log_mean_exp(torch.zeros(3, 2), dim=0.5), TypeError, "dim:", "an int", "float"),
    case("lme-empty", lambda: vb.log_mean_exp(torch.zeros(0, 2), dim=0), ValueError, "a:", "at least one value"),
    case("lme-int", lambda: vb.log_mean_exp(torch.zeros(3, dtype=torch.long)), TypeError, "a:", "floating-point"),
    case("slerp-antipodal", lambda: vb.interpolate(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), 5, method="slerp"), ValueError, "opposite codes", "undefined"),
    case("slerp-zero", lambda: vb.interpolate(torch.zeros(2), torch.ones(2), 5, method="slerp"), ValueError, "non-zero codes"),
    case("interp-n-bool", lambda: vb.interpolate(torch.zeros(2), torch.ones(2), True), TypeError, "n (points", "an int", "bool"),
    case("interp-n-one", lambda: vb.interpolate(torch.zeros(2), torch.ones(2), 1), ValueError, "n (points", ">= 2", "1"),
    case("interp-method", lambda: vb.interpolate(torch.zeros(2), torch.ones(2), 3, method="cubic"), ValueError, "method:", "'linear'", "'cubic'"),
    case("interp-nan", lambda: vb.interpolate(torch.tensor([NAN, 0.0]), torch.ones(2), 3), ValueError, "z0:", "NaN"),
    case("interp-2d", lambda: vb.interpolate(torch.zeros(1, 2), torch.ones(1, 2), 3), ValueError, "z0 and z1", "(z_dim,)"),
    # ------------------------------------------------------------------ data
    case("mnist-split", lambda: vb.load_mnist("valid"), ValueError, "split:", "'train'", "'valid'"),
    case("mnist-n-zero", lambda: vb.load_mnist("train", n=0), ValueError, "n:", ">= 1", "0"),
    case("mnist-n-float", lambda: vb.load_mnist("train", n=2.5), TypeError, "n:", "an int", "float"),
    case("mnist-download-str", lambda: vb.load_mnist("train", download="no"), TypeError, "download:", "True or False"),
    case("mnist-root-int", lambda: vb.load_mnist("train", root=3), TypeError, "root:", "folder path", "int"),
    case("imagedata-flat", lambda: vb.ImageData(torch.rand(5, 784), torch.arange(5), "mnist"), ValueError, "ImageData.x", "(b, channels, H, W)", "(5, 784)"),
    case("imagedata-labels", lambda: vb.ImageData(torch.rand(5, 1, 28, 28), torch.arange(4), "mnist"), ValueError, "ImageData.y", "(5,)", "(4,)"),
    case("imagedata-float-labels", lambda: vb.ImageData(torch.rand(2, 1, 28, 28), torch.zeros(2), "mnist"), TypeError, "ImageData.y", "integer labels"),
    case("imagedata-index", lambda: vb.ImageData(torch.rand(2, 1, 28, 28), torch.arange(2), "mnist")[5], IndexError, "index:", "-2 to 1", "5"),
    case("noise-sigma-neg", lambda: vb.add_gaussian_noise(imgs(), -0.1), ValueError, "sigma", ">= 0", "-0.1"),
    case("noise-sigma-nan", lambda: vb.add_gaussian_noise(imgs(), NAN), ValueError, "sigma", "finite", "nan"),
    case("noise-sigma-str", lambda: vb.add_gaussian_noise(imgs(), "0.5"), TypeError, "sigma", "a number", "string"),
    case("noise-nan-image", lambda: vb.add_gaussian_noise(imgs(value=NAN), 0.1), ValueError, "x:", "NaN at 1"),
    case("noise-uint8", lambda: vb.add_gaussian_noise(imgs().mul(255).to(torch.uint8), 0.1), TypeError, "x:", "x.float() / 255", "uint8"),
    case("noise-flat", lambda: vb.add_gaussian_noise(torch.rand(2, 784), 0.1), ValueError, "x:", "(b, channels, H, W)", "(2, 784)"),
    case("noise-generator", lambda: vb.add_gaussian_noise(imgs(), 0.1, generator=0), TypeError, "generator:", "torch.Generator", "int"),
    case("snp-p", lambda: vb.salt_and_pepper(imgs(), 1.5), ValueError, "p:", "<= 1", "1.5"),
    case("snp-p-nan", lambda: vb.salt_and_pepper(imgs(), NAN), ValueError, "p:", "finite"),
    case("mask-p-neg", lambda: vb.mask_pixels(imgs(), -0.2), ValueError, "p:", ">= 0", "-0.2"),
    case("mask-fill-str", lambda: vb.mask_pixels(imgs(), 0.2, fill="black"), TypeError, "fill:", "a number", "string"),
    case("downsample-3", lambda: vb.downsample(imgs(), 3), ValueError, "factor:", "divisor", "(28, 28)", "3"),
    case("downsample-float", lambda: vb.downsample(imgs(), 2.0), TypeError, "factor:", "an int", "float"),
    case("downsample-zero", lambda: vb.downsample(imgs(), 0), ValueError, "factor:", ">= 1", "0"),
    case("upsample-mode", lambda: vb.upsample(imgs(), 2, mode="lanczos"), ValueError, "mode:", "'bicubic'", "'lanczos'"),
    case("binarize-range", lambda: vb.binarize(torch.tensor([[[[2.0]]]])), ValueError, "grey levels to binarize", "[0, 1]", "2"),
    case("binarize-nan", lambda: vb.binarize(torch.tensor([[[[NAN]]]])), ValueError, "grey levels to binarize", "NaN"),
    case("natural-name", lambda: vb.natural_images(["nope"]), ValueError, "names:", "camera", "'nope'"),
    case("natural-str", lambda: vb.natural_images("camera"), TypeError, "names:", "tuple or list", "('camera',)"),
    case("patches-size", lambda: vb.extract_patches(torch.rand(1, 8, 8), 16), ValueError, "size:", "no larger than the image", "16"),
    case("patches-stride-zero", lambda: vb.extract_patches(torch.rand(1, 8, 8), 4, stride=0), ValueError, "stride:", ">= 1", "0"),
    case("patches-4d", lambda: vb.extract_patches(torch.rand(1, 1, 8, 8), 4), ValueError, "image:", "3 dimensions", "(1, 1, 8, 8)"),
    case("symmetries-not-square", lambda: vb.square_symmetries(torch.rand(2, 1, 4, 5)), ValueError, "x:", "square images", "(2, 1, 4, 5)"),
    case("symmetries-3d", lambda: vb.square_symmetries(torch.rand(1, 4, 4)), ValueError, "x:", "4 dimensions", "(1, 4, 4)"),
    # ------------------------------------------------------------------ models and configs
    case("vae-likelihood", lambda: vb.VAE(likelihood="poisson"), ValueError, "VAEConfig.likelihood", "'bernoulli'", "'poisson'"),
    case("vae-c-neg", lambda: vb.VAE(likelihood="gaussian", c=-1.0), ValueError, "VAEConfig.c", "> 0", "-1.0"),
    case("vae-c-nan", lambda: vb.VAE(likelihood="gaussian", c=NAN), ValueError, "VAEConfig.c", "finite"),
    case("vae-c-str", lambda: vb.VAE(c="0.1"), TypeError, "VAEConfig.c", "a number", "string"),
    case("ae-zdim-zero", lambda: vb.Autoencoder(z_dim=0), ValueError, "AEConfig.z_dim", ">= 1", "0"),
    case("ae-zdim-bool", lambda: vb.Autoencoder(z_dim=True), TypeError, "AEConfig.z_dim", "an int", "bool"),
    case("ae-zdim-str", lambda: vb.Autoencoder(z_dim="16"), TypeError, "AEConfig.z_dim", "an int", "string"),
    case("ae-hidden-int", lambda: vb.Autoencoder(hidden=400), TypeError, "AEConfig.hidden", "tuple of ints", "(400,)"),
    case("ae-hidden-zero", lambda: vb.Autoencoder(hidden=(400, 0)), ValueError, "AEConfig.hidden", "ints >= 1"),
    case("ae-activation", lambda: vb.Autoencoder(activation="gelu"), ValueError, "AEConfig.activation", "'relu'", "'gelu'"),
    case("ae-unknown-option", lambda: vb.Autoencoder(zdim=2), ValueError, "unknown AEConfig option 'zdim'", "did you mean 'z_dim'"),
    case("ae-conv-size", lambda: vb.Autoencoder(arch="conv", hidden=(4, 8), image_shape=(1, 30, 30)), ValueError, "arch='conv'", "divisible by 4"),
    case("ae-conv-hidden", lambda: vb.Autoencoder(arch="conv", hidden=(4, 8, 16)), ValueError, "arch='conv'", "two channel counts"),
    case("sr-scale", lambda: vb.SuperResolver(scale=0), ValueError, "SRConfig.scale", ">= 1"),
    case("clf-channels", lambda: vb.DigitClassifier(channels=16), TypeError, "ClassifierConfig.channels", "tuple of 2 ints"),
    case("vae-encode-shape", lambda: vae2().encode(torch.rand(3, 100)), ValueError, "x:", "(b, 1, 28, 28) or (b, 784)", "(3, 100)"),
    case("vae-encode-uint8", lambda: vae2().encode(torch.zeros(3, 784, dtype=torch.uint8)), TypeError, "x:", "floating-point", "uint8"),
    case("vae-encode-float64", lambda: vae2().encode(torch.zeros(3, 784, dtype=torch.float64)), TypeError, "x:", "torch.float32", "float64"),
    case("vae-encode-list", lambda: vae2().encode([[0.0] * 784]), TypeError, "x:", "torch.Tensor", "list"),
    case("vae-decode-shape", lambda: vae2().decode(torch.zeros(3, 5)), ValueError, "z:", "(..., b, 2)", "(3, 5)"),
    case("vae-decode-float64", lambda: vae2().decode(torch.zeros(3, 2, dtype=torch.float64)), TypeError, "z:", "torch.float32"),
    case("vae-sample-zero", lambda: vae2().sample(0), ValueError, "n:", ">= 1", "0"),
    case("vae-sample-float", lambda: vae2().sample(2.0), TypeError, "n:", "an int", "float"),
    case("ae-forward-float64", lambda: ae2()(imgs(dtype=torch.float64)), TypeError, "x:", "torch.float32", "float64"),
    case("bias-empty", lambda: ae2().init_output_bias(torch.zeros(0, 1, 28, 28)), ValueError, "x:", "at least one image", "empty"),
    case("bias-nan", lambda: ae2().init_output_bias(imgs(value=NAN)), ValueError, "x:", "NaN"),
    case("bias-range", lambda: vae2().init_output_bias(imgs() * 3), ValueError, "x:", "[0, 1]"),
    case("sr-input", lambda: vb.SuperResolver()(torch.rand(2, 49)), ValueError, "x_low:", "(b, 1, h, w)", "(2, 49)"),
    case("clf-input", lambda: vb.DigitClassifier()(torch.rand(2, 1, 32, 32)), ValueError, "x:", "(b, 1, 28, 28)", "(2, 1, 32, 32)"),
    case("lg-c", lambda: vb.LinearGaussian(torch.zeros(3, 2), torch.zeros(3), 0.0), ValueError, "c (the observation variance)", "> 0"),
    case("lg-b-shape", lambda: vb.LinearGaussian(torch.zeros(3, 2), torch.zeros(2), 1.0), ValueError, "b:", "(3,)", "(2,)"),
    case("lg-W-1d", lambda: vb.LinearGaussian(torch.zeros(3), torch.zeros(3), 1.0), ValueError, "W:", "2 dimensions"),
    case("lg-W-nan", lambda: vb.LinearGaussian(torch.full((3, 2), NAN), torch.zeros(3), 1.0), ValueError, "W:", "NaN"),
    case("lg-offsets-str", lambda: make_ppca().set_q_offsets("a"), TypeError, "mu_shift:", "a number"),
    case("lg-set-c", lambda: make_ppca().set_c(-1.0), ValueError, "c (the observation variance)", "> 0"),
    case("lg-x-shape", lambda: make_ppca().log_prob(torch.zeros(2, 5, dtype=torch.float64)), ValueError, "x:", "(b, 6)", "(2, 5)"),
    # ------------------------------------------------------------------ objectives and estimators
    case("recon-shapes", lambda: vb.reconstruction_error(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "x and x_hat", "(2, 3)", "(2, 4)"),
    case("recon-uint8", lambda: vb.reconstruction_error(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.uint8)), TypeError, "x:", "floating-point"),
    case("recon-1d", lambda: vb.reconstruction_error(torch.zeros(3), torch.zeros(3)), ValueError, "x:", "batch of examples"),
    case("likelihood-name", lambda: vb.log_px_given_z(torch.zeros(2, 3), torch.zeros(2, 3), likelihood="laplace"), ValueError, "likelihood:", "'bernoulli'", "'laplace'"),
    case("elbo-samples", lambda: vb.elbo(torch.zeros(2, 3), torch.zeros(4, 2, 3), torch.zeros(2, 2), torch.zeros(2, 2)), ValueError, "x_out and mu", "one sample per example"),
    case("ll-k-zero", lambda: vb.log_likelihood(vae2(), torch.zeros(2, 784), K=0), ValueError, "K (the number of importance samples)", ">= 1"),
    case("ll-k-float", lambda: vb.log_likelihood(vae2(), torch.zeros(2, 784), K=10.0), TypeError, "K (the number of importance samples)", "an int"),
    case("ll-batch-zero", lambda: vb.log_likelihood(vae2(), torch.zeros(2, 784), K=4, batch_size=0), ValueError, "batch_size:", ">= 1", "0"),
    case("ll-eps-shape", lambda: vb.log_likelihood(vae2(), torch.zeros(2, 784), K=3, eps=torch.zeros(3, 2, 5)), ValueError, "eps:", "(3, 2, 2)", "(3, 2, 5)"),
    case("ll-proposal", lambda: vb.log_likelihood(vae2(), torch.zeros(2, 784), proposal="uniform"), ValueError, "proposal:", "'posterior'", "'uniform'"),
    case("ll-not-latent", lambda: vb.log_likelihood(ae2(), torch.zeros(2, 784)), TypeError, "model:", "latent variable model", "Autoencoder", "likelihood"),
    case("ll-nan", lambda: vb.log_likelihood(vae2(), torch.full((1, 784), NAN)), ValueError, "x:", "NaN at 784"),
    case("ll-range", lambda: vb.log_likelihood(vae2(), torch.full((1, 784), 2.0), K=2), ValueError, "Bernoulli targets", "[0, 1]"),
    case("ll-float64", lambda: vb.log_likelihood(vae2(), torch.zeros(1, 784, dtype=torch.float64)), TypeError, "x:", "torch.float32"),
    case("rd-distortion", lambda: vb.rate_distortion(vae2(), torch.zeros(2, 784), distortion="mse"), ValueError, "distortion:", "'nats', 'squared_error'", "'mse'"),
    case("rd-shape", lambda: vb.rate_distortion(vae2(), torch.zeros(2, 100)), ValueError, "x:", "(1, 28, 28)", "(2, 100)"),
    case("rd-not-latent", lambda: vb.rate_distortion(ae2(), torch.zeros(2, 784)), TypeError, "model:", "latent variable model", "Autoencoder"),
    case("rd-eps-shape", lambda: vb.rate_distortion(vae2(), torch.zeros(2, 784), eps=torch.zeros(2, 5)), ValueError, "eps"),
    case("calibrated-shape", lambda: vb.calibrated_gaussian_nll(torch.zeros(2, 784), torch.zeros(2, 783)), ValueError, "x", "x_mean", "(2, 784)", "(2, 783)"),
    case("calibrated-1d", lambda: vb.calibrated_gaussian_nll(torch.zeros(784), torch.zeros(784)), ValueError, "x:", "(b, ...)", "(784,)"),
    case("calibrated-int", lambda: vb.calibrated_gaussian_nll(torch.zeros(2, 4, dtype=torch.int64), torch.zeros(2, 4)), TypeError, "x:", "int64"),
    case("calibrated-bernoulli", lambda: vb.CalibratedGaussianLoss()(vae2(), torch.zeros(2, 784), torch.zeros(2, 784)), ValueError, "model:", "likelihood='gaussian'", "'bernoulli'"),
    case("model-elbo-shape", lambda: vb.model_elbo(vae2(), torch.zeros(2, 100)), ValueError, "x:", "(1, 28, 28)", "(2, 100)"),
    case("grid-zdim", lambda: vb.grid_posterior(vb.VAE(z_dim=3, hidden=(8,)), torch.zeros(1, 784)), ValueError, "model:", "2-D latent space", "z_dim=3"),
    case("grid-n", lambda: vb.grid_posterior(vae2(), torch.zeros(1, 784), n=1), ValueError, "n (grid points per axis)", ">= 2"),
    case("grid-lim", lambda: vb.grid_posterior(vae2(), torch.zeros(1, 784), lim=-1.0), ValueError, "lim:", "> 0"),
    case("grid-range", lambda: vb.grid_posterior(vae2(), torch.full((1, 784), 2.0), n=5), ValueError, "Bernoulli targets", "[0, 1]"),
    case("gridkl-shape", lambda: vb.grid_kl(grid(), torch.zeros(3, 2), torch.zeros(3, 2)), ValueError, "mu:", "b = 2", "(3, 2)"),
    case("gridkl-grid", lambda: vb.grid_kl((1, 2), torch.zeros(2, 2), torch.zeros(2, 2)), TypeError, "grid:", "GridPosterior"),
    case("bestdiag-steps", lambda: vb.best_diagonal_gaussian(grid(), steps=-1), ValueError, "steps:", ">= 0", "-1"),
    case("sf-not-callable", lambda: vb.score_function_gradient(3, torch.zeros(2), torch.zeros(2), torch.zeros(5, 2)), TypeError, "f:", "function of z", "int"),
    case("sf-f-shape", lambda: vb.score_function_gradient(lambda z: z, torch.zeros(2), torch.zeros(2), torch.zeros(5, 2)), ValueError, "f:", "shape (5,)", "(5, 2)"),
    case("sf-f-scalar", lambda: vb.score_function_gradient(lambda z: z.sum(), torch.zeros(2), torch.zeros(2), torch.zeros(5, 2)), ValueError, "f:", "shape (5,)", "()"),
    case("rp-eps-shape", lambda: vb.reparameterized_gradient(lambda z: z.sum(-1), torch.zeros(2), torch.zeros(2), torch.zeros(5, 3)), ValueError, "mu, logvar and eps", "(S, d)", "(5, 3)"),
    case("ppca-model", lambda: vb.ppca_em_step(vae2(), torch.zeros(4, 784)), TypeError, "model:", "LinearGaussian", "VAE"),
    case("ppca-x-shape", lambda: vb.ppca_em_step(make_ppca(), torch.zeros(4, 5, dtype=torch.float64)), ValueError, "x:", "(b, 6)", "(4, 5)"),
    case("ppca-x-nan", lambda: vb.ppca_em_step(make_ppca(), torch.full((4, 6), NAN, dtype=torch.float64)), ValueError, "x:", "NaN"),
    case("ppca-elbo-negdef", lambda: vb.ppca_elbo(make_ppca(), torch.zeros(3, 6, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64), -torch.eye(2, dtype=torch.float64)), ValueError, "q_cov:", "positive-definite", "-1.0"),
    case("ppca-elbo-shape", lambda: vb.ppca_elbo(make_ppca(), torch.zeros(3, 6, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64), torch.eye(2, dtype=torch.float64)), ValueError, "q_mean and q_cov", "(3, 2)", "(3, 3)"),
    case("elboloss-beta", lambda: vb.ELBOLoss(beta=-1.0), ValueError, "beta (the KL weight)", ">= 0", "-1.0"),
    case("default-loss", lambda: vb.default_loss(torch.nn.Linear(2, 2)), TypeError, "model:", "default loss", "Linear", "pass loss="),
    # ------------------------------------------------------------------ training
    case("fit-epochs-zero", lambda: vb.fit(ae2(), imgs(), epochs=0), ValueError, "epochs:", ">= 1", "0"),
    case("fit-source-binarize", lambda: vb.fit(ae2(), vb.batches.DataBatches(imgs(), None, 4, False, None), binarize=True),
         ValueError, "binarize:", "not used when data is a BatchSource"),
    case("data-pair-list", lambda: vb.batches.data_pair([1, 2, 3]), TypeError, "data:", "an ImageData", "list"),
    case("fit-epochs-float", lambda: vb.fit(ae2(), imgs(), epochs=2.5), TypeError, "epochs:", "an int", "float"),
    case("fit-steps-float", lambda: vb.fit(ae2(), imgs(), steps=2.5), TypeError, "steps:", "an int", "2.5"),
    case("fit-both", lambda: vb.fit(ae2(), imgs(), epochs=2, steps=5), ValueError, "epochs, steps", "not both", "epochs=2", "steps=5"),
    case("fit-lr-neg", lambda: vb.fit(ae2(), imgs(), lr=-1), ValueError, "lr:", "> 0", "-1"),
    case("fit-lr-str", lambda: vb.fit(ae2(), imgs(), lr="1e-3"), TypeError, "lr:", "a number", "string"),
    case("fit-lr-nan", lambda: vb.fit(ae2(), imgs(), lr=NAN), ValueError, "lr:", "finite"),
    case("fit-batch-zero", lambda: vb.fit(ae2(), imgs(), batch_size=0), ValueError, "batch_size:", ">= 1", "0"),
    case("fit-batch-bool", lambda: vb.fit(ae2(), imgs(), batch_size=True), TypeError, "batch_size:", "an int", "bool"),
    case("fit-seconds-nan", lambda: vb.fit(ae2(), imgs(), max_seconds=NAN), ValueError, "max_seconds:", "finite"),
    case("fit-seconds-zero", lambda: vb.fit(ae2(), imgs(), max_seconds=0), ValueError, "max_seconds:", "> 0"),
    case("fit-schedule", lambda: vb.fit(ae2(), imgs(), schedule="step"), ValueError, "schedule:", "'constant'", "'wsd'", "'step'"),
    case("fit-warmup", lambda: vb.fit(ae2(), imgs(), warmup=1.0), ValueError, "warmup:", "<= 0.99", "1.0"),
    case("fit-fused-str", lambda: vb.fit(ae2(), imgs(), fused="yes"), TypeError, "fused:", "True or False", "yes"),
    case("fit-data-list", lambda: vb.fit(ae2(), [1, 2, 3]), TypeError, "data:", "ImageData", "(inputs, targets)", "list"),
    case("fit-pair-lengths", lambda: vb.fit(ae2(), (torch.zeros(4, 784), torch.zeros(3, 784))), ValueError, "data:", "as many targets as inputs", "4 inputs", "3 targets"),
    case("fit-empty", lambda: vb.fit(ae2(), torch.zeros(0, 1, 28, 28)), ValueError, "data:", "non-empty"),
    case("fit-test-data-list", lambda: vb.fit(ae2(), imgs(8), test_data=[1, 2, 3], progress=False, device="cpu"), TypeError,
         "test_data:", "ImageData", "list"),
    case("fit-test-data-shape", lambda: vb.fit(ae2(), imgs(8), test_data=torch.zeros(4, 1, 14, 14), progress=False, device="cpu"), ValueError,
         "test_data:", "(1, 28, 28)", "(1, 14, 14)"),
    case("fit-test-data-no-targets", lambda: vb.fit(ae2(), (imgs(8), imgs(8)), test_data=imgs(4), progress=False, device="cpu"), ValueError,
         "test_data:", "(inputs, targets) pairs", "plain examples"),
    case("fit-test-data-range", lambda: vb.fit(vae2(), imgs(8), binarize=True, test_data=imgs(4) * 3, progress=False, device="cpu"), ValueError,
         "test_data", "[0, 1]"),
    case("fit-device-name", lambda: vb.fit(ae2(), imgs(8), device="tpu", progress=False), ValueError, "device:", "'cpu'", "'cuda'", "'tpu'"),
    case("fit-device-int", lambda: vb.fit(ae2(), imgs(8), device=3, progress=False), TypeError, "device:", "torch.device", "int"),
    case("loglik-empty", lambda: vb.log_likelihood(vae2(), imgs(0), K=5), ValueError, "x:", "at least one example", "(0, 1, 28, 28)"),
    case("elbo-empty", lambda: vb.model_elbo(vae2(), imgs(0)), ValueError, "x:", "at least one example"),
    case("fit-nan-data", lambda: vb.fit(ae2(), _nan_data(), progress=False, device="cpu"), ValueError, "data (inputs)", "NaN at 1"),
    case("fit-nan-targets", lambda: vb.fit(ae2(), (imgs(4), imgs(4, value=NAN)), progress=False, device="cpu"), ValueError, "data (targets)", "NaN"),
    case("fit-uint8", lambda: vb.fit(ae2(), imgs().mul(255).to(torch.uint8)), TypeError, "data (inputs)", "x.float() / 255"),
    case("fit-float64", lambda: vb.fit(ae2(), imgs(dtype=torch.float64), progress=False, device="cpu"), TypeError, "x:", "torch.float32", "float64"),
    case("fit-binarize-range", lambda: vb.fit(vae2(), imgs() * 2, binarize=True, progress=False, device="cpu"), ValueError, "binarize=True needs grey levels", "[0, 1]"),
    case("fit-late-targets", lambda: vb.fit(vae2(), _targets_out_of_range(), epochs=1, batch_size=64, progress=False, device="cpu"), ValueError, "Bernoulli targets", "[0, 1]", "1.7"),
    case("fit-pairs-and-corrupt", lambda: vb.fit(ae2(), (imgs(), imgs()), corrupt=lambda x, g: x), ValueError, "binarize, corrupt", "(inputs, targets) pairs"),
    case("fit-corrupt-not-callable", lambda: vb.fit(ae2(), imgs(), corrupt=0.5), TypeError, "corrupt:", "corrupt(x, generator)", "float"),
    case("fit-callback-object", lambda: vb.fit(ae2(), imgs(), callbacks=[lambda s: None]), TypeError, "callbacks[0]:", "vaebook.Callback", "function"),
    case("fit-callbacks-single", lambda: vb.fit(ae2(), imgs(), callbacks=vb.KLWarmup()), TypeError, "callbacks:", "a list of vaebook.Callback", "KLWarmup"),
    case("fit-loss-tensor", lambda: vb.fit(ae2(), imgs(), loss=_bad_loss, progress=False, device="cpu"), TypeError, "loss:", "LossOutput", "tensor of shape ()"),
    case("fit-loss-not-callable", lambda: vb.fit(ae2(), imgs(), loss="mse"), TypeError, "loss:", "a loss function", "string"),
    case("fit-diverges", _exploding_fit, FloatingPointError, "training diverged", "largest |weight|", "lower learning rate"),
    case("fit-labels-range", lambda: _bad_labels(torch.tensor([0, 1, 2, 200, 0, 1, 2, 3])), ValueError, "target (class labels)", "0 to 9", "200"),
    case("fit-labels-dtype", lambda: _bad_labels(torch.zeros(8, dtype=torch.bool)), TypeError, "data (targets)", "int64 class labels", "bool"),
    case("fit-vae-targets", lambda: vb.fit(vae2(), (imgs(4), imgs(4).flip(0)), progress=False, device="cpu"), ValueError, "target:", "reproduce its input"),
    case("fit-target-size", lambda: vb.fit(ae2(), (imgs(4), torch.rand(4, 1, 14, 14)), progress=False, device="cpu"), ValueError, "target:", "(4, 1, 28, 28)", "(4, 1, 14, 14)"),
    case("gaussian-c-negative", lambda: vb.Gaussian(c=-1.0), ValueError, "c (the Gaussian's variance)", "> 0", "-1"),
    case("gaussian-c-vector", lambda: vb.Gaussian(c=torch.ones(3)), ValueError, "c (the Gaussian's variance)", "a scalar", "(3,)"),
    case("likelihood-name", lambda: vb.likelihoods.likelihood("poisson"), ValueError, "likelihood:", "bernoulli", "poisson"),
    case("bernoulli-targets", lambda: vb.Bernoulli().log_prob(torch.full((2, 4), 2.0), torch.zeros(2, 4)), ValueError, "x (Bernoulli targets)", "[0, 1]"),
    case("likelihood-abstract", lambda: vb.Likelihood().log_prob(torch.zeros(2, 4), torch.zeros(2, 4)), NotImplementedError, "Likelihood.log_prob", "subclass"),
    case("continuous-bernoulli-grey", lambda: vb.ContinuousBernoulli().mean("logits"), TypeError, "out (the decoder's output)", "str"),
    case("elbo-loss-warmup", lambda: vb.ELBOLoss(warmup=1.5), ValueError, "warmup (a fraction of training)", "<= 1", "1.5"),
    case("kl-warmup-fraction", lambda: vb.KLWarmup(0.0), ValueError, "fraction:", "> 0"),
    case("kl-warmup-loss", lambda: vb.fit(ae2(), imgs(), callbacks=[vb.KLWarmup()], progress=False, device="cpu"), TypeError, "KLWarmup", "ELBOLoss", "ReconstructionLoss"),
    case("train-vae-model", lambda: vb.train_vae(ae2(), imgs(), steps=2), TypeError, "vae:", "vaebook.VAE", "Autoencoder"),
    case("train-vae-length", lambda: vb.train_vae(vae2(), imgs()), ValueError, "steps, max_seconds", "got neither"),
    case("train-vae-epochs", lambda: vb.train_vae(vae2(), imgs(), steps=2, epochs=3), TypeError, "epochs:", "steps="),
    case("train-budget-vae-length", lambda: vb.train_budget_vae(imgs()), ValueError, "steps, max_seconds", "got neither"),
    case("train-budget-vae-seed", lambda: vb.train_budget_vae(imgs(), steps=1, seed=0.5), TypeError, "seed:", "an int", "float"),
    case("train-budget-vae-pairs", lambda: vb.train_budget_vae((imgs(), imgs()), steps=1), ValueError, "data:", "images", "pairs"),
    case("train-2d-vae-data", lambda: vb.train_2d_vae(imgs()), TypeError, "data:", "ImageData", "tensor"),
    case("train-2d-vae-n", lambda: vb.train_2d_vae(vb.ImageData(imgs(), torch.zeros(2, dtype=torch.long), "x"), n=0), ValueError, "n:", ">= 1"),
    case("evaluate-batch-zero", lambda: vb.evaluate(ae2(), imgs(), batch_size=0), ValueError, "batch_size:", ">= 1", "0"),
    case("evaluate-batch-neg", lambda: vb.evaluate(ae2(), imgs(), batch_size=-5), ValueError, "batch_size:", ">= 1", "-5"),
    case("evaluate-nan", lambda: vb.evaluate(ae2(), imgs(value=INF)), ValueError, "data (inputs)", "infinity"),
    case("seed-str", lambda: vb.seed_everything("0"), TypeError, "seed:", "an int", "string"),
    # ------------------------------------------------------------------ checkpoints
    case("save-foreign", lambda: vb.save(torch.nn.Linear(2, 2), "x.pt"), TypeError, "model:", "vaebook model", "Linear"),
    case("save-path-int", lambda: vb.save(ae2(), 3), TypeError, "path:", "file path", "int"),
    case("load-folder", lambda: vb.load(Path(__file__).parent), vb.CheckpointError, "no checkpoint at", "it is a folder"),
    case("load-path-none", lambda: vb.load(None), TypeError, "path:", "file path", "NoneType"),
    case("build-class", lambda: vb.build_model("GAN", {}), ValueError, "class_name:", "'VAE'", "'GAN'"),
    # ------------------------------------------------------------------ metrics and baselines
    case("psnr-shapes", lambda: vb.psnr(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5)), ValueError, "x and reference", "(2, 1, 4, 4)", "(2, 1, 4, 5)"),
    case("psnr-range-nan", lambda: vb.psnr(imgs(), imgs(), data_range=NAN), ValueError, "data_range:", "finite"),
    case("psnr-range-zero", lambda: vb.psnr(imgs(), imgs(), data_range=0), ValueError, "data_range:", "> 0"),
    case("psnr-nan-image", lambda: vb.psnr(imgs(value=NAN), imgs()), ValueError, "x:", "NaN"),
    case("psnr-uint8", lambda: vb.psnr(imgs().to(torch.uint8), imgs().to(torch.uint8)), TypeError, "x:", "floating-point", "uint8"),
    case("realism-logits", lambda: vb.realism_score(imgs(10) * 5 - 2, imgs(10)), ValueError, "grey levels; decode with mean_image"),
    case("realism-size", lambda: vb.realism_score(torch.rand(10, 1, 32, 32), imgs(10)), ValueError, "images:", "28x28 digits", "(10, 1, 32, 32)"),
    case("realism-few", lambda: vb.realism_score(imgs(3), imgs(10)), ValueError, "images and reference", "n_neighbors=3", "got 3 and 10"),
    case("realism-neighbors", lambda: vb.realism_score(imgs(10), imgs(10), n_neighbors=0), ValueError, "n_neighbors:", ">= 1"),
    case("features-batch", lambda: vb.classifier_features(imgs(2), batch_size=0), ValueError, "batch_size:", ">= 1"),
    case("denoise-method", lambda: B.denoise(imgs(), "wiener"), ValueError, "method", "wiener"),
    case("denoise-nan", lambda: B.denoise(imgs(value=NAN), "gaussian"), ValueError, "NaN"),
    case("pca-components-zero", lambda: B.fit_pca(imgs(8), 0), ValueError, "n_components:", "from 1 to 8", "0"),
    case("pca-components-big", lambda: B.fit_pca(imgs(8), 9), ValueError, "n_components:", "from 1 to 8", "9"),
    case("pca-one-example", lambda: B.fit_pca(imgs(1), 1), ValueError, "x:", "at least two examples"),
    case("pca-int", lambda: B.fit_pca(imgs(4).long(), 2), TypeError, "x:", "floating-point"),
    case("pca-nan", lambda: B.fit_pca(torch.full((3, 1, 2, 2), NAN), 1), ValueError, "x:", "NaN"),
    case("pca-project-shape", lambda: B.fit_pca(imgs(8), 2)(torch.rand(2, 1, 6, 5)), ValueError, "x:", "(b, 1, 28, 28)", "(2, 1, 6, 5)"),
    case("pca-project-components", lambda: B.fit_pca(imgs(8), 2)(imgs(), n_components=5), ValueError, "n_components:", "from 0 to 2", "5"),
    case("tune-all-filters", lambda: B.tune_all(imgs(), imgs(), filters=("tv", "wiener")), ValueError, "filters:", "'gaussian'", "'wiener'"),
    case("tune-all-pca", lambda: B.tune_all(imgs(), imgs(), filters=(), pca="pca"), TypeError, "pca:", "PCAProjection", "string"),
    case("mean-psnr-fn", lambda: B.mean_psnr(imgs(), imgs(), imgs()), TypeError, "denoiser:", "function or model", "tensor"),
    # ------------------------------------------------------------------ diagnostics: aggregate posterior, decomposition, active units
    case("aggpost-z-dim", lambda: vb.log_aggregate_posterior(torch.zeros(4, 3), torch.zeros(5, 2), torch.zeros(5, 2)), ValueError, "z:", "(..., 2)", "(4, 3)"),
    case("aggpost-mu-1d", lambda: vb.log_aggregate_posterior(torch.zeros(4, 2), torch.zeros(2), torch.zeros(2)), ValueError, "mu:", "2 dimensions", "(2,)"),
    case("aggpost-nan-mu", lambda: vb.log_aggregate_posterior(torch.zeros(4, 2), torch.tensor([[NAN, 0.0]]), torch.zeros(1, 2)), ValueError, "mu:", "finite", "NaN at 1"),
    case("aggpost-dtypes", lambda: vb.log_aggregate_posterior(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(5, 2), torch.zeros(5, 2)), TypeError, "z:", "torch.float32", "float64"),
    case("aggpost-empty", lambda: vb.log_aggregate_posterior(torch.zeros(4, 2), torch.zeros(0, 2), torch.zeros(0, 2)), ValueError, "mu:", "at least one example", "(0, 2)"),
    case("aggrid-3d", lambda: vb.aggregate_posterior_grid(torch.zeros(5, 3), torch.zeros(5, 3)), ValueError, "mu:", "2-D codes", "(5, 3)"),
    case("aggrid-lim", lambda: vb.aggregate_posterior_grid(torch.zeros(5, 2), torch.zeros(5, 2), lim=0.0), ValueError, "lim:", "> 0"),
    case("aggrid-n", lambda: vb.aggregate_posterior_grid(torch.zeros(5, 2), torch.zeros(5, 2), n=1), ValueError, "n (grid points per axis)", ">= 2", "1"),
    case("aggrid-shapes", lambda: vb.aggregate_posterior_grid(torch.zeros(5, 2), torch.zeros(4, 2)), ValueError, "mu and logvar", "(5, 2)", "(4, 2)"),
    case("decomp-recon-shape", lambda: vb.elbo_decomposition(torch.zeros(4), torch.zeros(5, 2), torch.zeros(5, 2)), ValueError, "recon:", "(5,)", "(4,)"),
    case("decomp-recon-int", lambda: vb.elbo_decomposition(torch.zeros(5, dtype=torch.long), torch.zeros(5, 2), torch.zeros(5, 2)), TypeError, "recon:", "floating-point"),
    case("decomp-recon-nan", lambda: vb.elbo_decomposition(torch.full((5,), NAN), torch.zeros(5, 2), torch.zeros(5, 2)), ValueError, "recon:", "NaN at 5"),
    case("decomp-prior", lambda: vb.elbo_decomposition(torch.zeros(5), torch.zeros(5, 2), torch.zeros(5, 2), log_prior="standard"), TypeError, "log_prior:", "a function of codes", "string"),
    case("decomp-prior-shape", lambda: vb.elbo_decomposition(torch.zeros(5), torch.zeros(5, 2), torch.zeros(5, 2), log_prior=lambda z: z), ValueError, "log_prior:", "one log-density per grid code", "(201, 201, 2)"),
    case("decomp-small-grid", lambda: vb.elbo_decomposition(torch.zeros(5), torch.full((5, 2), 3.0), torch.zeros(5, 2), lim=1.0), ValueError, "lim, n:", "holds the aggregate posterior", "mass"),
    case("mi-eps-shape", lambda: vb.mutual_information(torch.zeros(5, 2), torch.zeros(5, 2), eps=torch.zeros(5, 3)), ValueError, "eps:", "(5, 2)", "(5, 3)"),
    case("mi-eps-dtype", lambda: vb.mutual_information(torch.zeros(5, 2), torch.zeros(5, 2), eps=torch.zeros(5, 2, dtype=torch.float64)), TypeError, "eps:", "torch.float32", "float64"),
    case("mi-logvar-dtype", lambda: vb.mutual_information(torch.zeros(5, 2), torch.zeros(5, 2, dtype=torch.float64)), TypeError, "logvar:", "torch.float32", "float64"),
    case("mi-list", lambda: vb.mutual_information([[0.0, 0.0]], [[0.0, 0.0]]), TypeError, "mu:", "torch.Tensor", "list"),
    case("kl-per-dim-shapes", lambda: vb.kl_per_dimension(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "mu and logvar", "(2, 3)", "(2, 4)"),
    case("kl-per-dim-1d", lambda: vb.kl_per_dimension(torch.zeros(3), torch.zeros(3)), ValueError, "mu:", "2 dimensions", "(3,)"),
    case("activity-one", lambda: vb.unit_activity(torch.zeros(1, 4)), ValueError, "mu:", "at least two examples", "(1, 4)"),
    case("activity-nan", lambda: vb.unit_activity(torch.tensor([[0.0], [NAN]])), ValueError, "mu:", "NaN at 1"),
    case("active-threshold", lambda: vb.active_units(torch.zeros(3, 2), threshold=-0.1), ValueError, "threshold:", ">= 0", "-0.1"),
    case("active-threshold-str", lambda: vb.active_units(torch.zeros(3, 2), threshold="0.01"), TypeError, "threshold:", "a number", "string"),
    case("free-bits-kl-1d", lambda: vb.free_bits_kl(torch.zeros(4), 0.5), ValueError, "kl:", "2 dimensions", "(4,)"),
    case("free-bits-kl-lam", lambda: vb.free_bits_kl(torch.zeros(4, 2), -0.5), ValueError, "free_bits (nats per latent coordinate)", ">= 0", "-0.5"),
    case("elboloss-free-bits", lambda: vb.ELBOLoss(free_bits=-1.0), ValueError, "free_bits (nats per latent coordinate)", ">= 0", "-1.0"),
    case("elboloss-free-bits-str", lambda: vb.ELBOLoss(free_bits="1"), TypeError, "free_bits (nats per latent coordinate)", "a number", "string"),
    case("elboloss-free-bits-prior", lambda: vb.ELBOLoss(free_bits=0.5)(vae2(prior="mixture"), imgs(), imgs()), ValueError, "free_bits:", "standard normal prior", "learned prior"),
    # ------------------------------------------------------------------ importance-weighted bounds
    case("cb-range", lambda: vb.continuous_bernoulli_log_prob(torch.tensor([[0.0, 1.5]]), torch.zeros(1, 2)), ValueError, "x (grey levels)", "[0, 1]", "1.5"),
    case("cb-logits-shape", lambda: vb.continuous_bernoulli_log_prob(torch.zeros(1, 2), torch.zeros(1, 3)), ValueError, "logits:", "(1, 2)", "(1, 3)"),
    case("log-weights-k0", lambda: vb.log_weights(vb.VAE(z_dim=2, hidden=(8,)), torch.rand(2, 784), 0), ValueError, "K (the number of importance samples)", ">= 1", "got 0"),
    case("log-weights-proposal", lambda: vb.log_weights(vb.VAE(z_dim=2, hidden=(8,)), torch.rand(2, 784), 3, proposal="uniform"), ValueError, "proposal", "'posterior', 'prior'", "'uniform'"),
    case("log-weights-model", lambda: vb.log_weights("model", torch.rand(2, 784), 3), TypeError, "model:", "latent variable model", "str"),
    case("iwae-bound-1d", lambda: vb.iwae_bound(torch.zeros(5)), ValueError, "log_w (log-weights, (K, b))", "2 dimensions", "(5,)"),
    case("iwae-bound-int", lambda: vb.iwae_bound(torch.zeros(3, 2, dtype=torch.long)), TypeError, "log_w", "floating-point"),
    case("iwae-bound-empty", lambda: vb.iwae_bound(torch.zeros(0, 3)), ValueError, "log_w", "at least one sample", "(0, 3)"),
    case("iwae-bound-nan", lambda: vb.iwae_bound(torch.tensor([[NAN, 0.0]])), ValueError, "log_w", "NaN at 1"),
    case("iwae-objective-estimator", lambda: vb.iwae_objective(vae2(), torch.zeros(2, 784), 3, estimator="vimco"), ValueError, "estimator:", "'iwae'", "'vimco'"),
    case("iwae-objective-k", lambda: vb.iwae_objective(vae2(), torch.zeros(2, 784), 0), ValueError, "K (the number of importance samples)", ">= 1"),
    case("iwae-objective-eps", lambda: vb.iwae_objective(vae2(), torch.zeros(2, 784), 3, estimator="dreg", eps=torch.zeros(3, 2, 5)), ValueError, "eps:", "(3, 2, 2)", "(3, 2, 5)"),
    case("iwae-objective-not-latent", lambda: vb.iwae_objective(ae2(), torch.zeros(2, 784), 3), TypeError, "model:", "latent variable model", "Autoencoder"),
    case("iwae-loss-k", lambda: vb.IWAELoss(K=0), ValueError, "K (the number of importance samples)", ">= 1", "0"),
    case("iwae-loss-k-float", lambda: vb.IWAELoss(K=2.5), TypeError, "K (the number of importance samples)", "an int", "float"),
    case("iwae-loss-estimator", lambda: vb.IWAELoss(estimator="rws"), ValueError, "estimator:", "'dreg'", "'rws'"),
    case("iwae-loss-target", lambda: vb.IWAELoss()(vae2(), imgs(2), 0.5 * imgs(2)), ValueError, "target:", "reproduce its input"),
    case("bound-grads-repeats", lambda: vb.bound_gradients(vae2(), torch.zeros(2, 784), 3, 1), ValueError, "repeats (independent estimates)", ">= 2", "1"),
    case("bound-grads-nan", lambda: vb.bound_gradients(vae2(), torch.full((1, 784), NAN), 3, 2), ValueError, "x:", "NaN at 784"),
    case("bound-grads-estimator", lambda: vb.bound_gradients(vae2(), torch.zeros(1, 784), 3, 2, estimator="score"), ValueError, "estimator:", "'score'"),
    case("bound-grads-chunk", lambda: vb.bound_gradients(vae2(), torch.zeros(1, 784), 3, 2, max_samples=0), ValueError, "max_samples:", ">= 1"),
    case("snr-one-estimate", lambda: vb.gradient_snr(torch.zeros(1, 3)), ValueError, "grads", "at least 2 estimates", "(1, 3)"),
    case("snr-int", lambda: vb.gradient_snr(torch.zeros(3, 2, dtype=torch.long)), TypeError, "grads", "floating-point"),
    case("snr-nan", lambda: vb.gradient_snr(torch.tensor([[NAN], [0.0]])), ValueError, "grads", "NaN at 1"),
    case("snr-signal-shape", lambda: vb.gradient_snr(torch.zeros(4, 3), signal=torch.zeros(2)), ValueError, "signal (the mean gradient)", "(3,)", "(2,)"),
    # ------------------------------------------------------------------ plots, widgets, results
    case("grid-nrow", lambda: plot.grid_image(imgs(), nrow=0), ValueError, "nrow:", ">= 1", "0"),
    case("grid-shape", lambda: plot.grid_image(torch.rand(2, 3, 28, 28)), ValueError, "images:", "grey images", "(2, 3, 28, 28)"),
    case("image-grid-empty", lambda: plot.image_grid(torch.zeros(0, 1, 28, 28)), ValueError, "images:", "at least one image"),
    case("compare-rows-empty", lambda: plot.compare_rows({}), ValueError, "rows:", "at least one row"),
    case("scatter-shape", lambda: plot.latent_scatter(torch.zeros(5, 3)), ValueError, "z:", "(n, 2)", "(5, 3)"),
    case("scatter-labels", lambda: plot.latent_scatter(torch.zeros(5, 2), torch.zeros(4, dtype=torch.long)), ValueError, "labels:", "one per code", "(4,)"),
    case("manifold-n", lambda: plot.manifold(lambda z: torch.zeros(len(z), 1, 28, 28), n=0), ValueError, "n:", ">= 1"),
    case("curves-key", lambda: plot.training_curves(vb.History(), keys=("loss",)), ValueError, "keys:", "no metric 'loss'"),
    case("curves-no-keys", lambda: plot.training_curves(vb.History(), keys=()), ValueError, "keys:", "one or more metric names"),
    case("contours-grid", lambda: plot.posterior_contours(torch.zeros(5), torch.zeros(4), torch.zeros(4, 5)), ValueError,
         "log_density:", "(5, 4)", "(4, 5)"),
    case("contours-all-neginf", lambda: plot.posterior_contours(torch.zeros(3), torch.zeros(3), torch.full((3, 3), -INF)), ValueError,
         "log_density:", "-inf everywhere"),
    case("contours-nan", lambda: plot.posterior_contours(torch.zeros(3), torch.zeros(3), torch.tensor([[0.0, NAN, 0.0]] * 3)), ValueError,
         "log_density:", "NaN"),
    case("contours-1d", lambda: plot.posterior_contours(torch.zeros(3), torch.zeros(3), torch.zeros(9)), ValueError, "log_density:"),
    case("contours-levels", lambda: plot.posterior_contours(torch.zeros(3), torch.zeros(3), torch.zeros(3, 3), levels=0), ValueError, "levels:", ">= 1"),
    case("quiz-answer", lambda: vb.widgets.quiz("Q?", ["a", "b"], 2, ["x", "y"]), ValueError, "answer", "0 to 1", "2"),
    case("quiz-explanations", lambda: vb.widgets.quiz("Q?", ["a", "b"], 0, ["x"]), ValueError, "explanation"),
    case("explorer-zdim", lambda: vb.widgets.latent_explorer(vb.VAE(z_dim=3, hidden=(8,))), ValueError, "z_dim=2"),
    case("sliders-zdim", lambda: vb.widgets.latent_sliders(vb.VAE(z_dim=3, hidden=(8,))), ValueError, "z_dim=3"),
    case("record-name", lambda: vb.record("not a name", 1.0), ValueError, "name:", "letters, digits and underscores"),
    case("record-str", lambda: vb.record("x", "text"), TypeError, "value:", "a number", "string"),
    case("record-nan", lambda: vb.record("x", NAN), ValueError, "value:", "finite"),
    case("record-tensor", lambda: vb.record("x", torch.ones(3)), TypeError, "value:", "a number", "tensor"),
    # ------------------------------------------------------------------ latent diffusion (chapter 16)
    case("ld-scale-constant", lambda: vb.latent_diffusion.latent_scale(torch.ones(4, 4, 7, 7)), ValueError, "z:", "vary", "standard deviation 0"),
    case("ld-scale-nan", lambda: vb.latent_diffusion.latent_scale(torch.tensor([0.0, NAN])), ValueError, "z:", "NaN"),
    case("ld-scale-one", lambda: vb.latent_diffusion.latent_scale(torch.ones(1)), ValueError, "z:", "at least two"),
    case("ld-scale-negative", lambda: vb.latent_diffusion.scale_latents(torch.ones(2, 4, 7, 7), -0.5), ValueError, "scale:", "-0.5"),
    case("ld-unscale-inf", lambda: vb.latent_diffusion.unscale_latents(torch.ones(2, 4, 7, 7), INF), ValueError, "scale:", "finite"),
    case("ld-decode-shape", lambda: vb.latent_diffusion.decode(vb.vq.GridGaussianVAE(code_dim=4), torch.zeros(2, 8, 7, 7)), ValueError,
         "z:", "(b, 4, 7, 7)", "(2, 8, 7, 7)"),
    case("ld-encode-model", lambda: vb.latent_diffusion.encode(vae2(), imgs()), TypeError, "vae:", "GridGaussianVAE", "VAE"),
    case("ld-pair-grid", lambda: vb.latent_diffusion.LatentDiffusion(vb.vq.GridGaussianVAE(code_dim=4), vb.diffusion.DDPM(image_shape=(8, 7, 7)), 0.5),
         ValueError, "ddpm:", "(4, 7, 7)", "(8, 7, 7)"),
]


@pytest.mark.parametrize("c", CASES)
def test_bad_input_gets_a_clear_error(c: Case):
    with pytest.raises(c.error) as info:
        c.call()
    message = str(info.value)
    missing = [w for w in c.words if w not in message]
    assert not missing, f"{c.id}: the message lacks {missing}: {message!r}"


def test_the_table_covers_the_kinds_of_bad_input_the_issue_found():
    assert len(CASES) >= 150, len(CASES)


# --------------------------------------------------------------------------- files named by the user
def test_load_mnist_refuses_a_broken_root_that_the_user_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"root: .* holds only part of MNIST; missing train-labels-idx1-ubyte, t10k-labels-idx1-ubyte"):
        vb.load_mnist("train", root=tmp_path)
    a_file = tmp_path / "mnist.zip"
    a_file.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=r"root: expected a folder holding MNIST/raw/, got the file"):
        vb.load_mnist("train", root=a_file)


def test_mnist_labels_outside_0_to_9_are_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 3), ("t10k", 2)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(bytes((0, 0, 8, 3)) + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(n * 784))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(bytes((0, 0, 8, 1)) + n.to_bytes(4, "big") + bytes([1, 200, 3][:n]))
    with pytest.raises(ValueError, match="expected digit labels 0 to 9, found 200"):
        vb.load_mnist("train", root=tmp_path)


def test_fit_checks_test_data_before_the_first_step():
    model = ae2()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TypeError, match="test_data:"):
        vb.fit(model, imgs(8), steps=3, batch_size=4, test_data=[1, 2, 3], progress=False, device="cpu")
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))  # not one step was taken


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_fit_on_a_gpu_this_machine_lacks_says_so():
    with pytest.raises(ValueError, match=r"device: got 'cuda', but this machine has no CUDA GPU .* use 'cpu'"):
        vb.fit(ae2(), imgs(8), steps=1, device="cuda", progress=False)


def test_evaluate_restores_the_training_mode_when_the_loss_raises():
    model = ae2().train()

    def broken(model, x, target):
        raise RuntimeError("the loss broke")

    with pytest.raises(RuntimeError, match="the loss broke"):
        vb.evaluate(model, imgs(4), loss=broken)
    assert model.training  # as it came


def test_load_says_what_is_wrong_with_the_file_or_the_call(tmp_path):
    good = tmp_path / "good.pt"
    vb.save(ae2(), good)
    with pytest.raises(ValueError, match=r"map_location: expected 'cpu', .* got 'tpu'"):  # the call, not the file
        vb.load(good, map_location="tpu")
    payload = torch.load(good, weights_only=True)
    payload["state_dict"] = [1, 2]
    bad = tmp_path / "list.pt"
    torch.save(payload, bad)
    with pytest.raises(vb.CheckpointError, match=r"list.pt: expected its 'state_dict' to be a dict of tensors, got a list"):
        vb.load(bad)


def test_save_into_a_path_that_cannot_be_written_names_that_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "model.pt"
    with pytest.raises(OSError, match=re.escape(str(target.parent))):
        vb.save(ae2(), target)
    folder = tmp_path / "is_a_folder.pt"
    folder.mkdir()
    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(folder))}:"):
        vb.save(ae2(), folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "is_a_folder.pt"]  # no temporary left


@pytest.mark.parametrize("content, words", [
    ("{not json", ("not.ipynb", "not valid JSON")),
    ("[1, 2]", ("not.ipynb", "not a notebook", "list")),
])
def test_authoring_command_lines_name_the_broken_notebook(tmp_path, content, words):
    import subprocess
    import sys

    nb = tmp_path / "not.ipynb"
    nb.write_text(content)
    out = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "normalize", str(nb)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in out.stderr, out.stderr
    assert nb.read_text() == content  # left as it was
    d = tmp_path / "folder.ipynb"
    d.mkdir()
    out = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "normalize", str(d)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "folder.ipynb" in out.stderr and "not a file" in out.stderr, out.stderr


def test_authoring_commands_name_the_file_that_is_wrong(tmp_path):
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    book = tmp_path / "course"
    (book / "book").mkdir(parents=True)
    shutil.copy2(root / "_toc.yml", book / "_toc.yml")
    (book / "_config.yml").write_bytes((root / "_config.yml").read_bytes().replace(b"# The course", b"# Th\xe9 course"))  # Latin-1
    out = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "bootstrap", "--root", str(book)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "_config.yml: expected UTF-8 text, got byte 0xe9" in out.stderr, out.stderr
    nb = json.loads((root / "book" / "05_dlvm.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "### END SOLUTION" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace("### END SOLUTION", "")  # a BEGIN without its END
    (book / "book" / "05_dlvm.ipynb").write_text(json.dumps(nb))
    out = subprocess.run([sys.executable, "-m", "vaebook.authoring.assign", str(book / "book"), "--out", str(tmp_path / "student")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert "05_dlvm.ipynb: cell " + cell["id"] in out.stderr and "without a matching" in out.stderr, out.stderr
    assert not (tmp_path / "student").exists()  # nothing half-written


def test_gaussian_kl_is_never_negative_for_tiny_log_variances():
    logvar = torch.tensor([[1e-8, -1e-8, 3e-8, 1e-7]])
    assert bool((vb.gaussian_kl(torch.zeros_like(logvar), logvar) >= 0).all())
    assert vb.gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_init_output_bias_of_an_empty_batch_leaves_the_bias_alone():
    ae = ae2()
    before = [p.clone() for p in ae.parameters()]
    with pytest.raises(ValueError):
        ae.init_output_bias(torch.zeros(0, 1, 28, 28))
    assert all(torch.equal(a, b) for a, b in zip(before, ae.parameters(), strict=True))
    assert not any(torch.isnan(p).any() for p in ae.parameters())


def test_squared_error_of_integer_images_is_refused_not_wrapped():
    """uint8 images would wrap around (255 - 0 squared is 4 in uint8); the error says how to convert."""
    x = torch.tensor([[255]], dtype=torch.uint8)
    with pytest.raises(TypeError, match="floating-point"):
        vb.reconstruction_error(x, torch.zeros_like(x))


def test_every_public_function_of_the_api_page_has_a_row():
    """Each public callable re-exported at the top level appears in at least one row of the table."""
    rows = " ".join(json.dumps(p.values[0].id) for p in CASES) + " " + open(__file__).read()
    skip = {"default_data_root", "default_device", "digit_classifier", "History", "Callback", "TrainState", "ProgressBar",
            "TimeBudget", "ELBO", "GridPosterior", "BoundGradients", "RealismScore", "OfflineDataWarning", "LossOutput", "VAEOutput",
            "LatentModel", "AEConfig", "VAEConfig", "SRConfig", "ClassifierConfig", "ReconstructionLoss", "CrossEntropyLoss",
            "NATURAL_IMAGE_NAMES", "CheckpointError", "baselines", "checks", "plot", "widgets",
            "diffusion", "labels", "latent_diffusion", "priors", "vq", "callbacks", "likelihoods", "progress", "recipes", "LAYERS", "AggregatePosterior", "ELBODecomposition", "RateDistortion"}  # modules and result records
    missing = [name for name in vb.__all__ if name not in skip and f"vb.{name}" not in rows]
    assert not missing, f"no bad-input row calls {missing}"
    assert os.path.basename(__file__) == "test_bad_input.py"
