"""Cosine k-medoids over keypoint maps: groups the K keypoints of each sample into body parts.

The published clustering is discontinuous (a last-bit change can move a keypoint to
another part), so the operations below follow the published order exactly: SPEC §1.2 step 2.
"""
import torch
import torch.nn.functional as F

EPS = 1e-6
STOP_SHIFT = 1e-6


def _normalise(x):
    return x / (x.norm(dim=-1, keepdim=True) + EPS)


def _similarity(unit):
    """Pairwise dot products [b,K,K] in full float32 precision."""
    if unit.is_cuda:
        # a CUDA float32 matmul follows the global TF32 switch (10-bit mantissa), which moves
        # clusters; float64 is immune to it and to autocast
        return (unit.double() @ unit.double().transpose(1, 2)).float()
    return unit @ unit.transpose(1, 2)


@torch.no_grad()
def _cluster_chunk(x, num_parts, max_iters):
    """x [b,K,L] float -> (assign [b,K], medoids [b,P]) for one chunk of samples."""
    b, k, _ = x.shape
    x = _normalise(x)
    unit = _normalise(x)
    dist = 1 - _similarity(unit)
    # shift all distances below zero: a medoid-restricted sum then favours members;
    # the max runs over the whole chunk (it does not move any argmin)
    dist = dist - dist.max() - 1
    dist = dist - torch.eye(k, dtype=dist.dtype, device=dist.device)
    rows = torch.arange(b, device=x.device)[:, None]

    # KKZ init (greedy, each pick depends on the previous ones); quirk: the first medoid is the
    # largest norm of the already normalised maps, so float rounding picks it (as published)
    medoids = x.norm(dim=-1).argmax(-1, keepdim=True)
    for _ in range(num_parts - 1):
        nearest = dist[rows, medoids].min(dim=1).values
        medoids = torch.cat([medoids, nearest.argmax(-1, keepdim=True)], dim=1)

    for _ in range(max_iters):
        assign = dist[rows, medoids].argmin(dim=1)
        member = F.one_hot(assign, num_parts).transpose(1, 2).to(dist.dtype)  # [b,P,K]
        # cost of candidate i for cluster c: sum_j d_ij [i in c][j in c]; non-members score 0
        cost = (dist[:, None] * member[:, :, :, None] * member[:, :, None, :]).sum(-1)
        new_medoids = cost.argmin(-1)
        shift = (x[rows, new_medoids] - x[rows, medoids]).norm(dim=-1).sum(-1).mean()
        medoids = new_medoids
        if shift < STOP_SHIFT:
            break

    medoids = medoids.sort(dim=-1).values
    assign = dist[rows, medoids].argmin(dim=1)
    return assign, medoids


@torch.no_grad()
def kmedoids_cosine(maps, num_parts, max_iters=40, chunk_size=8):
    """Cluster the K maps of every sample into `num_parts` parts by cosine distance.

    maps [B,K,L] -> (assign [B,K] long: part id of each keypoint, medoids [B,P] long:
    keypoint index of each part's medoid, ascending; part id = rank of its medoid).
    Samples are processed `chunk_size` at a time, as published. The chunk only shifts
    every distance by the same constant (its maximum), which cannot move an argmin except
    between candidates that tie exactly (e.g. the two members of a two-keypoint part),
    where float rounding picks the medoid; there the published result depends on the chunk
    too, so the model keeps the published chunk of 8 (MODEL.KMEDOIDS_CHUNK).
    """
    if maps.dim() != 3:
        raise ValueError(f"kmedoids_cosine expects maps [B,K,L], got shape {tuple(maps.shape)}")
    num_keypoints = maps.shape[1]
    if not 1 <= num_parts <= num_keypoints:
        raise ValueError(f"kmedoids_cosine: num_parts {num_parts} must be in 1..K={num_keypoints}")
    if chunk_size < 1:
        raise ValueError(f"kmedoids_cosine: chunk_size {chunk_size} must be >= 1")
    x = maps.detach().float()
    if x.shape[0] == 0:
        empty = torch.zeros(0, num_keypoints, dtype=torch.long, device=x.device)
        return empty, empty[:, :num_parts]
    with torch.autocast("cpu", enabled=False):  # a bf16 CPU autocast would round the distances
        results = [_cluster_chunk(chunk, num_parts, max_iters) for chunk in x.split(chunk_size)]
    assign = torch.cat([a for a, _ in results])
    medoids = torch.cat([m for _, m in results])
    return assign, medoids
