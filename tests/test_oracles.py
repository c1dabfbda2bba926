"""What the library writes by hand, held against the library that does the same thing.

Each of these is small enough to write out, and is written out for a reason (a batch dimension,
no extra dependency in a hot path, the course's own conventions); each must agree with the
trusted implementation it stands beside. (``fit_pca`` and the log-densities are checked against
scikit-learn and ``torch.distributions`` in their own test modules.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vaebook as vb
from vaebook import metrics
from vaebook.authoring import assign
from vaebook.data import _read_idx

ROOT = Path(__file__).resolve().parents[1]


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 12, 9, generator=g)
    ref = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    for data_range in (1.0, 2.0):
        ours = vb.psnr(x, ref, data_range=data_range)
        theirs = [peak_signal_noise_ratio(r.numpy(), i.numpy(), data_range=data_range) for i, r in zip(x, ref, strict=True)]
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5)


def test_idx_reader_matches_torchvisions(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (7, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (7,), generator=g, dtype=torch.uint8)
    img_path, lab_path = tmp_path / "images-idx3-ubyte", tmp_path / "labels-idx1-ubyte"
    img_path.write_bytes(bytes((0, 0, 8, 3)) + b"".join(int(s).to_bytes(4, "big") for s in images.shape) + images.numpy().tobytes())
    lab_path.write_bytes(bytes((0, 0, 8, 1)) + (7).to_bytes(4, "big") + labels.numpy().tobytes())
    assert torch.equal(_read_idx(img_path, 3), read_image_file(str(img_path)))
    assert torch.equal(_read_idx(lab_path, 1).long(), read_label_file(str(lab_path)))


@pytest.mark.parametrize("n_neighbors", [1, 3, 5])
def test_knn_radii_match_scikit_learn(n_neighbors):
    from sklearn.neighbors import NearestNeighbors

    feats = torch.randn(60, 8, generator=torch.Generator().manual_seed(2))
    ours = metrics._knn_radii(feats, n_neighbors)
    dist, _ = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(feats.numpy()).kneighbors(feats.numpy())
    np.testing.assert_allclose(ours.numpy(), dist[:, -1], rtol=1e-5, atol=1e-5)  # column 0 is the point itself


def test_record_writes_what_myst_nbs_glue_writes():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from myst_nb import glue

    InteractiveShell.instance()
    for value in (3, 2.5, 0.123456789):
        with capture_output() as ours:
            vb.record("ch0_value", value)
        with capture_output() as theirs:
            glue("ch0_value", value, display=False)
        assert [(o.data, o.metadata) for o in ours.outputs] == [(o.data, o.metadata) for o in theirs.outputs]
        assert len(ours.outputs) == 1


def test_solution_stripper_matches_nbgraders_clear_solutions():
    """Our student stubs are what nbgrader's own ClearSolutions writes, cell for cell, in every chapter."""
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        source = json.loads(path.read_text(encoding="utf-8"))
        ours = assign.student_notebook(source)
        nb = nbformat.reads(json.dumps(assign.student_notebook(source, strip_code=False)), as_version=4)
        theirs, _ = ClearSolutions(enforce_metadata=True).preprocess(nb, {"language": "python"})
        code = lambda n: [c["source"] for c in n["cells"] if c["cell_type"] == "code"]  # noqa: E731
        assert code(ours) == code(theirs), path.name
