"""vaebook.labels: the conditional VAE and M2, against torch.distributions, explicit sums and gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.distributions as D
from torch.func import functional_call

import vaebook as vb
from vaebook import labels as L


def _tiny(cls=L.M2, dtype=torch.float64, seed=0):
    """A model small enough for gradcheck: 3 x 3 images, 3 classes, 2-D codes, 5 hidden units."""
    torch.manual_seed(seed)
    return cls(z_dim=2, hidden_dim=5, n_classes=3, image_shape=(1, 3, 3)).to(dtype)


def _data(b=4, seed=1, dtype=torch.float64, k=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 1, 3, 3, generator=g, dtype=dtype).bernoulli(generator=g)
    y = torch.randint(0, k, (b,), generator=g)
    return x, y, g


@pytest.mark.parametrize("cls", [L.ConditionalVAE, L.M2])
def test_labelled_elbo_matches_torch_distributions(cls):
    model = _tiny(cls)
    x, y, g = _data()
    eps = torch.randn(4, 2, generator=g, dtype=torch.float64)
    out = L.labelled_elbo(model, x, y, eps)
    mu, logvar = model.encode(x, y)
    std = (0.5 * logvar).exp()
    q = D.Independent(D.Normal(mu, std), 1)
    z = mu + std * eps
    log_px = D.Independent(D.Bernoulli(logits=model.decode(z, y)), 3).log_prob(x)
    kl = D.kl_divergence(q, D.Independent(D.Normal(torch.zeros_like(mu), torch.ones_like(std)), 1))
    log_py = D.Categorical(logits=torch.zeros(4, 3, dtype=torch.float64)).log_prob(y)
    torch.testing.assert_close(out.recon, log_px)
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.log_py, log_py)
    torch.testing.assert_close(out.elbo, log_px + log_py - kl)


def test_unlabelled_elbo_is_the_explicit_sum_over_labels():
    model = _tiny()
    x, _, g = _data(b=5)
    eps = torch.randn(3, 5, 2, generator=g, dtype=torch.float64)  # one draw per label
    out = L.unlabelled_elbo(model, x, eps)
    q_y = D.Categorical(logits=model.classify(x))
    per_label = torch.stack([L.labelled_elbo(model, x, torch.full((5,), c), eps[c]).elbo for c in range(3)], dim=-1)  # (b, n_classes)
    explicit = (q_y.probs * per_label).sum(-1) + q_y.entropy()
    torch.testing.assert_close(out.per_label, per_label)
    torch.testing.assert_close(out.probs, q_y.probs)
    torch.testing.assert_close(out.entropy, q_y.entropy())
    torch.testing.assert_close(out.elbo, explicit)
    # one eps of shape (b, z_dim) serves every label
    same = L.unlabelled_elbo(model, x, eps[0])
    explicit_same = sum(q_y.probs[:, c] * L.labelled_elbo(model, x, torch.full((5,), c), eps[0]).elbo for c in range(3)) + q_y.entropy()
    torch.testing.assert_close(same.elbo, explicit_same)


def test_unlabelled_bound_gap_is_the_kl_to_the_labels_posterior():
    """log sum_y exp L(x, y) - U(x) = KL(q(y|x) || softmax_y L(x, y)) >= 0: U is below the bound with y summed out."""
    model = _tiny()
    x, _, g = _data(b=6)
    eps = torch.randn(3, 6, 2, generator=g, dtype=torch.float64)
    out = L.unlabelled_elbo(model, x, eps)
    gap = torch.logsumexp(out.per_label, -1) - out.elbo
    kl = D.kl_divergence(D.Categorical(probs=out.probs), D.Categorical(logits=out.per_label))
    torch.testing.assert_close(gap, kl)
    assert (gap > 0).all()


class _Bound(torch.nn.Module):
    """A bound of a model as a module's forward, so that torch.func.functional_call can swap its weights."""

    def __init__(self, model, labelled: bool):
        super().__init__()
        self.m, self.labelled = model, labelled

    def forward(self, x, y, eps):
        if self.labelled:
            return L.labelled_elbo(self.m, x, y, eps[0]).elbo
        return L.unlabelled_elbo(self.m, x, eps).elbo


@pytest.mark.parametrize("labelled", [True, False])
def test_gradcheck_bounds(labelled):
    """Gradients of both bounds, with respect to the images, the noise and weights of each network, in float64."""
    model = _tiny()
    _, y, g = _data(b=3)
    x = torch.rand(3, 1, 3, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1  # interior grey levels
    eps = torch.randn(3, 3, 2, generator=g, dtype=torch.float64)
    bound = _Bound(model, labelled)
    names = ["m.enc_out.weight", "m.dec_out.weight", "m.enc_y.weight", "m.dec_y.weight", "m.classifier.2.weight"]
    params = dict(bound.named_parameters())

    def f(x_, eps_, *ws):
        return functional_call(bound, {**params, **dict(zip(names, ws, strict=True))}, (x_, y, eps_))

    inputs = (x.requires_grad_(), eps.requires_grad_(), *[params[n].detach().clone().requires_grad_() for n in names])
    with vb.guards.value_checks(False):  # gradcheck's steps of 1e-6 stay inside [0, 1], but need no scan
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_m2_loss_is_the_two_bounds_and_alpha_times_the_cross_entropy():
    model = _tiny()
    xl, yl, g = _data(b=4)
    xu, _, _ = _data(b=6, seed=2)
    eps_l = torch.randn(4, 2, generator=g, dtype=torch.float64)
    eps_u = torch.randn(3, 6, 2, generator=g, dtype=torch.float64)
    out = L.m2_loss(model, xl, yl, xu, 2.5, eps_labelled=eps_l, eps_unlabelled=eps_u)
    ce = -D.Categorical(logits=model.classify(xl)).log_prob(yl).mean()
    expected = -L.labelled_elbo(model, xl, yl, eps_l).elbo.mean() - L.unlabelled_elbo(model, xu, eps_u).elbo.mean() + 2.5 * ce
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.metrics["cross_entropy"], ce.detach())
    # the labelled bound does not reach the classifier: only alpha's term (and U) trains it on labels
    model.zero_grad()
    L.labelled_elbo(model, xl, yl, eps_l).elbo.sum().backward()
    assert all(p.grad is None for p in model.classifier.parameters())
    assert model.dec_out.weight.grad is not None and model.dec_out.weight.grad.abs().sum() > 0


def test_conditional_decoder_uses_the_label_and_sample_shapes():
    model = _tiny(L.ConditionalVAE, torch.float32)
    z = torch.zeros(3, 2)
    logits = model.decode(z, torch.tensor([0, 1, 2]))
    assert logits.shape == (3, 1, 3, 3)
    assert not torch.allclose(logits[0], logits[1])  # same z, different labels, different images
    samples = model.sample(torch.tensor([1, 1]), generator=torch.Generator().manual_seed(0))
    again = model.sample(torch.tensor([1, 1]), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 1, 3, 3) and torch.equal(samples, again) and ((samples > 0) & (samples < 1)).all()


def _toy_digits(n=300, seed=0):
    """Three classes of 3 x 3 binary-ish patterns (a row lit per class) with noise: an easy labelled data set."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.full((n, 1, 3, 3), 0.1)
    x[torch.arange(n), 0, y, :] = 0.9
    return vb.ImageData(x, y, "toy")


def test_train_labels_learns_and_repeats():
    data = _toy_digits()
    few = data[:9]
    # the classifier alone learns the 9 labels; M2 with the rest unlabelled classifies the whole set
    clf = _tiny(dtype=torch.float32)
    before = L.error_rate(clf, data)
    L.train_labels(clf, few, objective="classifier", steps=150, labelled_batch_size=9, lr=1e-2)
    assert L.error_rate(clf, data) < before and L.error_rate(clf, data) < 0.1
    m2 = _tiny(dtype=torch.float32)
    h = L.train_labels(m2, few, data.x, objective="m2", alpha=1.0, steps=200, batch_size=30, labelled_batch_size=9, lr=1e-2)
    assert h.steps == 200 and len(h.train["unlabelled_elbo"]) == 2
    assert h.train["unlabelled_elbo"][-1] > h.train["unlabelled_elbo"][0]  # the bound rises
    assert L.error_rate(m2, data) < 0.1
    m2_again = _tiny(dtype=torch.float32)
    L.train_labels(m2_again, few, data.x, objective="m2", alpha=1.0, steps=200, batch_size=30, labelled_batch_size=9, lr=1e-2)
    assert all(torch.equal(a, b) for a, b in zip(m2.parameters(), m2_again.parameters(), strict=True))  # seeded: bit for bit
    cvae = _tiny(L.ConditionalVAE, torch.float32)
    h = L.train_labels(cvae, data, objective="cvae", steps=200, batch_size=50, lr=1e-2)
    assert h.train["elbo"][-1] > h.train["elbo"][0] + 1.0


def test_label_batches_draw_each_set_in_passes_and_put_the_labelled_images_first():
    data = _toy_digits(20)
    few = data[:4]
    src = L.LabelBatches(few.x, few.y, data.x, labelled_batch_size=3, batch_size=5)
    assert (src.size, src.per_epoch) == (8, 100)
    src.start(torch.Generator().manual_seed(0), torch.device("cpu"))
    seen = []
    for i in range(4):  # 12 labelled draws from 4 images: each image exactly 3 times, in passes
        x, y = src.cut(src.order(), i)
        assert x.shape == (8, 1, 3, 3) and y.shape == (3,)
        assert set(x.unique().tolist()) <= {0.0, 1.0}  # binarized afresh
        seen.append(y)
    assert torch.bincount(torch.cat(seen), minlength=3).sum() == 12
    src2 = L.LabelBatches(few.x, torch.arange(4), None, labelled_batch_size=3, batch_size=5)  # the labels as indices
    src2.start(torch.Generator().manual_seed(0), torch.device("cpu"))
    idx = torch.cat([src2.cut(src2.order(), i)[1] for i in range(4)])
    assert torch.bincount(idx, minlength=4).tolist() == [3, 3, 3, 3]


def test_label_loss_splits_the_batch_at_the_labels():
    model = _tiny(dtype=torch.float32)
    data = _toy_digits(10)
    x = vb.binarize(data.x, torch.Generator().manual_seed(1)).flatten(1)  # as LabelBatches cuts them
    vb.seed_everything(0)
    got = L.LabelLoss("m2", alpha=2.0)(model, x, data.y[:4])
    vb.seed_everything(0)
    want = L.m2_loss(model, x[:4], data.y[:4], x[4:], 2.0)
    torch.testing.assert_close(got.loss, want.loss)
    ce = L.LabelLoss("classifier")(model.classifier, x, data.y[:4]).loss
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(model.classifier(x[:4]), data.y[:4]))


def test_error_rate_counts_wrong_labels():
    model = _tiny(dtype=torch.float32)
    data = _toy_digits(50)
    with torch.no_grad():  # a classifier that always says class 2
        model.classifier[2].weight.zero_()
        model.classifier[2].bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    assert L.error_rate(model, data) == pytest.approx(float((data.y != 2).float().mean()))


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda m, x, y: L.labelled_elbo(m, x, torch.tensor([0, 1, 3, 0])), ValueError, ["y: expected labels from 0 to 2", "to 3"]),
        (lambda m, x, y: L.labelled_elbo(m, x, torch.tensor([0, -1, 1, 0])), ValueError, ["y: expected labels from 0 to 2", "from -1"]),
        (lambda m, x, y: L.labelled_elbo(m, x, y.float()), TypeError, ["y: expected int64 class labels", "float32"]),
        (lambda m, x, y: L.labelled_elbo(m, x, y[:3]), ValueError, ["y: expected shape (4,), one label per image", "(3,)"]),
        (lambda m, x, y: L.labelled_elbo(m, x[:, :, :2], y), ValueError, ["x: expected a batch of images of shape (b, 1, 3, 3) or (b, 9)", "(4, 1, 2, 3)"]),
        (lambda m, x, y: L.labelled_elbo(m, x * 2, y), ValueError, ["x", "[0, 1]"]),
        (lambda m, x, y: L.labelled_elbo(m, x.double(), y), TypeError, ["x: expected dtype torch.float32", "float64"]),
        (lambda m, x, y: L.labelled_elbo(m, x, y, torch.zeros(4, 3)), ValueError, ["eps: expected shape (4, 2)", "(4, 3)"]),
        (lambda m, x, y: L.unlabelled_elbo(m, x, torch.zeros(2, 4, 2)), ValueError, ["eps: expected shape (3, 4, 2) or (4, 2)", "(2, 4, 2)"]),
        (lambda m, x, y: L.unlabelled_elbo(L.ConditionalVAE(2, 5, 3, (1, 3, 3)), x), TypeError, ["model: expected a vaebook.labels.M2", "ConditionalVAE"]),
        (lambda m, x, y: L.m2_loss(m, x, y, x, -1.0), ValueError, ["alpha", "-1"]),
        (lambda m, x, y: L.m2_loss(m, x, y, x[:, 0, 0], 1.0), ValueError, ["x_unlabelled: expected a batch of images", "(4, 3)"]),
        (lambda m, x, y: L.m2_loss(m, x, y + 5, x, 1.0), ValueError, ["y: expected labels from 0 to 2"]),
        (lambda m, x, y: m.decode(torch.zeros(4, 5), y), ValueError, ["z: expected shape (b, 2)", "(4, 5)"]),
        (lambda m, x, y: L.train_labels(m, _toy_digits(), objective="m3", steps=1), ValueError, ["objective", "m3"]),
        (lambda m, x, y: L.train_labels(m, _toy_digits(), objective="m2", steps=1), ValueError, ["unlabelled: expected images for objective='m2'"]),
        (lambda m, x, y: L.train_labels(m, x, objective="cvae", steps=1), TypeError, ["labelled: expected an ImageData with labels"]),
        (lambda m, x, y: L.train_labels(m, vb.ImageData(torch.zeros(2, 1, 3, 3), torch.tensor([0, 7]), "toy"), objective="cvae", steps=1),
         ValueError, ["labelled (labels): expected labels from 0 to 2", "to 7"]),
        (lambda m, x, y: L.train_labels(m, _toy_digits(), x, objective="m2", steps=0), ValueError, ["steps", "0"]),
        (lambda m, x, y: L.train_labels(m, _toy_digits(), x, objective="m2", steps=1, lr=0.0), ValueError, ["lr", "0"]),
        (lambda m, x, y: L.LabelLoss("m2", alpha=-2.0), ValueError, ["alpha", "-2"]),
    ],
)
def test_bad_inputs_name_the_argument(call, error, words):
    model = _tiny(dtype=torch.float32)
    x, y, _ = _data(dtype=torch.float32)
    with pytest.raises(error) as info:
        call(model, x, y)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_unlabelled_bound_from_its_parts():
    g = torch.Generator().manual_seed(5)
    per_label, logits = -100 * torch.rand(7, 10, generator=g, dtype=torch.float64), torch.randn(7, 10, generator=g, dtype=torch.float64)
    q = D.Categorical(logits=logits)
    torch.testing.assert_close(L.unlabelled_bound(per_label, logits), (q.probs * per_label).sum(-1) + q.entropy())
    # at q = softmax(L), the bound is log sum_y exp L(x, y); elsewhere below it
    torch.testing.assert_close(L.unlabelled_bound(per_label, per_label), torch.logsumexp(per_label, -1))
    assert (L.unlabelled_bound(per_label, logits) < torch.logsumexp(per_label, -1)).all()
    with pytest.raises(ValueError, match=r"per_label and logits_y: expected the same shape \(b, n_classes\), got \(7, 10\) and \(7, 9\)"):
        L.unlabelled_bound(per_label, logits[:, :9])
    with pytest.raises(TypeError, match="logits_y: expected dtype torch.float64"):
        L.unlabelled_bound(per_label, logits.float())


def test_encode_every_label_is_encode_under_each_label():
    model = _tiny()
    x, _, _ = _data(b=5)
    mu, logvar = model.encode_every_label(x)
    assert mu.shape == logvar.shape == (3, 5, 2)
    for c in range(3):
        mu_c, logvar_c = model.encode(x, torch.full((5,), c))
        torch.testing.assert_close(mu[c], mu_c)
        torch.testing.assert_close(logvar[c], logvar_c)
