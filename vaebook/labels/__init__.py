r"""Labels: the conditional VAE and the semi-supervised M2 model (Kingma et al., 2014).

Chapter 14 of the book. The generative model draws a label and a code independently and decodes
the image from both:

.. math:: p(y) = \tfrac1K, \qquad p(\mathbf z) = \mathcal N(\mathbf 0, \mathbf I), \qquad
          p_\theta(\mathbf x\mid\mathbf z, y) = \mathrm{Bernoulli}\big(\sigma(\mathbf d_\theta(\mathbf z, y))\big).

- :class:`ConditionalVAE` (Sohn et al., 2015; M2 with ``y`` always observed): an encoder
  :math:`q_\phi(\mathbf z\mid\mathbf x, y)` and the decoder above; :func:`labelled_elbo` is its bound.
- :class:`M2` adds a classifier :math:`q_\phi(y\mid\mathbf x)`, so that images without a label
  get a bound too: :func:`unlabelled_elbo` sums the labelled bound over the ``n_classes`` labels, weighted
  by :math:`q_\phi(y\mid\mathbf x)`, and adds the entropy of :math:`q_\phi(y\mid\mathbf x)`.
  :func:`m2_loss` is the training objective with the classification term weighted by ``alpha``.
- :func:`train_labels` trains either model, and the classifier alone as a supervised baseline,
  with dynamic binarization and batches that draw the few labelled images more often than the rest.

Labels are ``int64`` class indices from 0 to ``n_classes - 1``; images are ``(b, 1, 28, 28)`` (or any shape
whose trailing dimensions hold ``x_dim`` values) with values in [0, 1].

In one module per kind: :mod:`~vaebook.labels.models`, :mod:`~vaebook.labels.bounds` and
:mod:`~vaebook.labels.training`. Everything is re-exported here, as ``vb.labels.<name>``.
"""

from .bounds import LabelledELBO, UnlabelledELBO, labelled_elbo, m2_loss, unlabelled_bound, unlabelled_elbo
from .models import M2, ConditionalVAE, check_model
from .training import OBJECTIVES, LabelBatches, LabelLoss, error_rate, train_labels

__all__ = [
    "ConditionalVAE",
    "M2",
    "check_model",
    "LabelledELBO",
    "UnlabelledELBO",
    "labelled_elbo",
    "unlabelled_elbo",
    "unlabelled_bound",
    "m2_loss",
    "LabelBatches",
    "LabelLoss",
    "OBJECTIVES",
    "train_labels",
    "error_rate",
]
