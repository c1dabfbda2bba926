"""Interactive pieces: quizzes and a latent explorer that work without a kernel, plus ipywidgets explorers.

- :func:`quiz` and :func:`latent_explorer` return self-contained HTML (inline JavaScript, no CDN, no
  network). They work in the static HTML book, in Colab and in Jupyter alike.
- :func:`latent_sliders`, :func:`denoise_explorer` and :func:`interpolation_explorer` are ipywidgets:
  they need a live kernel (Jupyter, Colab) and recompute with the model on every change.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from importlib import resources
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .colab import ensure_widget_support
from .data import add_gaussian_noise
from .metrics import psnr
from .models import VAE, Autoencoder
from .plot import grid_image
from .stats import interpolate

__all__ = ["quiz", "latent_explorer", "latent_sliders", "denoise_explorer", "interpolation_explorer", "Html"]

class Html:
    """A piece of HTML that notebooks display as HTML (``_repr_html_``) and tests can read (``.html``)."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:  # what a plain-text frontend shows instead of raw markup
        return f"<vaebook interactive element: {len(self.html):,} characters of HTML; view it in Jupyter, Colab or the HTML book>"


def _asset(name: str) -> str:
    return (resources.files("vaebook") / "assets" / name).read_text(encoding="utf-8")


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


QUIZ_CSS = """
.vbq{border:1px solid #c8d1dc;border-radius:8px;padding:.8em 1em;margin:.6em 0;max-width:44em;background:#f7f9fb;color:#1b1f24}
.vbq-q{font-weight:600;margin:0 0 .6em 0}
.vbq-options{display:flex;flex-wrap:wrap;gap:.5em}
.vbq-option{font:inherit;padding:.35em .9em;border:1px solid #8a99ab;border-radius:6px;background:#fff;color:#1b1f24;cursor:pointer}
.vbq-option:hover{background:#eef3f8}
.vbq-option.vbq-right{background:#dff3e2;border-color:#2e7d32}
.vbq-option.vbq-wrong{background:#fde2e1;border-color:#c62828}
.vbq-feedback{margin-top:.6em;min-height:1.2em}
.vbq-feedback.vbq-right{color:#1b5e20}
.vbq-feedback.vbq-wrong{color:#8e1c1c}
"""


def quiz(question: str, options: Sequence[str], answer: int, explanations: Sequence[str]) -> Html:
    """A multiple-choice question that tells the reader whether the chosen answer is right, and why.

    ``answer`` is the index of the right option; ``explanations[i]`` is shown when option ``i`` is
    chosen. Plain text only (it is escaped); write symbols in Unicode (θ, φ, ‖x‖²).
    """
    if len(options) < 2:
        raise ValueError(f"a quiz needs at least two options, got {len(options)}")
    if len(explanations) != len(options):
        raise ValueError(f"give one explanation per option: {len(options)} options, {len(explanations)} explanations")
    if not (isinstance(answer, int) and 0 <= answer < len(options)):
        raise ValueError(f"answer must be the index of an option, 0 to {len(options) - 1}; got {answer!r}")
    qid = _new_id("vbq")
    buttons = "".join(
        f'<button type="button" class="vbq-option" data-index="{i}" aria-pressed="false">{html.escape(o)}</button>'
        for i, o in enumerate(options)
    )
    notes = json.dumps(list(explanations)).replace("</", "<\\/")
    text = (
        f"<style>{QUIZ_CSS}</style>"
        f'<div class="vbq" id="{qid}" data-answer="{answer}">'
        f'<p class="vbq-q">{html.escape(question)}</p>'
        f'<div class="vbq-options" role="group" aria-label="answers">{buttons}</div>'
        f'<div class="vbq-feedback" role="status" aria-live="polite"></div>'
        f'<script type="application/json" class="vbq-notes">{notes}</script>'
        f"</div>"
        f"<script>{_asset('quiz.js')}({json.dumps(qid)});</script>"
    )
    return Html(text)


# --------------------------------------------------------------------------- static latent explorer
EXPLORER_CSS = """
.vbx{margin:.8em 0;color:#1b1f24}
.vbx-live{display:none;flex-wrap:wrap;gap:1em;align-items:flex-start}
.vbx-plane{border:1px solid #9aa7b6;cursor:crosshair;touch-action:none;width:260px;height:260px;max-width:90vw;max-height:90vw}
.vbx-plane:focus{outline:2px solid #1f6feb}
.vbx-digit{border:1px solid #9aa7b6;width:168px;height:168px;image-rendering:pixelated}
.vbx-readout{font-family:monospace;font-size:.85em;margin-top:.3em}
.vbx-fallback img{max-width:100%}
.vbx-caption{font-size:.9em;max-width:30em}
"""


def _f16_b64(t: Tensor) -> str:
    return base64.b64encode(t.detach().cpu().to(torch.float16).numpy().astype("<f2").tobytes()).decode("ascii")


def _mlp_decoder_layers(model: VAE) -> list[dict]:
    if not isinstance(model, VAE) or model.config.arch != "mlp" or model.config.z_dim != 2:
        raise ValueError("latent_explorer needs a VAE with arch='mlp' and z_dim=2")
    act = model.config.activation
    if act not in ("relu", "tanh", "elu", "linear"):
        raise ValueError(f"the in-browser decoder supports relu, tanh, elu and linear activations, not {act!r}")
    linears = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    layers = []
    for i, lin in enumerate(linears):
        last = i == len(linears) - 1
        layers.append({
            "w": _f16_b64(lin.weight),  # (out, in), row-major
            "b": _f16_b64(lin.bias),
            "in": lin.in_features,
            "out": lin.out_features,
            "act": "sigmoid" if last else ("identity" if act == "linear" else act),
        })
    return layers


def _png_grey(array: np.ndarray) -> bytes:
    """An 8-bit grey PNG of an array of grey levels in [0, 1] (a third the size of matplotlib's RGBA)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _png_b64(array: np.ndarray) -> str:
    return base64.b64encode(_png_grey(array)).decode("ascii")


@torch.no_grad()
def latent_explorer(
    model: VAE, points: Tensor | None = None, labels: Tensor | None = None, lim: float = 3.0, n_fallback: int = 12
) -> Html:
    """An in-browser explorer of a 2-D latent space: drag a point over the plane, see the decoded digit.

    The decoder's weights are exported into the page (float16, base64) and a small JavaScript
    forward pass decodes on every move, in about a millisecond, with no kernel and no network.
    ``points`` (``(n, 2)`` codes, e.g. encoded test digits) and ``labels`` draw the data behind the
    plane. If JavaScript is off, a static grid of decodes is shown instead.
    """
    model = model.cpu().eval()
    layers = _mlp_decoder_layers(model)
    pts: list = []
    if points is not None:
        p = torch.as_tensor(points).detach().cpu()
        if p.dim() != 2 or p.shape[1] != 2:
            raise ValueError(f"points must be 2-D codes of shape (n, 2), got {tuple(p.shape)}")
        lab = torch.as_tensor(labels).cpu() if labels is not None else torch.zeros(len(p), dtype=torch.long)
        if lab.shape != p.shape[:1]:
            raise ValueError(f"labels: expected one per point, shape ({len(p)},), got shape {tuple(lab.shape)}")
        keep = (p.abs() <= lim).all(dim=1)
        pts = [[round(float(a), 3), round(float(b), 3), int(c)] for (a, b), c in zip(p[keep].tolist(), lab[keep].tolist(), strict=True)]
    spec = {"layers": layers, "lim": lim, "side": model.config.image_shape[-1], "points": pts}
    g = torch.linspace(-lim, lim, n_fallback)
    z1, z2 = torch.meshgrid(g, g.flip(0), indexing="xy")
    grid = model.mean_image(torch.stack([z1.flatten(), z2.flatten()], -1))
    fallback = _png_b64(grid_image(grid, nrow=n_fallback, pad=0))
    fallback_alt = (
        f"A {n_fallback} × {n_fallback} grid of images decoded from codes evenly spaced over the latent plane, "
        f"z₁ from −{lim:g} to {lim:g} left to right and z₂ from −{lim:g} to {lim:g} bottom to top. "
        "It shows how the decoded image changes across the plane."
    )
    xid = _new_id("vbx")
    text = (
        f"<style>{EXPLORER_CSS}</style>"
        f'<div class="vbx" id="{xid}">'
        f'<div class="vbx-fallback"><img alt="{html.escape(fallback_alt)}" '
        f'src="data:image/png;base64,{fallback}"><p class="vbx-caption">A grid of decodes over the latent plane. '
        f"With JavaScript on, this is an explorer you can drag.</p></div>"
        f'<div class="vbx-live">'
        # role="application": a screen reader passes the arrow keys to the plane instead of reading on
        f'<div><canvas class="vbx-plane" width="260" height="260" tabindex="0" role="application" '
        f'aria-label="latent plane: use the arrow keys to move z" aria-describedby="{xid}-status"></canvas>'
        # the status line is a polite live region: each move is announced as what was decoded
        f'<div class="vbx-readout" id="{xid}-status" role="status" aria-live="polite" aria-atomic="true"></div></div>'
        f'<div><canvas class="vbx-digit" width="168" height="168" role="img" '
        f'aria-label="the image decoded from z, described by the status line"></canvas>'
        f'<p class="vbx-caption">Drag over the plane (or focus it and use the arrow keys). '
        f"Dots are encoded test digits, coloured by label; the image is E[x | z], decoded in your browser. "
        f"The line under the plane gives z, the image's ink (its mean grey level) and the labels of the "
        f"test digits whose codes are nearest.</p></div>"
        f"</div>"
        f'<script type="application/json" class="vbx-spec">{json.dumps(spec)}</script>'
        f"</div>"
        f"<script>{_asset('latent_explorer.js')}({json.dumps(xid)});</script>"
    )
    return Html(text)


# --------------------------------------------------------------------------- live ipywidgets explorers
def _png_bytes(images: Tensor, nrow: int, scale: int = 4) -> bytes:
    arr = grid_image(images, nrow=nrow)
    return _png_grey(np.kron(arr, np.ones((scale, scale), dtype=arr.dtype)))  # nearest-neighbour enlargement


def latent_sliders(model: VAE, lim: float = 3.0):
    """Two sliders over a 2-D latent ``z``; the decoded image ``E[x | z]`` updates live (needs a kernel)."""
    import ipywidgets as W

    ensure_widget_support()

    if model.config.z_dim != 2:
        raise ValueError(f"latent_sliders needs a 2-D latent space, the model has z_dim={model.config.z_dim}")
    device = next(model.parameters()).device
    s1 = W.FloatSlider(value=0.0, min=-lim, max=lim, step=0.05, description="z₁")
    s2 = W.FloatSlider(value=0.0, min=-lim, max=lim, step=0.05, description="z₂")
    img = W.Image(format="png", width=168, height=168)

    def redraw(_=None):
        with torch.no_grad():
            x = model.mean_image(torch.tensor([[s1.value, s2.value]], device=device))
        img.value = _png_bytes(x.cpu(), nrow=1, scale=6)

    s1.observe(redraw, names="value")
    s2.observe(redraw, names="value")
    redraw()
    return W.HBox([W.VBox([s1, s2]), img])


def denoise_explorer(model: Autoencoder, clean: Tensor, sigmas: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8), n: int = 6):
    """A noise-level slider: noisy input, the denoiser's output, and the clean image, with PSNRs (needs a kernel)."""
    import ipywidgets as W

    ensure_widget_support()

    device = next(model.parameters()).device
    clean = clean[:n].to(device)
    slider = W.SelectionSlider(options=list(sigmas), value=sigmas[len(sigmas) // 2], description="noise σ")
    img = W.Image(format="png")
    label = W.HTML()

    def redraw(_=None):
        g = torch.Generator().manual_seed(0)  # the CPU's generator: the same noise on every device
        noisy = add_gaussian_noise(clean, slider.value, generator=g)
        with torch.no_grad():
            out = model(noisy)
        rows = torch.cat([noisy.clamp(0, 1), out, clean]).cpu()
        img.value = _png_bytes(rows, nrow=n, scale=3)
        label.value = (
            f"rows: noisy (PSNR {psnr(noisy.clamp(0, 1), clean).mean():.1f} dB), "
            f"denoised ({psnr(out, clean).mean():.1f} dB), clean"
        )

    slider.observe(redraw, names="value")
    redraw()
    return W.VBox([slider, img, label])


def interpolation_explorer(model: VAE, images: Tensor, labels: Tensor | None = None, steps: int = 9):
    """Pick two digits and a method; see the decodes along the path between their codes (needs a kernel)."""
    import ipywidgets as W

    ensure_widget_support()

    device = next(model.parameters()).device
    names = [f"#{i}" + (f" (a {int(labels[i])})" if labels is not None else "") for i in range(len(images))]
    a = W.Dropdown(options=list(zip(names, range(len(images)), strict=True)), value=0, description="from")
    b = W.Dropdown(options=list(zip(names, range(len(images)), strict=True)), value=min(1, len(images) - 1), description="to")
    method = W.ToggleButtons(options=["linear", "slerp"], value="linear", description="path")
    img = W.Image(format="png")

    def redraw(_=None):
        with torch.no_grad():
            mu, _ = model.encode(images[[a.value, b.value]].to(device))
            z = interpolate(mu[0], mu[1], steps, method=method.value)  # (steps, z_dim)
            x = model.mean_image(z).cpu()
        img.value = _png_bytes(x, nrow=steps, scale=3)

    for w in (a, b, method):
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([a, b]), method, img])
