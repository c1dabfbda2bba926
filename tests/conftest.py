"""Helpers shared by the test modules."""

import math

import torch

import vaebook as vb


def make_ppca(d: int = 6, k: int = 2, c: float = 0.2, seed: int = 0) -> vb.LinearGaussian:
    """A probabilistic-PCA model in float64 with random W and b (fixed by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, k, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    return vb.LinearGaussian(W, b, c)


def sample_ppca(model: vb.LinearGaussian, n: int = 8, seed: int = 1) -> torch.Tensor:
    """``n`` draws of x from the model: z ~ N(0, I), x = W z + b + sqrt(c) noise."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.z_dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        return model.decode(z) + math.sqrt(model.c) * torch.randn(n, model.W.shape[0], generator=g, dtype=torch.float64)


def pytest_collection_modifyitems(config, items):
    """Browser tests that open the same page run one after another, so that the checks which only
    look at a page share one load of it (``_look`` in tests/test_browser.py). The order is stable:
    a page's checks keep the file's order, and tests of no particular page come first."""

    def page(item) -> str:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "page_path" not in params:
            return ""
        prefix = "student/_build/html" if params.get("edition") == "student" else "html"
        return f"{prefix}/{params['page_path']}"

    in_browser = [i for i in items if i.get_closest_marker("browser")]
    ordered = iter(sorted(in_browser, key=page))
    items[:] = [next(ordered) if i.get_closest_marker("browser") else i for i in items]
