"""The trainer-to-rollouts weight group over gloo: exact tensors, buckets, casts, repeated syncs."""

from __future__ import annotations

import socket
import threading

import torch

from rollouts.collective import WeightGroup, pack, unpack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights():
    g = torch.Generator().manual_seed(0)
    return [
        ("model.layers.0.self_attn.q_proj.weight", torch.randn(16, 8, generator=g)),
        ("model.layers.0.mlp.up_proj.weight", torch.randn(32, 8, generator=g)),
        ("model.norm.weight", torch.randn(8, generator=g).to(torch.bfloat16)),
        ("position_ids", torch.arange(7)),  # an integer buffer is never cast
    ]


def test_pack_unpack_round_trip_with_cast():
    flat, meta = pack(_weights(), dtype=torch.bfloat16)
    assert flat.dtype == torch.uint8 and flat.numel() == (16 * 8 + 32 * 8 + 8) * 2 + 7 * 8
    out = dict(unpack(flat, meta))
    assert out["model.layers.0.mlp.up_proj.weight"].dtype == torch.bfloat16
    assert torch.equal(out["model.layers.0.mlp.up_proj.weight"], _weights()[1][1].to(torch.bfloat16))
    assert torch.equal(out["position_ids"], torch.arange(7))


def test_gloo_group_delivers_every_tensor_exactly_to_every_rollout_rank():
    port, world = _free_port(), 3
    received: dict[int, list] = {}

    def rollout(rank: int):
        group = WeightGroup("127.0.0.1", port, rank, world, "gloo", timeout_s=60)
        for sync in range(2):  # two syncs over the same group
            items = []
            for name, tensor in group.receive():
                items.append((name, tensor.clone()))
            received[(rank, sync)] = items
        group.close()

    threads = [threading.Thread(target=rollout, args=(r,)) for r in range(1, world)]
    for t in threads:
        t.start()
    sender = WeightGroup("127.0.0.1", port, 0, world, "gloo", timeout_s=60)
    sent = [sender.send(iter(_weights()), bucket_bytes=600) for _ in range(2)]  # 600 B: several buckets
    for t in threads:
        t.join(timeout=60)
    assert sent[0] == sent[1] == 16 * 8 * 4 + 32 * 8 * 4 + 8 * 2 + 7 * 8
    for rank in range(1, world):
        for sync in range(2):
            got = received[(rank, sync)]
            assert [n for n, _ in got] == [n for n, _ in _weights()]
            assert all(t.dtype == ref.dtype and torch.equal(t, ref) for (_, t), (_, ref) in zip(got, _weights()))
