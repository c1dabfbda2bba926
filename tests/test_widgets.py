"""widgets.py: the kernel-free quiz and explorer (their HTML and exported data) and the live ipywidgets."""

import base64
import json
import re

import numpy as np
import pytest
import torch

import vaebook as vb
from vaebook import widgets


def test_quiz_html_escapes_text_and_carries_answer_and_explanations():
    q = widgets.quiz("Is 1 < 2?", ["yes <b>", "no"], 0, ["Right: one is less.", "No: </script>"])
    html = q.html
    assert 'data-answer="0"' in html and "Is 1 &lt; 2?" in html and "yes &lt;b&gt;" in html
    notes = json.loads(re.search(r'class="vbq-notes">(.*?)</script>', html, flags=re.S).group(1))
    assert notes == ["Right: one is less.", "No: </script>"]
    assert "<\\/script>" in html  # an explanation cannot close the script early
    assert q._repr_html_() == html and "interactive" in repr(q)


def test_quiz_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least two options"):
        widgets.quiz("q", ["only"], 0, ["e"])
    with pytest.raises(ValueError, match="one explanation per option"):
        widgets.quiz("q", ["a", "b"], 0, ["e"])
    with pytest.raises(ValueError, match=r"answer must be the index of an option, 0 to 1; got 2"):
        widgets.quiz("q", ["a", "b"], 2, ["e", "f"])


def _decode_spec(html):
    spec = json.loads(re.search(r'class="vbx-spec">(.*?)</script>', html, flags=re.S).group(1))
    layers = []
    for L in spec["layers"]:
        W = np.frombuffer(base64.b64decode(L["w"]), dtype="<f2").astype(np.float32).reshape(L["out"], L["in"])
        b = np.frombuffer(base64.b64decode(L["b"]), dtype="<f2").astype(np.float32)
        layers.append((W, b, L["act"]))
    return spec, layers


def numpy_decode(layers, z):
    h = np.asarray(z, dtype=np.float32)
    for W, b, act in layers:
        h = W @ h + b
        h = {"relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "elu": lambda a: np.where(a > 0, a, np.expm1(a)),
             "tanh": np.tanh, "identity": lambda a: a}[act](h)
    return h


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_latent_explorer_exports_the_decoder_faithfully(activation):
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(32, 16), activation=activation)
    html = widgets.latent_explorer(vae, points=torch.randn(50, 2), labels=torch.arange(50) % 10, lim=2.5).html
    spec, layers = _decode_spec(html)
    assert [L[0].shape for L in layers] == [(16, 2), (32, 16), (784, 32)]
    assert spec["lim"] == 2.5 and spec["side"] == 28 and len(spec["points"]) <= 50
    assert all(abs(p[0]) <= 2.5 and abs(p[1]) <= 2.5 for p in spec["points"])
    for z in ([0.0, 0.0], [1.5, -2.0]):
        expected = vae.mean_image(torch.tensor([z])).flatten().detach().numpy()
        np.testing.assert_allclose(numpy_decode(layers, z), expected, atol=5e-3)  # float16 weights
    fallback = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(fallback)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "https://" not in html and "http://" not in html  # nothing loads from the network


def test_latent_explorer_rejects_models_it_cannot_run():
    with pytest.raises(ValueError, match="arch='mlp' and z_dim=2"):
        widgets.latent_explorer(vb.VAE(z_dim=3, hidden=(8,)))
    with pytest.raises(ValueError, match="supports relu, tanh, elu and linear"):
        widgets.latent_explorer(vb.VAE(z_dim=2, hidden=(8,), activation="silu"))
    with pytest.raises(ValueError, match=r"points must be 2-D codes of shape \(n, 2\)"):
        widgets.latent_explorer(vb.VAE(z_dim=2, hidden=(8,)), points=torch.zeros(5, 3))


def test_latent_sliders_redraw_on_change():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=2, hidden=(16,))
    box = widgets.latent_sliders(vae)
    s1, s2 = box.children[0].children
    img = box.children[1]
    first = img.value
    s1.value = 2.5
    assert img.value != first and img.value[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="needs a 2-D latent space"):
        widgets.latent_sliders(vb.VAE(z_dim=3, hidden=(8,)))


def test_denoise_explorer_reports_psnr_and_redraws():
    torch.manual_seed(0)
    ae = vb.Autoencoder(z_dim=4, hidden=(16,))
    clean = torch.rand(6, 1, 28, 28)
    box = widgets.denoise_explorer(ae, clean, sigmas=(0.1, 0.5))
    slider, img, label = box.children
    before = img.value
    slider.value = 0.1 if slider.value == 0.5 else 0.5
    assert img.value != before and "noisy (PSNR" in label.value and "dB" in label.value


def test_interpolation_explorer_follows_its_controls():
    torch.manual_seed(0)
    vae = vb.VAE(z_dim=3, hidden=(16,))
    box = widgets.interpolation_explorer(vae, torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4]), steps=5)
    (_, b), method, img = box.children[0].children, box.children[1], box.children[2]
    first = img.value
    b.value = 3
    second = img.value
    method.value = "slerp"
    assert len({first, second, img.value}) == 3
