"""The PyTorch side of bench/compare_peers.sh for images: the same models, data and batch
as bench/*.yaml (mlp, cnn) and as the shipped experiments/fashion_mnist_cnn.yaml
(fashion_cnn) and experiments/fashion_mnist_resnet.yaml (resnet), trained for some epochs;
prints RESULT {"samples_per_second": ...} over the training steps alone (data already in
memory, shuffled before the clock). The shipped models' twins train as their yaml does
(normalisation, optimizer, weight decay on weights only), without the ResNet's augmentation,
which the benchmark turns off on both sides. The rate is constant: the yamls' per-epoch cosine
schedules give lr in the one epoch the benchmark trains. Each framework draws its own random
numbers (initialisation, shuffling, dropout). Run with Debian's /usr/bin/python3 (python3-torch)."""
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
p.add_argument("--model", choices=["mlp", "cnn", "fashion_cnn", "resnet"], required=True)
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
if a.model == "fashion_cnn":   # normalize: standardize (the training set's mean and std)
    x = (x - x.mean()) / x.std()
X, Y = torch.from_numpy(x), torch.from_numpy(y)


def conv_bn(cin, cout, kernel, stride=1, bias=True):
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=bias), nn.BatchNorm2d(cout)]


class Residual(nn.Module):   # the yaml's basic and down blocks
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride, False), nn.ReLU(), *conv_bn(cout, cout, 3, 1, False))
        self.shortcut = nn.Sequential(*conv_bn(cin, cout, 1, stride, False)) if stride > 1 else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


if a.model == "mlp":
    X = X.reshape(-1, 784)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
elif a.model == "cnn":
    X = X.unsqueeze(1)
    model = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10))
elif a.model == "fashion_cnn":
    X = X.unsqueeze(1)
    model = nn.Sequential(*conv_bn(1, 32, 3), nn.ReLU(), *conv_bn(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.2), *conv_bn(32, 64, 3), nn.ReLU(), *conv_bn(64, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(256, 10))
else:
    X = X.unsqueeze(1)
    model = nn.Sequential(*conv_bn(1, 16, 3, 1, False), nn.ReLU(), Residual(16, 16, 1), Residual(16, 16, 1),
                          Residual(16, 32, 2), Residual(32, 32, 1), Residual(32, 64, 2), Residual(64, 64, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
if a.model == "resnet":   # SGD with Nesterov momentum, weight decay on the weights only
    weights = [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in [m.weight]]
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 5e-4}, {"params": others}],
                          lr=0.1, momentum=0.9, nesterov=True)
elif a.opt == "sgd":
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
else:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
lossf = nn.CrossEntropyLoss()
n, seconds = X.shape[0], 0.0
model.train()
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
