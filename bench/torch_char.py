"""The PyTorch side of the character models: --model transformer is
experiments/char_transformer.yaml written in PyTorch (minGPT's shape), with the same data,
initialisation scheme, optimizer and learning rate per epoch (bench/compare_char_transformer.sh);
--model lstm is experiments/char_lstm.yaml (bench/compare_peers.sh): the same data, model,
optimizer, clipping and rates, PyTorch's own initialisation. Prints the validation loss
after every epoch, then RESULT {"samples_per_second": ..., "val_loss": [...]}; samples/s
over the training steps alone. Run with Debian's /usr/bin/python3 (python3-torch).

The LSTM: byte embedding 64, one nn.LSTM layer of 256 units over the window (state zero at
each window's start, as the yaml's), a dense 256 at every position; Adam lr 2e-3, gradient
norm clipped to 5, the rate per epoch a cosine from lr to lr/10 (--warmup 0).

The transformer:
What is the same as Backplane's run:
- data: the text dataset's windows (files of the folder in name order, symlinks and files
  holding a 0 byte skipped; the last 10% of every file held out for validation; windows of
  64 bytes at a stride, next-byte targets), batches of 32 in a fresh shuffle each epoch,
  the last batch partial;
- model: byte embedding (N(0, 0.02)) + learned positions (N(0, 0.02)), 2 pre-norm blocks
  (layer norm, causal 4-head attention with a fused QKV projection, N(0, 1/C) weights and
  zero biases; layer norm, dense 512 with exact GELU, dense 128, He-normal weights and zero
  biases), a final layer norm, a dense 256 (He-normal);
- loss: cross entropy averaged over positions and samples (nats per byte);
- optimizer: AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.1 on weights and
  embeddings only), the rate per epoch as Backplane's warmup + cosine: with one warmup
  epoch lr/2 in epoch 1, then a half cosine from lr to lr/10 over the remaining epochs.
The random numbers differ (each framework its own generator), so the two runs agree in
distribution, not in bits."""
import argparse, json, math, os, resource, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--model", choices=["transformer", "lstm"], default="transformer")
p.add_argument("--path", default="/usr/share/games/fortunes")
p.add_argument("--context", type=int, default=64)
p.add_argument("--stride", type=int, default=0, help="0: the context")
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--steps", type=int, default=0,
               help="stop each epoch after N steps and skip validation (0: all), for a quick timing")
p.add_argument("--warmup", type=int, default=None,
               help="warmup epochs, as the yaml's optimizer.schedule.warmup (default: the yaml's, 1 or 0)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
if a.warmup is None:
    a.warmup = 1 if a.model == "transformer" else 0
T, C, HEADS, HIDDEN, BATCH = a.context, 128, 4, 512, 32
LR, WD, CLIP = (1e-3, 0.1, 0.0) if a.model == "transformer" else (2e-3, 0.0, 5.0)
stride = a.stride or T
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def corpus(path):
    names = sorted(os.listdir(path)) if os.path.isdir(path) else [""]
    train, held = bytearray(), bytearray()
    for name in names:
        f = os.path.join(path, name) if name else path
        if name and (os.path.islink(f) or not os.path.isfile(f)):
            continue
        data = open(f, "rb").read()
        if b"\0" in data:
            continue
        cut = len(data) - int(len(data) * 0.1)
        train += data[:cut]
        held += data[cut:]
    return np.frombuffer(bytes(train), np.uint8), np.frombuffer(bytes(held), np.uint8)


def windows(b):
    count = (len(b) - T - 1) // stride + 1
    idx = np.arange(count)[:, None] * stride + np.arange(T)[None, :]
    return torch.from_numpy(b[idx].astype(np.int64)), torch.from_numpy(b[idx + 1].astype(np.int64))


def he(layer, fan_in):
    nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / fan_in))
    nn.init.zeros_(layer.bias)
    return layer


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.out = nn.Linear(C, 3 * C), nn.Linear(C, C)
        for m in (self.qkv, self.out):
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(C))
            nn.init.zeros_(m.bias)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, x):
        n, t, _ = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (z.view(n, t, HEADS, C // HEADS).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(C // HEADS)
        s = s.masked_fill(~self.mask[:t, :t], float("-inf"))
        y = (F.softmax(s, dim=-1) @ v).transpose(1, 2).contiguous().view(n, t, C)
        return self.out(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(C), Attention(), nn.LayerNorm(C)
        self.mlp = nn.Sequential(he(nn.Linear(C, HIDDEN), C), nn.GELU(), he(nn.Linear(HIDDEN, C), HIDDEN))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(256, C)
        self.pos = nn.Parameter(torch.randn(T, C) * 0.02)
        nn.init.normal_(self.tok.weight, 0.0, 0.02)
        self.blocks = nn.Sequential(Block(), Block())
        self.ln, self.head = nn.LayerNorm(C), he(nn.Linear(C, 256), C)

    def forward(self, ids):
        return self.head(self.ln(self.blocks(self.tok(ids) + self.pos)))


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.lstm, self.head = nn.Embedding(256, 64), nn.LSTM(64, 256, batch_first=True), nn.Linear(256, 256)

    def forward(self, ids):
        return self.head(self.lstm(self.tok(ids))[0])


def rate(epoch):   # 1-based, Backplane's scheduled_rate: linear warmup, then cosine with min_factor 0.1
    if epoch <= a.warmup:
        return LR * epoch / (a.warmup + 1)
    rest, e = a.epochs - a.warmup, epoch - a.warmup
    t = (e - 1) / (rest - 1) if rest > 1 else 0.0
    return LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


train_b, held_b = corpus(a.path)
X, Y = windows(train_b)
VX, VY = windows(held_b)
if a.model == "transformer":
    model = Gpt()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and "ln" not in n] + [model.pos]
    rest = [p for p in model.parameters() if all(p is not d for d in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}], lr=LR)
else:
    model = Lstm()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
print(f"{X.shape[0]} training windows, {VX.shape[0]} validation, "
      f"{sum(p.numel() for p in model.parameters())} parameters", flush=True)

samples, seconds, val = 0, 0.0, []
for epoch in range(1, a.epochs + 1):
    for g in opt.param_groups:
        g["lr"] = rate(epoch)
    model.train()
    perm = torch.randperm(X.shape[0])
    Xs, Ys = X[perm].contiguous(), Y[perm].contiguous()
    t0 = time.perf_counter()
    for step, i in enumerate(range(0, X.shape[0], BATCH)):
        if a.steps and step == a.steps:
            break
        opt.zero_grad(set_to_none=True)
        x, y = Xs[i:i + BATCH], Ys[i:i + BATCH]
        F.cross_entropy(model(x).reshape(-1, 256), y.view(-1)).backward()
        if CLIP:
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        samples += x.shape[0]
    seconds += time.perf_counter() - t0
    if a.steps:
        continue
    model.eval()
    with torch.no_grad():
        total = sum(F.cross_entropy(model(VX[i:i + 256]).reshape(-1, 256), VY[i:i + 256].view(-1), reduction="sum").item()
                    for i in range(0, VX.shape[0], 256))
    val.append(total / VY.numel())
    print(f"epoch {epoch}/{a.epochs}  val_loss {val[-1]:.4f}  {samples / seconds:.0f} samples/s", flush=True)
print("RESULT " + json.dumps({"samples_per_second": samples / seconds, "val_loss": val,
                             "threads": torch.get_num_threads(),
                             "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
