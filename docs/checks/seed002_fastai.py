"""Seed 002's three-class CNN, as the tutorial runs it, with fastai 2.8.12: digits 0, 1, 2 of
MNIST in class order (unshuffled torch DataLoaders, batch 1862 and 3147), Conv(1,16,5)-ReLU-
MaxPool(2)-Flatten-Linear(2304,3), CrossEntropyLoss, Learner(dls, net, loss).fit(10)."""

import sys

import torch
import torchvision
from fastai.vision.all import DataLoaders, Learner

root = sys.argv[1]


def three_classes(train: bool):
    data = torchvision.datasets.MNIST(root, train=train, download=False)
    x = torch.cat([data.data[data.targets == c] for c in (0, 1, 2)]).unsqueeze(1).float() / 255
    y = torch.cat([torch.full(((data.targets == c).sum(),), c) for c in (0, 1, 2)])
    return x, y


(X, y), (XX, yy) = three_classes(True), three_classes(False)
for seed in (0, 1, 2):
    torch.manual_seed(seed)
    dl1 = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=1862)
    dl2 = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(XX, yy), batch_size=3147)
    net = torch.nn.Sequential(
        torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, (5, 5)),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d((2, 2)),
            torch.nn.Flatten(),
        ),
        torch.nn.Linear(2304, 3),
    )
    lrnr = Learner(DataLoaders(dl1, dl2), net, torch.nn.CrossEntropyLoss())
    with lrnr.no_bar(), lrnr.no_logging():
        lrnr.fit(10)
    valid_loss = lrnr.validate()[0]
    with torch.no_grad():
        acc = (lrnr.model.cpu()(XX).argmax(1) == yy).float().mean().item()
    print(
        f"seed {seed}: train {len(X)}, test {len(XX)}, valid_loss {valid_loss:.4f}, acc {acc:.4f}"
    )
