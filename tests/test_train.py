"""train.py: fit lowers the loss, repeats bit for bit, stops on NaN, and its callbacks see what they should."""

import warnings

import pytest
import torch
from torch import nn

import vaebook as vb


@pytest.fixture(scope="module")
def digits():
    g = torch.Generator().manual_seed(0)
    # 512 synthetic "digits": blurry strokes at random positions, enough to learn from in seconds
    x = torch.zeros(512, 1, 28, 28)
    rows = torch.randint(4, 24, (512,), generator=g)
    cols = torch.randint(4, 24, (512,), generator=g)
    for i in range(512):
        x[i, 0, rows[i] - 3:rows[i] + 3, cols[i] - 1:cols[i] + 1] = 1.0
    return vb.ImageData(x, torch.zeros(512, dtype=torch.long), "synthetic")


def test_fit_lowers_the_autoencoder_loss(digits):
    ae = vb.Autoencoder(z_dim=4, hidden=(64,))
    before = vb.evaluate(ae, digits)["loss"]
    hist = vb.fit(ae, digits, epochs=5, lr=3e-3, batch_size=64, test_data=digits, progress=False, device="cpu")
    assert hist.epochs == 5 and len(hist.train["loss"]) == 5 and len(hist.test["mse"]) == 5
    assert hist.test["loss"][-1] < 0.5 * before
    assert hist.train["loss"][-1] < hist.train["loss"][0]
    assert hist.images == 5 * (512 // 64) * 64 and hist.images_per_second > 0


def test_fit_raises_the_vae_elbo_with_dynamic_binarization(digits):
    vae = vb.VAE(z_dim=2, hidden=(64,))
    hist = vb.fit(vae, digits, epochs=4, lr=3e-3, batch_size=64, binarize=True, test_data=digits, progress=False, device="cpu")
    elbo = hist.test["elbo"]
    assert elbo[-1] > elbo[0] + 20  # nats
    torch.testing.assert_close(torch.tensor(hist.train["elbo"]), -torch.tensor(hist.train["loss"]))
    assert all(k > 0 for k in hist.train["kl"])


def test_fit_is_bit_for_bit_repeatable_on_cpu(digits):
    def run():
        vb.seed_everything(1)
        vae = vb.VAE(z_dim=2, hidden=(32,))
        hist = vb.fit(vae, digits, epochs=2, batch_size=64, binarize=True, progress=False, device="cpu", seed=7)
        return hist, torch.cat([p.detach().flatten() for p in vae.parameters()])

    h1, w1 = run()
    h2, w2 = run()
    assert h1.train == h2.train
    assert torch.equal(w1, w2)


def test_evaluation_leaves_the_random_numbers_of_training_alone(digits):
    """Per-epoch test evaluation must not shift the global RNG that training draws z ~ q from."""

    def run(test_size):
        vb.seed_everything(3)
        vae = vb.VAE(z_dim=2, hidden=(16,))
        hist = vb.fit(vae, digits, epochs=2, batch_size=128, binarize=True, test_data=digits[:test_size], progress=False, device="cpu")
        return hist.train["loss"], torch.randn(3)  # the training, and what the global RNG gives next

    (loss_a, next_a), (loss_b, next_b) = run(64), run(256)
    assert loss_a == loss_b
    assert torch.equal(next_a, next_b)
    # and an evaluation gives the same numbers whatever state the global RNG is in
    vae = vb.VAE(z_dim=2, hidden=(16,))
    torch.manual_seed(0)
    first = vb.evaluate(vae, digits, binarize=True)
    torch.manual_seed(99)
    assert vb.evaluate(vae, digits, binarize=True) == first


def test_fit_trains_on_corrupted_pairs_against_the_clean_target(digits):
    seen = []

    def corrupt(x, g):
        noisy = vb.add_gaussian_noise(x, 0.3, generator=g)
        seen.append((x.clone(), noisy.clone()))
        return noisy

    def loss(model, x_in, target):
        # the model gets the corrupted input, the loss the clean target
        assert not torch.equal(x_in, target)
        return vb.ReconstructionLoss()(model, x_in, target)

    ae = vb.Autoencoder(z_dim=8, hidden=(64,))
    vb.fit(ae, digits, epochs=1, batch_size=128, corrupt=corrupt, loss=loss, progress=False, device="cpu")
    assert len(seen) == 4
    assert not torch.equal(seen[0][1], seen[1][1])  # fresh noise every batch


def test_fit_accepts_precomputed_pairs(digits):
    x = digits.x
    sr = vb.SuperResolver(scale=4, channels=8, n_layers=2)
    low = vb.downsample(x, 4)
    before = vb.evaluate(sr, (low, x))["loss"]
    hist = vb.fit(sr, (low, x), epochs=3, lr=3e-3, batch_size=64, progress=False, device="cpu")
    assert hist.train["loss"][-1] < before


def test_kl_warmup_anneals_the_kl_weight_of_the_loss(digits):
    seen = []

    class Spy(vb.Callback):
        def on_epoch_end(self, state):
            seen.append(state.loss.kl_weight(state.progress))

    vae = vb.VAE(z_dim=2, hidden=(16,))
    loss = vb.ELBOLoss()
    vb.fit(vae, digits, epochs=4, batch_size=128, binarize=True, loss=loss, callbacks=[vb.KLWarmup(0.5), Spy()],
           progress=False, device="cpu")
    assert seen[0] == pytest.approx(0.5, abs=0.01)  # after 1 of 4 epochs, half-way through warm-up
    assert seen[1:] == [1.0, 1.0, 1.0]
    assert loss.beta == 1.0 and loss.warmup == 0 and not hasattr(vae, "beta")  # the caller's loss untouched; nothing on the model


@pytest.mark.parametrize("beta", [0.5, 4.0])
def test_kl_warmup_warms_up_to_the_users_beta_and_leaves_it_there(digits, beta):
    seen = []

    class Spy(vb.Callback):
        def on_epoch_end(self, state):
            seen.append(state.loss.kl_weight(state.progress))

    loss = vb.ELBOLoss(beta=beta)
    vb.fit(vb.VAE(z_dim=2, hidden=(16,)), digits, epochs=4, batch_size=128, binarize=True, loss=loss,
           callbacks=[vb.KLWarmup(0.5), Spy()], progress=False, device="cpu")
    assert seen[0] == pytest.approx(beta / 2, rel=0.02)  # half-way through warm-up, half of the user's beta
    assert seen[1:] == [beta] * 3
    assert loss.beta == beta  # the caller's object as it came


@pytest.mark.parametrize("beta", [0.5, 4.0])
def test_a_loss_with_a_warmup_owns_its_schedule_and_ends_at_the_users_beta(digits, beta):
    """ELBOLoss(beta, warmup): fit trains each step with the loss's own ramp, and nothing writes into the loss."""
    weights = []

    class Spy(vb.Callback):
        def on_step_end(self, state):
            weights.append(state.loss.kl_weight(state.progress))

    loss = vb.ELBOLoss(beta=beta, warmup=0.5)
    vb.fit(vb.VAE(z_dim=2, hidden=(16,)), digits, steps=8, batch_size=128, binarize=True, loss=loss, callbacks=[Spy()],
           progress=False, device="cpu")
    assert weights == pytest.approx([beta * min(1.0, s / 8 / 0.5) for s in range(1, 9)])  # the ramp, step by step
    assert weights[-1] == beta and (loss.beta, loss.warmup) == (beta, 0.5)  # ends at the user's beta; the loss as it came
    assert loss.at_progress(0.25).beta == pytest.approx(beta / 2) and loss.at_progress(0.25) is not loss
    assert loss.at_progress(0.5) is loss and loss.at_progress(1.0) is loss


def test_a_warmup_in_the_loss_trains_as_the_klwarmup_callback_did(digits):
    """The two ways to ask for a warm-up give the same weights, bit for bit, on the fused step and with autograd."""
    for fused in (True, False):
        runs = []
        for loss, callbacks in ((vb.ELBOLoss(beta=0.5, warmup=0.5), []), (vb.ELBOLoss(beta=0.5), [vb.KLWarmup(0.5)])):
            torch.manual_seed(0)
            vae = vb.VAE(z_dim=2, hidden=(16,))
            vb.fit(vae, digits, steps=6, batch_size=64, binarize=True, loss=loss, callbacks=callbacks, progress=False,
                   device="cpu", fused=fused)
            runs.append([p.detach().clone() for p in vae.parameters()])
        assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_kl_warmup_gives_the_loss_its_beta_back_when_training_fails(digits):
    class Fail(vb.Callback):
        def on_step_end(self, state):
            raise RuntimeError("stop here")

    loss = vb.ELBOLoss(beta=0.5)
    with pytest.raises(RuntimeError, match="stop here"):
        vb.fit(vb.VAE(z_dim=2, hidden=(16,)), digits, steps=5, binarize=True, loss=loss, callbacks=[vb.KLWarmup(0.5), Fail()],
               progress=False, device="cpu")
    assert loss.beta == 0.5


def test_callbacks_can_stop_training(digits):
    class StopAt3(vb.Callback):
        def on_step_end(self, state):
            state.stop = state.step >= 3

    hist = vb.fit(vb.Autoencoder(z_dim=2, hidden=(8,)), digits, epochs=5, batch_size=64, callbacks=[StopAt3()], progress=False, device="cpu")
    assert hist.steps == 3 and hist.epochs == 1


def test_wsd_schedule_is_flat_then_decays(digits):
    hist = vb.fit(vb.Autoencoder(z_dim=2, hidden=(8,)), digits, epochs=10, lr=1e-3, batch_size=64, schedule="wsd", progress=False, device="cpu")
    assert hist.lr[:6] == [1e-3] * 6  # the first 70% at full rate (lr recorded at each epoch's last step)
    assert hist.lr[6:] == sorted(hist.lr[6:], reverse=True) and hist.lr[-1] < 1e-4


def test_cosine_schedule_decays_to_zero(digits):
    hist = vb.fit(vb.Autoencoder(z_dim=2, hidden=(8,)), digits, epochs=4, lr=1e-3, batch_size=64, schedule="cosine", progress=False, device="cpu")
    assert hist.lr[0] < 1e-3 and hist.lr[-1] < 1e-5 and hist.lr == sorted(hist.lr, reverse=True)


def test_non_finite_loss_stops_with_epoch_step_and_advice(digits):
    calls = []

    def exploding(model, x, target):
        calls.append(1)
        out = vb.ReconstructionLoss()(model, x, target)
        return vb.LossOutput(out.loss * float("nan"), out.metrics) if len(calls) == 6 else out

    with pytest.raises(FloatingPointError, match=r"became nan at epoch 1, step 6 .*lower learning rate"):
        vb.fit(vb.Autoencoder(z_dim=2, hidden=(8,)), digits, epochs=2, batch_size=32, loss=exploding, progress=False, device="cpu")


class _LrLog(vb.Callback):
    def __init__(self):
        self.lr = []

    def on_step_end(self, state):
        self.lr.append(state.optimizer.param_groups[0]["lr"])


def test_fit_for_a_number_of_steps_cuts_the_last_pass_short(digits):
    log = _LrLog()
    ae = vb.Autoencoder(z_dim=2, hidden=(8,))
    hist = vb.fit(ae, digits, steps=20, lr=1e-3, batch_size=64, schedule="linear", callbacks=[log], progress=False, device="cpu")
    assert hist.steps == 20 and len(log.lr) == 20 and hist.images == 20 * 64  # 8 + 8 + 4 batches of 64
    assert hist.epochs == 3 and len(hist.train["loss"]) == 3
    # the schedule runs over the 20 steps, not over three full passes (24 steps)
    expected = 1e-3 * (1 - torch.arange(20, dtype=torch.float64) / 20)
    torch.testing.assert_close(torch.tensor(log.lr, dtype=torch.float64), expected, atol=1e-12, rtol=0)

    def run(**length):
        vb.seed_everything(2)
        ae = vb.Autoencoder(z_dim=2, hidden=(8,))
        vb.fit(ae, digits, lr=1e-3, batch_size=64, schedule="wsd", progress=False, device="cpu", seed=3, **length)
        return torch.cat([q.detach().flatten() for q in ae.parameters()])

    assert torch.equal(run(steps=16), run(epochs=2))  # whole passes: the same run bit for bit


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_train_budget_vae_is_train_vae_with_its_documented_choices(digits):
    vae, hist = vb.train_budget_vae(digits, steps=6, seed=4, progress=False, device="cpu")
    assert vae.config.prior == "mixture" and vae.config.prior_components == 50
    assert vae.config.hidden == (400, 400) and vae.config.z_dim == 32 and vae.likelihood == "bernoulli"
    assert hist.steps == 6 and hist.images == 6 * 256
    vb.seed_everything(4)  # the oracle: the same model and training, spelled out
    by_hand = vb.VAE(prior="mixture", prior_components=50)
    vb.train_vae(by_hand, digits, steps=6, batch_size=256, lr=3e-3, seed=4, progress=False, device="cpu")
    assert torch.equal(_weights(vae), _weights(by_hand))
    _, small = vb.train_budget_vae(digits, steps=3, batch_size=64, progress=False, device="cpu")
    assert small.images == 3 * 64  # the caller's keywords override the recipe's


def test_train_budget_vae_beats_train_vae_at_the_same_number_of_steps():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vb.OfflineDataWarning)
        train = vb.load_mnist("train", root="/nonexistent-vaebook-root", download=False)
        test = vb.load_mnist("test", root="/nonexistent-vaebook-root", download=False)
    assert not train.full  # the 4,000 offline training digits, wherever the tests run
    x_test = vb.binarize(test.x[:300], torch.Generator().manual_seed(0))
    budget, _ = vb.train_budget_vae(train, steps=300, progress=False, device="cpu")
    vb.seed_everything(0)
    default = vb.VAE()
    vb.train_vae(default, train, steps=300, seed=0, progress=False, device="cpu")
    nll = {name: -vb.log_likelihood(m, x_test, K=100, generator=torch.Generator().manual_seed(1)).mean().item()
           for name, m in (("budget", budget), ("default", default))}
    assert nll["budget"] < nll["default"] - 3.0, nll


def test_a_large_tensor_is_scanned_once_until_it_changes(monkeypatch):
    from vaebook import guards

    scans = []
    real_isfinite = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: scans.append(t.numel()) or real_isfinite(t))
    x = torch.rand(1300, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # 1,019,200 values: remembered
    small = x[:10].clone()  # 7,840 values: scanned every time
    for _ in range(3):
        guards.check_finite("x", x)
        guards.check_finite("small", small)
    assert scans == [x.numel(), small.numel(), small.numel(), small.numel()]
    x[7, 0, 3, 3] = float("nan")  # an in-place change advances the version counter: scanned again, and caught
    with pytest.raises(ValueError, match="NaN at 1 of 1,019,200 values"):
        guards.check_finite("x", x)
    guards.check_range("x", torch.rand(1300, 784), 0.0, 1.0)
    y = x.nan_to_num(0.5)
    guards.check_range("y", y, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"values in \[0, 0.5\]"):
        guards.check_range("y", y, 0.0, 0.5)  # another range is another check
    y.mul_(2)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        guards.check_range("y", y, 0.0, 1.0)
    del y
    assert all(entry[0]() is not None for entry in guards._PASSED.values())  # the dead tensors' entries are gone
    with torch.inference_mode():  # no version counter: scanned every time, and still caught
        z = torch.rand(1300, 784)
    z_bad = z.clone()
    guards.check_finite("z", z)
    with torch.inference_mode():
        z_bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="infinity at 1 of"):
        guards.check_finite("z", z_bad)


def test_a_new_tensor_that_reuses_a_freed_ones_id_is_scanned_afresh():
    from vaebook import guards

    x = torch.rand(1300, 784, generator=torch.Generator().manual_seed(1))
    guards.check_finite("x", x)  # remembered under id(x)
    entry = guards._PASSED[id(x)]
    mask = torch.zeros(1300, 784, dtype=torch.bool)
    mask[0, 0] = True
    bad = torch.rand(1300, 784).masked_fill(mask, float("nan"))  # a fresh tensor: version 0, as x's
    assert bad._version == entry[1]  # so only the weak reference can tell them apart
    # CPython may hand a freed tensor's id to the next one; make that happen for sure: bad's id now
    # holds x's entry, a weak reference to x with x's version counter
    guards._PASSED[id(bad)] = entry
    with pytest.raises(ValueError, match="NaN at 1"):
        guards.check_finite("bad", bad)
    del x, bad


def test_without_the_private_version_counter_every_scan_runs(monkeypatch):
    from vaebook import guards

    monkeypatch.setattr(guards, "_VERSION_ATTR", "_no_such_counter")  # a PyTorch without Tensor._version
    scans = []
    real_isfinite = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: scans.append(t.numel()) or real_isfinite(t))
    x = torch.rand(1300, 784, generator=torch.Generator().manual_seed(2))
    for _ in range(3):
        guards.check_finite("x", x)
    assert scans == [x.numel()] * 3  # nothing remembered: the public path, a scan each time
    x[5, 5] = float("inf")
    with pytest.raises(ValueError, match="infinity at 1"):
        guards.check_finite("x", x)


class _Halves(vb.batches.BatchSource):
    """A source of our own, cut as fit cuts its own batches: a fresh shuffle per pass, then batches of half the data."""

    def __init__(self, x: torch.Tensor):
        self.x, self.size, self.per_epoch = x, x.shape[0] // 2, 2

    def order(self) -> torch.Tensor:
        return torch.randperm(self.x.shape[0], generator=self.generator)

    def cut(self, order: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.x[order[i * self.size:(i + 1) * self.size]]
        return half.to(self.device), half.to(self.device)


def test_fit_trains_from_a_batch_source_as_from_its_own_batches():
    # a source that draws what fit's own batches draw, from the generator fit hands it, gives the same weights
    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    loss = vb.ReconstructionLoss()
    models, histories = [], []
    for data, extra in ((_Halves(x), {}), (x, {"batch_size": 20})):
        torch.manual_seed(0)
        models.append(nn.Sequential(nn.Linear(6, 3), nn.Linear(3, 6)))
        histories.append(vb.fit(models[-1], data, steps=5, loss=loss, progress=False, device="cpu", fused=True, **extra))
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True))
    h = histories[0]
    assert (h.steps, h.epochs, h.images, len(h.train["loss"])) == (5, 3, 100, 3)
    assert h.train["loss"] == histories[1].train["loss"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"binarize": True}, ["binarize: not used when data is a BatchSource"]),
        ({"test_data": torch.zeros(4, 6)}, ["test_data: not used when data is a BatchSource"]),
        ({"corrupt": lambda x, g: x}, ["corrupt: not used"]),
    ],
)
def test_fit_names_the_arguments_a_batch_source_does_not_use(kwargs, words):
    with pytest.raises(ValueError) as err:
        vb.fit(nn.Linear(6, 6), _Halves(torch.rand(8, 6)), steps=1, loss=vb.ReconstructionLoss(), progress=False, **kwargs)
    for w in words:
        assert w in str(err.value)


def test_a_batch_source_without_its_methods_or_sizes_says_so():
    empty = vb.batches.BatchSource()
    with pytest.raises(ValueError, match=r"data: expected a BatchSource with size >= 1 and per_epoch >= 1, got size=0"):
        vb.fit(nn.Linear(2, 2), empty, steps=1, loss=vb.ReconstructionLoss(), progress=False)
    empty.size = empty.per_epoch = 1
    with pytest.raises(NotImplementedError, match=r"BatchSource.order: a BatchSource must define order\(\)"):
        vb.fit(nn.Linear(2, 2), empty, steps=1, loss=vb.ReconstructionLoss(), progress=False)
