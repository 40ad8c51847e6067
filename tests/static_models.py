"""Static models (no tensor-dependent control flow): the whole forward is one region."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x))


class ResNetSmall(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.layers = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2), BasicBlock(16, 32, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class TransformerEnc(nn.Module):
    def __init__(self, vocab: int = 50, d: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, 4, 32, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3)

    def forward(self, tokens):
        h = self.enc(self.emb(tokens))
        return self.head(self.norm(h).mean(1))


class GRUStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, h = self.gru(x)
        return self.fc(out[:, -1]), h


class LSTMStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.fc(out.mean(1)), (h, c)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(10, 32),
            nn.GELU(),
            nn.Dropout(0.2),
            nn.Linear(32, 32),
            nn.SiLU(),
            nn.LayerNorm(32),
            nn.Linear(32, 4),
        )

    def forward(self, x):
        return F.log_softmax(self.net(x), dim=-1)


def cases() -> dict[str, tuple[type[nn.Module], list[tuple]]]:
    g = torch.Generator().manual_seed(0)
    return {
        "resnet": (ResNetSmall, [(torch.randn(b, 3, 16, 16, generator=g),) for b in (1, 4)]),
        "transformer": (
            TransformerEnc,
            [(torch.randint(0, 50, (b, 7), generator=g),) for b in (1, 3)],
        ),
        "gru": (GRUStack, [(torch.randn(b, 5, 6, generator=g),) for b in (1, 4)]),
        "lstm": (LSTMStack, [(torch.randn(b, 5, 6, generator=g),) for b in (1, 4)]),
        "mlp": (MLP, [(torch.randn(b, 10, generator=g),) for b in (1, 8)]),
    }
