"""Train the digit classifier behind vb.realism_score and write it to vaebook/assets/digit_classifier.pt.

    python scripts/train_scorer.py --root ../shared/data

Needs the full MNIST in torchvision's raw layout under --root. The result is committed, so readers
never run this; it is here so that the shipped weights can be reproduced (seeded, CPU, about 2 min).
Light augmentation (random shifts of up to 2 pixels) keeps its features from keying on exact
pixel positions, which generated digits do not respect.
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import vaebook as vb

OUT = Path(__file__).resolve().parents[1] / "vaebook" / "assets" / "digit_classifier.pt"


def shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to 2 pixels in each direction (zero fill)."""
    padded = F.pad(x, (2, 2, 2, 2))  # (b, 1, 32, 32)
    dx, dy = torch.randint(0, 5, (2,), generator=g).tolist()  # one shift per batch keeps it cheap
    return padded[:, :, dy:dy + 28, dx:dx + 28]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="folder holding MNIST/raw/ (torchvision layout)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    train = vb.load_mnist("train", root=args.root, download=False)
    test = vb.load_mnist("test", root=args.root, download=False)
    if not train.full:
        raise SystemExit(f"{args.root} does not hold the full MNIST; the scorer is trained on all 60,000 digits")
    vb.seed_everything(0)
    clf = vb.DigitClassifier()
    t0 = time.time()
    hist = vb.fit(clf, (train.x, train.y), epochs=args.epochs, lr=2e-3, batch_size=128, schedule="cosine",
                  loss=lambda m, x, y: vb.training_loss(m, shift(x, g), y), device="cpu", progress=False)
    acc = vb.evaluate(clf, (test.x, test.y))["accuracy"]
    print(f"trained in {time.time() - t0:.0f} s; train loss {hist.train['loss'][-1]:.4f}; test accuracy {acc:.4f}")
    vb.save(clf, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


g = torch.Generator().manual_seed(1)

if __name__ == "__main__":
    main()
