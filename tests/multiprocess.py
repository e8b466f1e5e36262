"""One launcher for the tests that run N gloo processes (data parallel, sharded checkpoints), and
the gradient helpers they compare with.

    run_ranks(worker, world_size, *args)    spawns `worker(rank, world_size, *args)` in each of
                                            `world_size` processes joined in one gloo group

`worker` must be a module-level function (spawn pickles it); it returns results through files.
"""

from __future__ import annotations

import os
import socket

import torch


def _entry(rank: int, world_size: int, port: int, worker, args: tuple) -> None:
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world_size)
    torch.set_num_threads(1)  # 2 shared cores: more threads per rank only spin
    if world_size > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        worker(rank, world_size, *args)
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def run_ranks(worker, world_size: int, *args, timeout_s: float = 900) -> None:
    """Run `worker(rank, world_size, *args)` on `world_size` spawned processes; fail if any rank fails."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_entry, args=(r, world_size, port, worker, args)) for r in range(world_size)]
    for proc in procs:
        proc.start()
    for rank, proc in enumerate(procs):
        proc.join(timeout=timeout_s)
        if proc.exitcode is None:
            proc.kill()
        assert proc.exitcode == 0, f"rank {rank} of {world_size} exited with {proc.exitcode}"


def full_grads(model) -> dict[str, torch.Tensor]:
    """{name: the whole gradient} of the trainable parameters (a collective under fsdp2)."""
    grads = {}
    for name, p in model.named_parameters():
        if p.requires_grad:  # no gradient (e.g. the critic's unused lm_head) counts as zero
            g = torch.zeros_like(p) if p.grad is None else p.grad
            grads[name] = (g.full_tensor() if hasattr(g, "full_tensor") else g).detach().clone()
    return grads


def assert_same_grads(one: dict, two: dict, label: str) -> None:
    """Gradients equal up to float summation order: a scale (e.g. averaging instead of summing) fails."""
    assert one.keys() == two.keys(), label
    for name, g1 in one.items():
        torch.testing.assert_close(two[name], g1, atol=1e-6 * max(1.0, float(g1.abs().max())), rtol=1e-3, msg=f"{label} {name}")
    assert sum(float(g.abs().sum()) for g in one.values()) > 0, label
