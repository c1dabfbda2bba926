"""One meaning per symbol: the notation page, the chapters' symbol boxes, and no symbol in another's meaning."""

import json
import re
from pathlib import Path

import pytest

from vaebook.authoring import notation

ROOT = Path(__file__).resolve().parents[1]


def test_the_notation_page_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    assert "file: book/notation" in toc
    assert toc.index("book/notation") < toc.index("book/glossary"), "the notation page comes before the glossary"


def test_the_page_gives_every_symbol_one_meaning_and_agrees_with_the_chapters_boxes():
    assert notation.check_page(ROOT) == []


def test_no_chapter_uses_a_symbol_in_a_meaning_the_page_gives_to_another():
    assert notation.check_chapters(ROOT) == []


def test_the_other_pages_use_no_symbol_in_another_meaning():
    """Results, glossary, introduction: the rules that hold in every chapter hold there too."""
    assert notation.check_pages(ROOT) == []


def test_the_symbol_table_is_read_row_by_row():
    rows = notation.read_symbol_table((ROOT / "book" / "notation.md").read_text(encoding="utf-8"))
    table = {symbol: chapter for symbol, _, chapter in rows}
    # the lecture's symbols, and the ones the issue gave one meaning each
    for symbol, chapter in {"$\\mathbf x$": 1, "$d$": 1, "$\\mathbf z$": 1, "$k$": 1, "$c$": 5, "$\\theta$": 1, "$\\phi$": 5,
                            "$K$": 5, "$J$": 6, "$D$": 12, "$\\lambda$": 11, "$S$": 13}.items():
        assert table.get(symbol) == chapter, (symbol, table.get(symbol))
    assert len(rows) == len(table) > 100


# Each misuse the page forbids is reported, in the chapters where it is forbidden, and only there.
@pytest.mark.parametrize("chapter, text, symbol", [
    (10, r"We use $k = 100$ samples per digit.", "$k$"),
    (8, r"the estimate $\log\frac1k\sum_{i=1}^k w_i$", "$k$"),
    (10, r"the bound $\mathcal L_k$", "$k$"),
    (9, r"importance sampling ($k = 100$)", "$k$"),
    (13, r"$p(\mathbf x) = \sum_{k=1}^K \pi_k\,\mathcal N(\mathbf x;\, \mathbf m_k, \mathbf v_k)$", "$k$"),
    (11, r"a mixture prior of $K = 20$ components", "$K$"),
    (9, r"For the Gaussian decoder on $D$ pixels,", "$D$"),
    (9, r"$c^* = E/D$", "$D$"),
    (3, r"$\mathbf y = D_r(\mathbf x)$", "$D$"),
    (13, r"(`D.denoiser_score`)", "$D$"),
    (13, r"$\mathrm{KL}_t = \lambda_t\lVert\boldsymbol\epsilon - \hat{\boldsymbol\epsilon}\rVert^2$", "$\\lambda$"),
    (2, r"$+ \lambda \sum_{\text{pixels}} \lVert \nabla \mathbf u \rVert$", "$\\lambda$"),
    (7, r"averages over $S$ samples", "$S$"),
    (2, r"relative to the largest pixel value $R$", "$R$"),
    (11, r"$q(\mathbf z) = \frac1N\sum_{n=1}^N q(\mathbf z\mid\mathbf x_n)$", "$n$"),
    (12, r"if $H$ is the entropy of the data", "$\\mathcal H$"),
    (3, r"output channel $c$", "$c$"),
    (6, r"$\theta^{(t+1)} = \arg\max_\theta$", "$t$"),
    (4, r"$f_\theta(x) = d(e(x))$", "$\\mathbf d$"),
    (6, r"$\ell(\theta) = \sum_i \log p(\mathbf x_i;\theta)$", "$\\boldsymbol\\ell$"),
    (12, r"$E = \mathbb E_q\lVert \mathbf x - \mathbf d_\theta(\mathbf z)\rVert^2$", "$\\mathbf d_\\theta$"),
    (2, r"a *corruption process* $C(\tilde{\mathbf x} \mid \mathbf x)$", "$C(\\rho)$"),
    (7, r"$z_j\sim\mathrm{Bernoulli}(\pi_j)$", "$\\boldsymbol\\rho$"),
    (11, r"minimises $-\mathcal L_\lambda$", "$\\mathcal L_K$"),
    (13, r"$J_{\mathrm{DSM}}(\theta)$", "$L_{\\mathrm{DSM}}$"),
    (2, r"noise of standard deviation $\sigma_{\text{noise}}$", "$\\sigma$"),
    (1, r"centres the data at their mean $\mu$", "$\\boldsymbol\\mu$"),
])
def test_a_misused_symbol_is_reported(chapter, text, symbol):
    problems = notation.check_markdown(text, chapter)
    assert any(p.startswith(symbol + ":") for p in problems), problems


@pytest.mark.parametrize("chapter, text", [
    (5, r"We use $K = 100$ samples, and a code $\mathbf z \in \mathbb R^k$ with $k = 2$."),
    (10, r"the bound $\mathcal L_K$ with $K = 50$ samples, and $\mathcal L_1$, the ELBO"),
    (11, r"$p_\psi(\mathbf z) = \sum_{j=1}^J \pi_j\,\mathcal N(\mathbf z;\, \mathbf m_j, \operatorname{diag}\mathbf v_j)$ with $J = 20$ components, and a floor $\lambda$"),
    (12, r"$-\mathrm{ELBO} = D + R$, and $L_\beta = D + \beta R$; the data have $d$ pixels"),
    (13, r"`vb.diffusion.denoiser_score`, with $S$ network evaluations and $\omega_t$"),
    (9, r"$\lVert\mathbf x - \sigma(\mathbf d_\theta(\mathbf z))\rVert^2$ on $d$ pixels, $C(\rho)$ and $C(\tfrac12) = 2$"),
    (4, r"$\hat x = \mathbf d(z)$ with codes of mean $\hat\mu$ and covariance $\hat\Sigma$"),
])
def test_a_symbol_in_its_own_meaning_is_not_reported(chapter, text):
    assert notation.check_markdown(text, chapter) == []


def test_a_meaning_is_allowed_only_in_its_own_chapter():
    free_bits = r"each coordinate's KL term is charged only above a floor of $\lambda$ nats"
    assert notation.check_markdown(free_bits, 11) == []
    assert notation.check_markdown(free_bits, 13) != []
    steps = r"on the time steps $\tau_0 = T > \dots > \tau_S = 0$"
    assert notation.check_markdown(steps, 13) == [] and notation.check_markdown(steps, 7) != []


def test_code_that_names_a_module_with_a_symbol_is_reported():
    assert notation.check_code("import torch\nD = vb.diffusion  # the chapter's module\n", 13)
    assert notation.check_code("import torch\ndiffusion = vb.diffusion\n", 13) == []


def test_a_symbol_box_disagreeing_with_the_page_is_reported(tmp_path):
    (tmp_path / "book").mkdir()
    page = (ROOT / "book" / "notation.md").read_text(encoding="utf-8")
    (tmp_path / "book" / "notation.md").write_text(page, encoding="utf-8")
    for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        (tmp_path / "book" / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    assert notation.check_page(tmp_path) == []
    # a box that introduces a symbol the page does not list, or lists for another chapter
    path = tmp_path / "book" / "05_dlvm.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    box = next(c for c in nb["cells"] if c["cell_type"] == "markdown" and notation.BOX_TITLE in "".join(c["source"]))
    box["source"] = "".join(box["source"]).replace(r"- $\Delta$:", r"- $\Delta$, $k$, $\varpi$:")
    path.write_text(json.dumps(nb), encoding="utf-8")
    problems = notation.check_page(tmp_path)
    assert any("$\\varpi$, which notation.md does not list" in p for p in problems), problems
    assert any("$k$, which notation.md says first appears in chapter 1" in p for p in problems), problems
    # a page that gives one symbol two meanings
    (tmp_path / "book" / "notation.md").write_text(page.replace("| $S$ |", "| $K$ |"), encoding="utf-8")
    assert any(re.search(r"\$K\$ has two rows", p) for p in notation.check_page(tmp_path))
