"""The PyTorch side of bench/compare_peers.sh: the same models, data and batch as
bench/*.yaml, trained for some epochs; prints RESULT {"samples_per_second": ...}
over the training steps alone (data already in memory, shuffled before the clock).
Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse, gzip, json, resource, time
import numpy as np
import torch, torch.nn as nn

ROOT = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


p = argparse.ArgumentParser()
p.add_argument("--model", choices=["mlp", "cnn"], required=True)
p.add_argument("--opt", choices=["sgd", "adam"], default="adam")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--limit", type=int, default=0, help="first N training samples (0: all)")
p.add_argument("--batch", type=int, default=128)
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
x = read_idx(f"{ROOT}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
y = read_idx(f"{ROOT}/train-labels-idx1-ubyte.gz").astype(np.int64)
if a.limit:
    x, y = x[:a.limit], y[:a.limit]
X, Y = torch.from_numpy(x), torch.from_numpy(y)
if a.model == "mlp":
    X = X.reshape(-1, 784)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
else:
    X = X.unsqueeze(1)
    model = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10))
opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if a.opt == "sgd"
       else torch.optim.Adam(model.parameters(), lr=1e-3))
lossf = nn.CrossEntropyLoss()
n, seconds = X.shape[0], 0.0
for epoch in range(a.epochs):
    perm = torch.randperm(n)
    Xs, Ys = X[perm].contiguous(), Y[perm].contiguous()
    t0 = time.perf_counter()
    for i in range(0, n, a.batch):
        opt.zero_grad(set_to_none=True)
        lossf(model(Xs[i:i + a.batch]), Ys[i:i + a.batch]).backward()
        opt.step()
    seconds += time.perf_counter() - t0
print("RESULT " + json.dumps({"samples_per_second": n * a.epochs / seconds, "threads": torch.get_num_threads(),
                             "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
