"""The W3 network (../shared/WORKLOADS.md), shared by bench/torch/workloads.py
and bench/dist/ddp_w3.py; bench/scorch/unet28.lua is its scorch twin."""
import torch


class UNet28(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv0 = nn.Conv2d(1, 32, 3, stride=1, padding=1)
        self.emb = nn.Linear(1, 32)
        self.gn0 = nn.GroupNorm(8, 32)
        self.conv1 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.gn1 = nn.GroupNorm(8, 64)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=1, padding=1)
        self.gn2 = nn.GroupNorm(8, 64)
        self.conv3 = nn.Conv2d(96, 32, 3, stride=1, padding=1)
        self.gn3 = nn.GroupNorm(8, 32)
        self.conv4 = nn.Conv2d(32, 1, 3, stride=1, padding=1)

    def forward(self, x, ls):
        F = torch.nn.functional
        B = x.shape[0]
        h = self.conv0(x) + self.emb(ls).view(B, 32, 1, 1)
        h1 = F.silu(self.gn0(h))
        h = F.silu(self.gn1(self.conv1(h1)))
        h = F.silu(self.gn2(self.conv2(h)))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = torch.cat([h, h1], 1)
        h = F.silu(self.gn3(self.conv3(h)))
        return self.conv4(h)
