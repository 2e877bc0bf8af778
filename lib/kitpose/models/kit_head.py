"""Keypoint Interactive Transformer (KIT) head, published name ``channelformer``
(published details: docs/published_behaviour.md, Model).

Each of the K keypoint maps, whole, is one token. Optional body-part prompt tokens come
from a cosine k-medoids grouping of the maps plus a small conv "meta net" on the
backbone features. A pre-norm transformer mixes the P+K tokens and an MLP maps every
token back to a heatmap.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .kmedoids import kmedoids_cosine

POS_EMBEDDING_TYPES = ("none", "sine", "sine-full", "learnable")


def sine_position_table(num_positions, dim, temperature=10000.0, eps=1e-6):
    """Fixed 1-D sine table [1, num_positions, dim]: positions 1..N scaled to (0, 2*pi];
    even channels sin, odd channels cos, frequency shared by each channel pair."""
    positions = torch.arange(1, num_positions + 1, dtype=torch.float32)
    positions = positions / (num_positions + eps) * (2 * math.pi)
    channels = torch.arange(dim, dtype=torch.float32)
    frequencies = temperature ** (2 * torch.div(channels, 2, rounding_mode="floor") / dim)
    angles = positions[:, None] / frequencies
    table = torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)
    return table[None]


class Attention(nn.Module):
    def __init__(self, dim, heads, dropout=0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"MODEL.DIM {dim} must be divisible by MODEL.TRANSFORMER_HEADS {heads}")
        self.heads = heads
        # quirk: the published attention scales by the whole width D, not the head width D/heads
        self.scale = dim ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def split_heads(self, x):
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, x, first_query=0):
        """Every token attends to all; only tokens `first_query`.. are returned (queries)."""
        b, n, dim = x.shape
        q, k, v = (self.split_heads(t) for t in self.to_qkv(x).chunk(3, dim=-1))
        q = q[:, :, first_query:]
        weights = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, n - first_query, dim)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class TransformerLayer(nn.Module):
    """Pre-norm: x + Attn(LN1(x)), then x + FFN(LN2(x)).

    With `first_query` > 0 the leading tokens are only keys and values: the layer returns
    tokens `first_query`.. and skips the others' output projection and FFN.
    """

    def __init__(self, dim, heads, mlp_dim, dropout=0.0):
        super().__init__()
        self.attn = Attention(dim, heads, dropout)
        self.ffn = FeedForward(dim, mlp_dim, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x, first_query=0):
        x = x[:, first_query:] + self.attn(self.norm1(x), first_query)
        return x + self.ffn(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, dropout=0.0):
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, mlp_dim, dropout) for _ in range(depth))

    def forward(self, x, repeated_pos=None, drop_leading=0):
        """`repeated_pos` [1,N,D] ('sine-full') is added again before every layer after the first.

        The `drop_leading` first tokens are not returned: the last layer uses them as keys and
        values only (earlier layers need their outputs).
        """
        if not self.layers:  # TRANSFORMER_DEPTH 0: the tokens go straight to the head
            return x[:, drop_leading:]
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if index > 0 and repeated_pos is not None:
                x = x + repeated_pos
            x = layer(x, drop_leading if index == last else 0)
        return x


class PromptLearner(nn.Module):
    """Body-part prompts: part features (mean maps of a part) + conv meta-net of F -> D."""

    def __init__(self, in_channels, num_parts, map_size, dim):
        super().__init__()
        self.meta_net = nn.Sequential(
            nn.Conv2d(in_channels, num_parts, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm2d(num_parts), nn.ReLU(inplace=True),
            nn.Conv2d(num_parts, num_parts, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm2d(num_parts), nn.ReLU(inplace=True))
        self.prompt_head = nn.Sequential(
            nn.LayerNorm(map_size), nn.Linear(map_size, map_size // 2),
            nn.LayerNorm(map_size // 2), nn.Linear(map_size // 2, dim))

    def forward(self, features, part_features):
        return self.prompt_head(part_features + self.meta_net(features).flatten(2))


class KITHead(nn.Module):
    """(F [B,C,h,w], T [B,K,h,w]) -> (part maps [B,P,h,w] or None, heatmaps [B,K,h,w]).

    Part maps are None without prompts (NUM_BP 0) or with `return_part_maps` False.
    """

    def __init__(self, in_channels, num_keypoints, num_parts, heatmap_hw, dim, depth, heads, mlp_ratio,
                 pos_embedding_type="sine-full", emb_dropout=0.0, dropout=0.0,
                 kmedoids_iters=40, kmedoids_chunk=8, init=True):
        super().__init__()
        if pos_embedding_type not in POS_EMBEDDING_TYPES:
            raise ValueError(f"MODEL.POS_EMBEDDING_TYPE {pos_embedding_type!r}: expected one of {POS_EMBEDDING_TYPES}")
        if pos_embedding_type in ("sine", "sine-full") and dim % 2:
            raise ValueError(f"MODEL.DIM {dim} must be even for the sine position embedding (sin/cos pairs)")
        if not 0 <= num_parts <= num_keypoints:
            raise ValueError(f"MODEL.NUM_BP {num_parts} must be in 0..MODEL.NUM_JOINTS={num_keypoints}")
        self.num_keypoints = num_keypoints
        self.num_parts = num_parts
        self.heatmap_hw = tuple(heatmap_hw)
        self.pos_embedding_type = pos_embedding_type
        self.kmedoids_iters = kmedoids_iters
        self.kmedoids_chunk = kmedoids_chunk
        # The part maps (first P output tokens) feed no loss and no keypoint decoding; training
        # and inference switch them off (`set_part_maps`), which skips the prompt tokens' last
        # FFN and head rows and leaves the keypoint heatmaps unchanged.
        self.return_part_maps = True
        map_size = self.heatmap_hw[0] * self.heatmap_hw[1]

        # quirk: published checkpoints carry `bp_embeddings` and `bp_to_embeddings`, which the
        # forward never uses. They stay registered (official checkpoints load strictly and the
        # 'all' parameter count matches) but frozen, so optimisers and DDP ignore them.
        if num_parts:
            self.bp_embeddings = nn.Parameter(torch.zeros(1, num_parts, dim), requires_grad=False)
        if pos_embedding_type in ("sine", "sine-full"):
            self.pos_embedding = nn.Parameter(sine_position_table(num_keypoints, dim), requires_grad=False)
        elif pos_embedding_type == "learnable":
            self.pos_embedding = nn.Parameter(torch.zeros(1, num_parts + num_keypoints, dim))
            nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        self.kpt_to_embedding = nn.Linear(map_size, dim)
        if num_parts:
            self.bp_to_embeddings = nn.Linear(map_size, dim).requires_grad_(False)
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim * mlp_ratio, dropout)
        hidden = map_size // 8
        if dim <= hidden * 0.5:
            self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden),
                                          nn.LayerNorm(hidden), nn.Linear(hidden, map_size))
        else:
            self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, map_size))
        if num_parts:
            self.prompt_learner = PromptLearner(in_channels, num_parts, map_size, dim)
        if init:
            self.apply(self._init_linear_and_norm)

    @staticmethod
    def _init_linear_and_norm(module):
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def cluster(self, keypoint_maps):
        """k-medoids body parts of T [B,K,h,w] -> (assign [B,K], medoids [B,P])."""
        return kmedoids_cosine(keypoint_maps.flatten(2), self.num_parts, self.kmedoids_iters, self.kmedoids_chunk)

    def forward(self, features, keypoint_maps):
        b, k, h, w = keypoint_maps.shape
        if (h, w) != self.heatmap_hw or k != self.num_keypoints:
            raise ValueError(f"KIT head built for {self.num_keypoints} maps of {self.heatmap_hw} (h, w), "
                             f"got {k} of {(h, w)}: the input size must equal MODEL.IMAGE_SIZE")
        maps = keypoint_maps.flatten(2)
        keypoint_tokens = self.kpt_to_embedding(maps)
        if self.pos_embedding_type in ("sine", "sine-full"):
            keypoint_tokens = keypoint_tokens + self.pos_embedding
        tokens = keypoint_tokens
        if self.num_parts:
            assign, _ = self.cluster(keypoint_maps)
            membership = F.one_hot(assign, self.num_parts).to(maps.dtype)  # [B,K,P]
            part_sums = membership.transpose(1, 2) @ maps
            part_features = part_sums / membership.sum(1).clamp_min(1)[:, :, None]
            part_prompts = self.prompt_learner(features, part_features)
            tokens = torch.cat([part_prompts, keypoint_tokens], dim=1)
        if self.pos_embedding_type == "learnable":
            tokens = tokens + self.pos_embedding
        tokens = self.dropout(tokens)
        repeated_pos = None
        if self.pos_embedding_type == "sine-full":
            repeated_pos = F.pad(self.pos_embedding, (0, 0, self.num_parts, 0))  # prompts get nothing
        if not self.return_part_maps:
            tokens = self.transformer(tokens, repeated_pos, drop_leading=self.num_parts)
            return None, self.mlp_head(tokens).reshape(b, k, h, w)
        tokens = self.transformer(tokens, repeated_pos)
        out = self.mlp_head(tokens).reshape(b, self.num_parts + k, h, w)
        part_maps = out[:, :self.num_parts] if self.num_parts else None
        return part_maps, out[:, self.num_parts:]
