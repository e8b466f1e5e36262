"""A collective group between trainer rank 0 and the rollout workers: weights skip the driver.

    rank 0 (trainer)        send(items)   one bucket at a time: its metadata, then its bytes
    ranks 1..N (rollouts)   receive()     a lazy (name, tensor) iterator, one bucket held at a time

The same code runs over gloo (CPU tensors) and NCCL (GPU tensors). The group is built from a
TCP store and the backend class directly, as OpenRLHF's `init_process_group` and vLLM's
`stateless_init_torch_distributed_process_group` do, so it never touches torch.distributed's
default group (the trainer's data-parallel group lives there).

A bucket is packed into one flat uint8 buffer (one broadcast per bucket, not per tensor);
floating tensors are cast to the rollout dtype first, so a bf16 rollout receives half the
bytes of an fp32 trainer. Every receiver must drain `receive()`: the sender blocks until all
ranks took part in each broadcast.

>>> unpack(*pack([("a", torch.ones(2, 3)), ("b", torch.arange(4))]))[1][1].tolist()
[0, 1, 2, 3]
"""

from __future__ import annotations

import pickle
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist

from rollouts.weight_sync import NamedTensors, iter_buckets

Meta = list[tuple[str, tuple[int, ...], torch.dtype]]


def pack(bucket: list[tuple[str, torch.Tensor]], dtype: torch.dtype | None = None, device=None) -> tuple[torch.Tensor, Meta]:
    """(flat uint8 buffer [bytes], [(name, shape, dtype)]) of a bucket; floating tensors cast to `dtype`."""
    parts, meta = [], []
    for name, tensor in bucket:
        t = tensor.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.to(device=device or t.device).contiguous()
        meta.append((name, tuple(t.shape), t.dtype))
        parts.append(t.reshape(-1).view(torch.uint8))
    flat = torch.cat(parts) if parts else torch.empty(0, dtype=torch.uint8, device=device)
    return flat, meta


def unpack(flat: torch.Tensor, meta: Meta) -> list[tuple[str, torch.Tensor]]:
    """The tensors of `pack`'s buffer, as views into it (no copy)."""
    out, offset = [], 0
    for name, shape, dtype in meta:
        nbytes = torch.Size(shape).numel() * torch.empty(0, dtype=dtype).element_size()
        out.append((name, flat[offset:offset + nbytes].view(dtype).view(shape)))
        offset += nbytes
    return out


class WeightGroup:
    """One member of the trainer-to-rollouts group. Rank 0 hosts the TCP store and sends.

    backend: "gloo" (tensors travel on the CPU) or "nccl" (on this process's current GPU).
    """

    def __init__(self, host: str, port: int, rank: int, world_size: int, backend: str, timeout_s: float = 600.0):
        timeout = timedelta(seconds=timeout_s)
        store = dist.TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout)
        store = dist.PrefixStore(f"sail-rl-weights-{port}/", store)
        if backend == "nccl":
            options = dist.ProcessGroupNCCL.Options()
            options._timeout = timeout
            self.pg = dist.ProcessGroupNCCL(store, rank, world_size, options)
            self.device = torch.device("cuda", torch.cuda.current_device())
        elif backend == "gloo":
            self.pg = dist.ProcessGroupGloo(store, rank, world_size, timeout)
            self.device = torch.device("cpu")
        else:
            raise ValueError(f"weight group backend must be gloo or nccl, got {backend!r}")
        self._store = store  # rank 0 serves the rendezvous for the group's lifetime
        self.rank, self.world_size, self.backend = rank, world_size, backend

    def _broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        options = dist.BroadcastOptions()
        options.rootRank = 0
        self.pg.broadcast([tensor], options).wait()
        return tensor

    def _broadcast_object(self, obj=None):
        """Rank 0's `obj` on every rank (a pickled header: a length, then the bytes)."""
        data = pickle.dumps(obj) if self.rank == 0 else b""
        length = self._broadcast(torch.tensor([len(data)], dtype=torch.int64, device=self.device))
        buf = torch.empty(int(length.item()), dtype=torch.uint8, device=self.device)
        if self.rank == 0:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return pickle.loads(self._broadcast(buf).cpu().numpy().tobytes())

    @torch.no_grad()
    def send(self, items: NamedTensors, bucket_bytes: int, dtype: torch.dtype | None = None) -> int:
        """Broadcast (name, tensor) pairs in buckets of ~`bucket_bytes`; returns bytes sent. Rank 0 only."""
        sent = 0
        for bucket in iter_buckets(items, bucket_bytes):
            flat, meta = pack(bucket, dtype, self.device)
            self._broadcast_object(meta)
            self._broadcast(flat)
            sent += flat.numel()
            del flat
        self._broadcast_object(None)  # end of this sync
        return sent

    def receive(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The tensors rank 0 sends, lazily: each bucket arrives when the previous one is consumed."""
        while True:
            meta = self._broadcast_object()
            if meta is None:
                return
            nbytes = sum(torch.Size(s).numel() * torch.empty(0, dtype=d).element_size() for _, s, d in meta)
            flat = self._broadcast(torch.empty(nbytes, dtype=torch.uint8, device=self.device))
            yield from unpack(flat, meta)

    def close(self) -> None:
        self.pg = None
        self._store = None


__all__ = ["WeightGroup", "pack", "unpack"]
