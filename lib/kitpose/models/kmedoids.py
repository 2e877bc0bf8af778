"""Cosine k-medoids over keypoint maps: groups the K keypoints of each sample into body parts.

The published clustering is discontinuous (a last-bit change can move a keypoint to
another part), so the operations below follow the published order exactly
(docs/published_behaviour.md, body-part clustering).

Precision. Every step runs in float64, whatever the dtype of the maps (float32 maps are
widened exactly). The published code computes in its input's dtype; in float32 several of
its decisions are closer than one rounding step and so belong to the CPU's BLAS and vector
width, the chunk and the input's last bits:
- a two-keypoint part {i, j} picks as medoid the member with the smaller d_ii + d_ij.
  d_ij = d_ji, so the choice rests on d_ii - d_jj, which (from the 1e-6 in both
  normalisations) is ~2e-12 * (1/||T_i|| - 1/||T_j||) -- below a float32 step (2.4e-7 at
  the shifted distances' magnitude ~2-3) but hundreds to thousands of float64 steps
  (4.4e-16). In exact arithmetic the member with the larger raw map norm wins;
- the first KKZ medoid is the largest norm of already normalised maps, ~1 - 1e-6/||T_i||:
  for maps of norm above ~8 these are a few float32 steps apart (or tied), while in
  float64 they are ~1e-6 * (1/||T_j|| - 1/||T_i||) / 1.1e-16 steps apart, i.e. the map
  with the largest raw norm wins unless two raw norms agree to ~1e-8 relative.
In float64 the result is the published operations' exact-arithmetic outcome: independent
of the CPU, of the chunk size, of the input dtype and of input noise far below the gaps.
"""
import contextlib

import torch
import torch.nn.functional as F

EPS = 1e-6
STOP_SHIFT = 1e-6
WORK_DTYPE = torch.float64


def _working_copy(maps):
    """maps -> a detached float64 tensor to cluster, on a device with float64 (MPS has none)."""
    x = maps.detach()
    if x.device.type == "mps":
        x = x.cpu()
    return x.to(WORK_DTYPE)


def _normalise(x):
    return x / (x.norm(dim=-1, keepdim=True) + EPS)


def _similarity(unit):
    """Pairwise dot products [b,K,K] (float64: no TF32 or reduced-precision GEMM path applies)."""
    return unit @ unit.transpose(1, 2)


def _gather_rows(table, rows):
    """table [B,N,C], rows [B,M] long -> table[b, rows[b, m]] as [B,M,C] (also traceable)."""
    return table.gather(1, rows[:, :, None].expand(-1, -1, table.shape[2]))


def _lower_diagonal(dist):
    """The published 'self nearest' step: d_ii <- d_ii - 1."""
    k = dist.shape[-1]
    return dist - torch.eye(k, dtype=dist.dtype, device=dist.device)


def _kkz_init(norms, dist, num_parts):
    """Farthest-first medoids [b,P]. norms [b,K]: norms of the pre-normalised maps (quirk, as
    published: the first medoid is their argmax). Each next medoid is the point whose nearest
    chosen medoid (by d_{m,i}) is farthest; argmax/argmin keep the first index on exact ties."""
    medoids = norms.argmax(-1, keepdim=True)
    for _ in range(num_parts - 1):
        nearest = _gather_rows(dist, medoids).min(dim=1).values
        medoids = torch.cat([medoids, nearest.argmax(-1, keepdim=True)], dim=1)
    return medoids


def _assign(dist, medoids):
    """Each point's cluster: index of the medoid m with the smallest d_{m,i} (first on ties)."""
    return _gather_rows(dist, medoids).argmin(dim=1)


def _new_medoids(dist, medoids, num_parts):
    """One update: assign, then per cluster the member i with the smallest sum_j d_ij over the
    members j (non-members score exactly 0, members a negative sum); first index on ties."""
    member = F.one_hot(_assign(dist, medoids), num_parts).transpose(1, 2).to(dist.dtype)  # [b,P,K]
    cost = (dist[:, None] * member[:, :, :, None] * member[:, :, None, :]).sum(-1)
    return cost.argmin(-1)


def _medoid_shift(x, new_medoids, medoids):
    """Per sample: sum over clusters of the Euclidean distance between the new and the old
    medoid's pre-normalised map (square root of the summed squares, as published) -> [b]."""
    step = _gather_rows(x, new_medoids) - _gather_rows(x, medoids)
    return (step * step).sum(-1).sqrt().sum(-1)


def _sorted_result(dist, medoids):
    """Medoids ascending (a part's id is its medoid's rank), then one more assignment."""
    medoids = medoids.sort(dim=-1).values
    return _assign(dist, medoids), medoids


def _no_autocast(device_type):
    """An autocast region must not round the distances (float64 is not autocast-eligible anyway)."""
    if device_type in ("cpu", "cuda"):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


@torch.no_grad()
def _cluster_chunk(x, num_parts, max_iters):
    """x [b,K,L] float64 -> (assign [b,K], medoids [b,P]) for one chunk of samples."""
    x = _normalise(x)
    dist = 1 - _similarity(_normalise(x))
    # shift all distances below zero: a medoid-restricted sum then favours members;
    # the max runs over the whole chunk (it does not move any argmin)
    dist = _lower_diagonal(dist - dist.max() - 1)

    medoids = _kkz_init(x.norm(dim=-1), dist, num_parts)
    for _ in range(max_iters):
        new_medoids = _new_medoids(dist, medoids, num_parts)
        shift = _medoid_shift(x, new_medoids, medoids).mean()
        medoids = new_medoids
        if shift < STOP_SHIFT:  # checked after the update, as published
            break
    return _sorted_result(dist, medoids)


def _same_chunk(reference, chunk_size):
    """[B,B] bool: samples i and j fall in the same chunk of `chunk_size` (dynamic B, no Python ints)."""
    index = torch.ones_like(reference[:, 0, 0]).cumsum(0) - 1  # 0..B-1, traced from the batch dimension
    chunk = torch.div(index, chunk_size, rounding_mode="floor")
    return chunk[:, None] == chunk[None, :]


def _cluster_fixed_iterations(x, num_parts, num_iters, chunk_size, similarity):
    """The whole batch x [B,K,L] float64 at once, without data-dependent control flow.

    Every one of the `num_iters` iterations runs; a chunk whose stop rule has fired keeps its
    medoids from then on. A converged k-medoids is a fixed point, so this reproduces where the
    early-stopping loop broke off. The chunk of 8 matters only through two chunk-wide numbers
    (the distance maximum and the mean shift), taken here through a same-chunk mask [B,B].
    """
    x = _normalise(x)
    similarity = _similarity(_normalise(x)) if similarity is None else similarity.detach().to(x.dtype)
    dist = 1 - similarity
    same_chunk = _same_chunk(dist, chunk_size)
    sample_max = dist.flatten(1).max(dim=1).values
    lowest = torch.full_like(same_chunk, float("-inf"), dtype=dist.dtype)
    chunk_max = torch.where(same_chunk, sample_max[None, :], lowest).max(dim=1).values
    dist = _lower_diagonal(dist - chunk_max[:, None, None] - 1)

    medoids = _kkz_init(x.norm(dim=-1), dist, num_parts)
    chunk_members = same_chunk.to(dist.dtype)
    chunk_count = chunk_members.sum(dim=1)
    running = torch.ones_like(sample_max, dtype=torch.bool)
    for _ in range(num_iters):
        new_medoids = _new_medoids(dist, medoids, num_parts)
        chunk_shift = (chunk_members @ _medoid_shift(x, new_medoids, medoids)) / chunk_count  # chunk mean
        # the eager loop assigns the new medoids, then breaks when its chunk's mean shift is small
        medoids = torch.where(running[:, None], new_medoids, medoids)
        running = running & (chunk_shift >= STOP_SHIFT)
    return _sorted_result(dist, medoids)


@torch.no_grad()
def kmedoids_cosine(maps, num_parts, max_iters=40, chunk_size=8, fixed_iterations=False, similarity=None):
    """Cluster the K maps of every sample into `num_parts` parts by cosine distance.

    maps [B,K,L] -> (assign [B,K] long: part id of each keypoint, medoids [B,P] long:
    keypoint index of each part's medoid, ascending; part id = rank of its medoid), on the
    device of `maps`. Samples are processed `chunk_size` at a time, as published; the chunk
    only shifts every distance by the same constant (its maximum), which in float64 moves
    no decision except at exact ties, so the result does not depend on the chunk (nor on the
    CPU; module docstring).

    ``fixed_iterations``: the same clusters from pure tensor operations on the whole batch
    (exactly `max_iters` iterations, stopped chunks frozen), traceable for ONNX export at any
    batch size. ``similarity`` [B,K,K] (fixed-iteration mode only) replaces the maps' cosine
    similarities, to test the rest of an exported graph on given similarities.
    """
    if maps.dim() != 3:
        raise ValueError(f"kmedoids_cosine expects maps [B,K,L], got shape {tuple(maps.shape)}")
    num_keypoints = maps.shape[1]
    if not 1 <= num_parts <= num_keypoints:
        raise ValueError(f"kmedoids_cosine: num_parts {num_parts} must be in 1..K={num_keypoints}")
    if chunk_size < 1:
        raise ValueError(f"kmedoids_cosine: chunk_size {chunk_size} must be >= 1")
    if similarity is not None and not fixed_iterations:
        raise ValueError("kmedoids_cosine: `similarity` is taken in fixed-iteration mode only")
    device_type = "cpu" if maps.device.type == "mps" else maps.device.type
    if fixed_iterations:
        x = _working_copy(maps)
        with _no_autocast(device_type):
            assign, medoids = _cluster_fixed_iterations(x, num_parts, max_iters, chunk_size, similarity)
        return assign.to(maps.device), medoids.to(maps.device)
    if maps.shape[0] == 0:
        empty = torch.zeros(0, num_keypoints, dtype=torch.long, device=maps.device)
        return empty, empty[:, :num_parts]
    with _no_autocast(device_type):
        # widened chunk by chunk (float64 copies of one chunk at a time)
        results = [_cluster_chunk(_working_copy(chunk), num_parts, max_iters) for chunk in maps.split(chunk_size)]
    assign = torch.cat([a for a, _ in results]).to(maps.device)
    medoids = torch.cat([m for _, m in results]).to(maps.device)
    return assign, medoids
