"""baselines.py: classical denoising filters, validation tuning, and PCA projection, checked against oracles."""

import math

import numpy as np
import pytest
import torch

import vaebook as vb
from vaebook import baselines as B


def _smooth_images(n: int = 6, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Smooth images in [0.2, 0.8]: a few random low-frequency waves each (the easy case for every filter)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    imgs = []
    for _ in range(n):
        a, b, c = (torch.rand(3, generator=g) * 3 + 0.5).tolist()
        phase = float(torch.rand(1, generator=g)) * math.pi
        imgs.append(0.5 + 0.3 * torch.sin(a * xx + b * yy + phase) * torch.cos(c * yy))
    return torch.stack(imgs).unsqueeze(1)  # (n, 1, size, size)


# --------------------------------------------------------------------------- denoise: oracles
@pytest.mark.parametrize(
    "method, params",
    [("gaussian", {"sigma": 1.5}), ("median", {"size": 3}), ("nlm", {"h": 0.1}), ("tv", {"weight": 0.2})],
)
def test_every_filter_leaves_a_constant_image_unchanged(method, params):
    x = torch.full((3, 1, 16, 20), 0.37)
    out = B.denoise(x, method, **params)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_gaussian_blur_matches_a_direct_convolution_away_from_the_border():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 24, 24, generator=g, dtype=torch.float64)
    s = 1.0
    r = 4  # scipy truncates the kernel at 4 standard deviations
    k1 = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / s) ** 2)
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).view(1, 1, 2 * r + 1, 2 * r + 1)  # separable 2-D Gaussian
    ref = torch.nn.functional.conv2d(x, kernel)  # valid part only: (b, 1, 24 - 2r, 24 - 2r)
    out = B.denoise(x, "gaussian", sigma=s, clip=False)[:, :, r:-r, r:-r]
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_gaussian_blur_does_not_mix_images_of_a_batch():
    x = torch.zeros(3, 1, 12, 12)
    x[1] = 1.0
    out = B.denoise(x, "gaussian", sigma=3.0)
    torch.testing.assert_close(out[0], torch.zeros(1, 12, 12))
    torch.testing.assert_close(out[1], torch.ones(1, 12, 12))


def test_median_removes_isolated_salt_and_pepper_pixels_exactly():
    x = torch.full((2, 1, 20, 20), 0.5)
    noisy = x.clone()
    noisy[0, 0, 5, 5] = 1.0  # isolated salt
    noisy[0, 0, 12, 3] = 0.0  # isolated pepper
    noisy[1, 0, 0, 0] = 1.0  # in a corner
    out = B.denoise(noisy, "median", size=3)
    torch.testing.assert_close(out, x)


@pytest.mark.parametrize("method", ["nlm", "tv", "gaussian"])
def test_smoothing_filters_improve_psnr_on_a_noisy_smooth_image(method):
    clean = _smooth_images()
    noisy = vb.add_gaussian_noise(clean, 0.1, generator=torch.Generator().manual_seed(2))
    params = {"nlm": {"h": 0.08, "sigma": 0.1}, "tv": {"weight": 0.1}, "gaussian": {"sigma": 1.5}}[method]
    before = vb.psnr(noisy, clean).mean()
    after = vb.psnr(B.denoise(noisy, method, **params), clean).mean()
    assert after > before + 5, (method, before.item(), after.item())


def test_clip_keeps_outputs_in_the_unit_interval_and_can_be_turned_off():
    x = torch.full((1, 1, 8, 8), 1.4)
    assert B.denoise(x, "gaussian", sigma=1.0).max() == 1.0
    assert B.denoise(x, "gaussian", sigma=1.0, clip=False).max() > 1.3


def test_denoise_keeps_dtype_and_handles_an_empty_batch():
    x = torch.rand(2, 1, 10, 10, dtype=torch.float64)
    assert B.denoise(x, "tv").dtype == torch.float64
    for method in B.FILTERS:
        assert B.denoise(torch.zeros(0, 1, 10, 10), method).shape == (0, 1, 10, 10)


# --------------------------------------------------------------------------- denoise: bad input
@pytest.mark.parametrize(
    "x, method, params, error, match",
    [
        (torch.rand(2, 28, 28), "tv", {}, ValueError, r"\(b, 1, H, W\)"),
        (torch.rand(2, 3, 8, 8), "tv", {}, ValueError, r"grey images"),
        (torch.randint(0, 255, (2, 1, 8, 8)), "tv", {}, TypeError, "floating-point"),
        (np.zeros((2, 1, 8, 8)), "tv", {}, TypeError, "floating-point"),
        (torch.full((1, 1, 8, 8), float("nan")), "tv", {}, ValueError, "NaN"),
        (torch.rand(1, 1, 8, 8), "bilateral", {}, ValueError, "must be one of"),
        (torch.rand(1, 1, 8, 8), "tv", {"sigma": 1.0}, ValueError, "unknown parameter"),
        (torch.rand(1, 1, 8, 8), "gaussian", {"sigma": -1.0}, ValueError, "positive"),
        (torch.rand(1, 1, 8, 8), "median", {"size": 2.5}, ValueError, "positive integer"),
        (torch.rand(1, 1, 8, 8), "nlm", {"h": "big"}, TypeError, "finite number"),
        (torch.rand(1, 1, 8, 8), "nlm", {"sigma": -0.1}, ValueError, ">= 0"),
    ],
)
def test_denoise_rejects_bad_input_clearly(x, method, params, error, match):
    with pytest.raises(error, match=match):
        B.denoise(x, method, **params)


# --------------------------------------------------------------------------- tune
def test_tune_picks_the_value_with_the_best_validation_psnr():
    clean = _smooth_images(4)
    noisy = vb.add_gaussian_noise(clean, 0.1, generator=torch.Generator().manual_seed(3))
    grid = [0.5, 1.0, 2.0, 4.0]
    tuned = B.tune("gaussian", noisy, clean, {"sigma": grid}, refine=0)
    by_hand = {s: vb.psnr(B.denoise(noisy, "gaussian", sigma=s), clean).mean().item() for s in grid}
    assert tuned.params == {"sigma": max(by_hand, key=by_hand.get)}
    assert tuned.val_psnr == pytest.approx(max(by_hand.values()))
    assert tuned.scores == pytest.approx(by_hand)
    torch.testing.assert_close(tuned(noisy), B.denoise(noisy, "gaussian", **tuned.params))


def test_tune_refines_between_grid_points_and_never_does_worse():
    clean = _smooth_images(4)
    noisy = vb.add_gaussian_noise(clean, 0.1, generator=torch.Generator().manual_seed(4))
    coarse = B.tune("tv", noisy, clean, {"weight": [0.01, 0.1, 1.0]}, refine=0)
    fine = B.tune("tv", noisy, clean, {"weight": [0.01, 0.1, 1.0]}, refine=2)
    assert len(fine.scores) > len(coarse.scores)
    assert fine.val_psnr >= coarse.val_psnr
    best = coarse.params["weight"]
    assert math.sqrt(best * 0.01) in fine.scores or math.sqrt(best * 1.0) in fine.scores


def test_tune_passes_fixed_parameters_and_accepts_a_callable():
    clean = _smooth_images(3)
    noisy = vb.add_gaussian_noise(clean, 0.1, generator=torch.Generator().manual_seed(5))
    nlm = B.tune("nlm", noisy, clean, {"h": [0.05, 0.1]}, sigma=0.1, refine=0)
    assert nlm.params["sigma"] == 0.1 and nlm.params["h"] in (0.05, 0.1)

    def shrink(x, a):
        return 0.5 + a * (x - 0.5)

    tuned = B.tune(shrink, noisy, clean, {"a": [0.0, 0.5, 1.0]}, name="shrink", refine=0)
    assert tuned.name == "shrink" and tuned.params["a"] in (0.0, 0.5, 1.0)
    torch.testing.assert_close(tuned(noisy), shrink(noisy, tuned.params["a"]))


def test_tune_rejects_bad_input_clearly():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        B.tune("tv", x, torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match="at least one"):
        B.tune("tv", x[:0], x[:0])
    with pytest.raises(ValueError, match="needs a grid"):
        B.tune(lambda x, k: x, x, x)
    with pytest.raises(ValueError, match="non-empty"):
        B.tune("tv", x, x, {"weight": []})
    with pytest.raises(ValueError, match="both in the grid and fixed"):
        B.tune("nlm", x, x, {"h": [0.1]}, h=0.2)
    with pytest.raises(ValueError, match="must be one of"):
        B.tune("wiener", x, x)
    with pytest.raises(TypeError, match="filter name or a callable"):
        B.tune(3, x, x)
    with pytest.raises(ValueError, match="refine"):
        B.tune("tv", x, x, refine=-1)


# --------------------------------------------------------------------------- PCA projection
def _low_rank_data(n=200, d=30, k=4, seed=6):
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))  # (d, k) orthonormal
    codes = torch.randn(n, k, generator=g, dtype=torch.float64) * torch.tensor([5.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    mean = torch.rand(d, generator=g, dtype=torch.float64)
    return (codes @ basis.T + mean).float().view(n, 1, 5, 6), basis


def test_pca_projection_is_exact_on_data_in_the_subspace():
    x, _ = _low_rank_data()
    pca = B.fit_pca(x, 4)
    torch.testing.assert_close(pca(x), x, atol=1e-4, rtol=0)
    torch.testing.assert_close(pca(x[:1]), x[:1], atol=1e-4, rtol=0)  # a batch of one


def test_pca_finds_the_true_subspace_and_orthonormal_components():
    x, basis = _low_rank_data()
    pca = B.fit_pca(x, 4)
    u = pca.components.double()  # (4, d)
    torch.testing.assert_close(u @ u.T, torch.eye(4, dtype=torch.float64), atol=1e-5, rtol=0)
    proj_true = basis @ basis.T
    torch.testing.assert_close(u.T @ u, proj_true, atol=1e-4, rtol=0)  # same subspace
    assert (pca.explained_variance[:-1] >= pca.explained_variance[1:]).all()


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(7)
    x = torch.rand(100, 1, 4, 5, generator=g)
    ours = B.fit_pca(x, 3)
    ref = PCA(n_components=3, svd_solver="full").fit(x.view(100, -1).double().numpy())
    torch.testing.assert_close(ours.explained_variance.double(), torch.from_numpy(ref.explained_variance_), rtol=1e-4, atol=1e-8)
    flat = x.view(100, -1).double().numpy()
    recon = ref.inverse_transform(ref.transform(flat))
    torch.testing.assert_close(ours(x).view(100, -1).double(), torch.from_numpy(recon), atol=1e-5, rtol=0)


def test_pca_projection_removes_noise_outside_the_subspace():
    x, _ = _low_rank_data(n=400)
    pca = B.fit_pca(x, 4)
    noisy = vb.add_gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(8))
    # 4 of 30 dimensions keep their noise: the squared error falls to about 4/30 of the noise's
    err_noisy = (noisy - x).pow(2).mean()
    err_proj = (pca(noisy) - x).pow(2).mean()
    assert err_proj < 0.25 * err_noisy
    assert pca(noisy, n_components=0).sub(pca.mean.view(1, 1, 5, 6)).abs().max() < 1e-6  # k=0: the mean image


def test_pca_is_tuned_like_a_filter():
    x, _ = _low_rank_data(n=300)
    pca = B.fit_pca(x[:200], 10)
    noisy = vb.add_gaussian_noise(x[200:], 0.3, generator=torch.Generator().manual_seed(9))
    tuned = B.tune(pca, noisy, x[200:], {"n_components": [1, 2, 4, 8, 10]}, name="pca", refine=0)
    assert tuned.params == {"n_components": 4}  # the true rank
    assert tuned.name == "pca"


def test_fit_pca_is_reproducible():
    x, _ = _low_rank_data()
    a, b = B.fit_pca(x, 3), B.fit_pca(x.clone(), 3)
    assert torch.equal(a.components, b.components)


def test_tune_all_tunes_every_filter_and_pca_under_their_book_names():
    x, _ = _low_rank_data(n=60)
    pca = B.fit_pca(x[:40], 8)
    clean = x[40:]
    noisy = vb.add_gaussian_noise(clean, 0.2, generator=torch.Generator().manual_seed(3))
    tuned = B.tune_all(noisy, clean, sigma=0.2, pca=pca, pca_grid=(1, 4, 8))
    assert list(tuned) == ["Gaussian blur", "median", "non-local means", "total variation", "PCA projection"]
    assert tuned["non-local means"].params["sigma"] == 0.2
    assert tuned["PCA projection"].params == {"n_components": 4}  # the data's rank
    for name, t in tuned.items():  # each is what tune() alone would choose
        assert t.val_psnr == pytest.approx(B.mean_psnr(t, noisy, clean)), name


def test_mean_psnr_averages_the_psnr_of_each_image():
    clean = torch.zeros(2, 1, 4, 4)
    noisy = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.01)])
    assert B.mean_psnr(lambda x: x, noisy, clean) == pytest.approx((20.0 + 40.0) / 2)  # not the PSNR of the mean MSE
