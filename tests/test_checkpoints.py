"""checkpoints.py: save and load round-trip, fail clearly, and survive kill -9 at any moment."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import vaebook as vb

def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    vae = vb.VAE(arch="conv", z_dim=3, hidden=(4, 8), likelihood="gaussian", c=0.05)
    path = vb.save(vae, tmp_path / "sub" / "vae.pt")
    again = vb.load(path)
    assert isinstance(again, vb.VAE) and again.config == vae.config
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(again.encode(x), vae.encode(x))
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["vae.pt"]  # no temporary left behind


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    ae = vb.Autoencoder(z_dim=2, hidden=(8,))
    path = tmp_path / "ae.pt"
    vb.save(ae, path)
    good = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        vb.save(vb.Autoencoder(z_dim=3, hidden=(8,)), path)
    assert path.read_bytes() == good  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.pt"]


def test_load_reports_corrupt_truncated_and_mismatched_files(tmp_path):
    with pytest.raises(vb.CheckpointError, match="no checkpoint at"):
        vb.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(vb.CheckpointError, match="not a readable vaebook checkpoint"):
        vb.load(junk)
    good = vb.save(vb.Autoencoder(z_dim=2, hidden=(8,)), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(vb.CheckpointError, match="corrupt or truncated"):
        vb.load(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(vb.CheckpointError, match="not a vaebook checkpoint"):
        vb.load(other)
    # a config that does not match its weights
    payload = torch.load(good, weights_only=True)
    payload["config"]["z_dim"] = 5
    mismatched = tmp_path / "mismatched.pt"
    torch.save(payload, mismatched)
    with pytest.raises(vb.CheckpointError, match="weights do not match a Autoencoder"):
        vb.load(mismatched)
    payload["config"] = {"zdim": 2}
    torch.save(payload, mismatched)
    with pytest.raises(vb.CheckpointError, match="cannot be rebuilt: unknown AEConfig option 'zdim'"):
        vb.load(mismatched)


# One process imports vaebook once, then forks a saver on each request: a saver writes checkpoints
# in a loop until it is killed; the parent reaps it and reports.
FORK_SERVER = """
import os, sys, torch, vaebook as vb
path = sys.argv[1]
torch.manual_seed(0)
models = [vb.VAE(z_dim=4, hidden=(256, 256)), vb.VAE(z_dim=4, hidden=(256, 256))]
for line in sys.stdin:
    if line.strip() == "reap":
        os.waitpid(-1, 0)
        print("reaped", flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            vb.save(models[i % 2], path)
            i += 1
    print(pid, flush=True)
"""


def test_save_survives_kill_9_at_any_moment_and_cleans_up_after_itself(tmp_path):
    """Kill a process that saves in a loop, 20 times at random moments: the file always loads, and
    the temporary files the killed saves leave behind are removed by the next save or load."""
    path = tmp_path / "vae.pt"
    rng = torch.Generator().manual_seed(0)
    leftovers = []
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        for round_ in range(20):
            server.stdin.write("save\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            while round_ == 0 and not path.exists():  # the first save must complete before there is anything to load
                time.sleep(0.005)
            time.sleep(0.02 + 0.1 * torch.rand(1, generator=rng).item())
            os.kill(pid, signal.SIGKILL)
            server.stdin.write("reap\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "reaped"
            leftovers.append(len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]))
            model = vb.load(path)  # never half-written: the old checkpoint or the new one
            assert isinstance(model, vb.VAE) and model.config.hidden == (256, 256)
            assert [p.name for p in tmp_path.iterdir()] == ["vae.pt"], "load left a dead saver's temporary file"
    finally:
        server.kill()
        server.wait()
    assert sum(leftovers) >= 5, f"too few kills landed inside a save ({leftovers}): the test tested little"


def test_a_later_save_removes_a_dead_savers_temporary_but_not_a_live_ones(tmp_path):
    path = tmp_path / "ae.pt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ae.pt.{int(dead.stdout)}.abc123.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".ae.pt.{os.getpid()}.def456.tmp"  # this process is alive: maybe mid-save
    live.write_bytes(b"half")
    vb.save(vb.Autoencoder(z_dim=2, hidden=(8,)), path)
    assert not stale.exists() and live.exists()
