"""plot.py: the image grids put each image where they say, and every figure copes with edge sizes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vaebook as vb  # noqa: E402
from vaebook import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _numbered(n, h=3, w=4):
    """Image i is filled with the value i / n, so every tile can be recognised in the grid."""
    return (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, h, w).clone()


@pytest.mark.parametrize("n, nrow, pad", [(7, 3, 1), (6, 3, 0), (1, 10, 2), (10, 10, 1), (4, 1, 1)])
def test_grid_image_puts_each_image_in_its_tile_and_pads_the_rest(n, nrow, pad):
    h, w = 3, 4
    grid = plot.grid_image(_numbered(n, h, w), nrow=nrow, pad=pad, pad_value=0.75)
    cols = min(n, nrow)
    rows = -(-n // nrow)
    assert grid.shape == (rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        tile = grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w]
        expected = i / n if i < n else 0.75  # tiles past the last image hold pad_value
        np.testing.assert_allclose(tile, expected, atol=1e-7)
    if pad:  # the gaps between tiles hold pad_value
        np.testing.assert_allclose(grid[h:h + pad, :], 0.75) if rows > 1 else None
        np.testing.assert_allclose(grid[:h, w:w + pad], 0.75) if cols > 1 else None


def test_grid_image_reads_flat_and_three_dimensional_images_alike():
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a = plot.grid_image(x, nrow=5)
    np.testing.assert_array_equal(plot.grid_image(x.view(5, 784), nrow=5), a)
    np.testing.assert_array_equal(plot.grid_image(x[:, 0], nrow=5), a)


def test_image_grid_and_compare_rows_show_the_grid():
    x = _numbered(12, 28, 28)
    fig = plot.image_grid(x, nrow=6, title="twelve")
    (img,) = fig.axes[0].get_images()
    np.testing.assert_array_equal(img.get_array(), plot.grid_image(x, nrow=6))
    assert fig.axes[0].get_title() == "twelve"
    fig = plot.compare_rows({"a": x[:4], "b": x[4:8]}, n=4)
    assert [ax.get_ylabel() for ax in fig.axes] == ["a", "b"]
    np.testing.assert_array_equal(fig.axes[1].get_images()[0].get_array(), plot.grid_image(x[4:8], nrow=4))


def test_manifold_decodes_the_grid_rows_from_top_z2_down():
    seen = []

    def decode(z):
        seen.append(z.clone())
        return ((z[:, :1] + 3) / 6).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)  # grey level encodes z1

    fig = plot.manifold(decode, lim=3.0, n=3)
    z = seen[0]
    assert z.shape == (9, 2)
    assert z[0].tolist() == [-3.0, 3.0] and z[-1].tolist() == [3.0, -3.0]  # top-left (z1=-3, z2=+3) to bottom-right
    arr = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(arr[0, :], [0, 0, 0.5, 0.5, 1, 1])  # columns left to right: z1 = -3, 0, 3


def test_latent_scatter_colours_each_digit_and_handles_one_point():
    z = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    fig = plot.latent_scatter(z, torch.tensor([3, 3, 7]))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["3", "7"]
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(offsets), z[:2].numpy())
    plot.latent_scatter(z[:1])  # a single code, no labels


def test_training_curves_plot_every_epoch_of_each_split():
    h = vb.History(train={"loss": [3.0, 2.0, 1.5]}, test={"loss": [2.5, 2.2, 2.0]})
    fig = plot.training_curves(h, keys=("loss",))
    lines = fig.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[3.0, 2.0, 1.5], [2.5, 2.2, 2.0]]
    assert list(lines[0].get_xdata()) == [1, 2, 3]


def test_posterior_contours_draw_levels_below_the_peak(monkeypatch):
    import matplotlib.axes

    drawn = []  # the contour sets drawn, as Axes.contour returns them (matplotlib 3.7 keeps them off ax.collections)
    contour = matplotlib.axes.Axes.contour
    monkeypatch.setattr(matplotlib.axes.Axes, "contour", lambda self, *a, **k: drawn.append(contour(self, *a, **k)) or drawn[-1])
    g = torch.linspace(-2, 2, 21)
    z1, z2 = torch.meshgrid(g, g, indexing="ij")
    log_density = -0.5 * (z1**2 + z2**2)
    fig = plot.posterior_contours(g, g, log_density, levels=4, label="posterior")
    assert len(drawn) == 1
    levels = drawn[0].levels
    assert len(levels) == 4 and max(levels) <= 1.0 and min(levels) > 0
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "posterior"
