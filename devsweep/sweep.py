import sys, time, itertools
import torch
import torch.multiprocessing as mp
sys.path.insert(0, "scripts")
import train_digit_classifier as T
from gankit.data.builtin import split_indices

VARIANTS = {
    "default": [],
    "ep50": ["--epochs", "50"],
    "ls0": ["--label-smoothing", "0"],
    "wide": ["--widths", "48,96,192"],
    "deep4": ["--widths", "32,64,128,256"],
    "strong_aug": ["--rotate", "15", "--shift", "3"],
    "lr5": ["--lr", "5e-3"],
    "bs32": ["--batch-size", "32"],
    "wide_ep50": ["--widths", "48,96,192", "--epochs", "50"],
}

def job(item):
    name, seed = item
    torch.set_num_threads(1)
    d = torch.load("devsweep/mnist5k.pt")
    x = d["x"].float() * (2 / 255) - 1
    y = d["y"]
    args = T.parse_args(VARIANTS[name] + ["--seed", str(seed), "--device", "cuda"])
    tr, te = split_indices(len(x), args.held_out, args.split_seed)
    import io, contextlib
    t = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        net = T.train(args, x[tr], y[tr]).cpu()
    acc = T.accuracy(net, x[te], y[te])
    return f"{name:12s} seed {seed}  acc {acc:.4f}  {time.time()-t:.0f}s"

if __name__ == "__main__":
    mp.set_start_method("spawn")
    items = list(itertools.product(VARIANTS, [0, 1]))
    with mp.Pool(6) as pool:
        for line in pool.imap_unordered(job, items):
            print(line, flush=True)
