"""`sail-rl run` joins an existing two-node Ray cluster started on this machine with `ray start`:
the trainer rank goes to one node and the vLLM rollout worker to the other (custom resources force
it), and a few GRPO steps run with weights synced between the nodes over gloo.

The cluster is this test's own: free ports, its own --temp-dir, each `ray start --block` in its own
session, stopped by signalling those sessions only (never `ray stop`, which would stop every Ray
on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli_run import run_cli, trained_steps

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))
REPO_ROOT = str(Path(__file__).resolve().parents[2])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    return [
        "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
        "--runtime-env-agent-port", str(_free_port()), "--metrics-export-port", str(_free_port()),
    ]


class TwoNodeCluster:
    """A head node with {trainer_node: 1} and a second node with {rollout_node: 1}, 1 CPU each."""

    def __init__(self):
        self.temp_dir = tempfile.mkdtemp(prefix="srl-ray-", dir="/tmp")  # short: Ray's socket paths
        self.port = _free_port()
        from ray.util import get_node_ip_address

        self.address = f"{get_node_ip_address()}:{self.port}"  # the IP `ray start` picks for both nodes
        self.procs: list[subprocess.Popen] = []
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}  # the driver ships the code path
        env["RAY_AUTH_MODE"] = "token"  # Ray's default for `ray start`; a joining client must say so too (~/.ray/auth_token)
        common = ["--block", "--num-cpus", "1", "--temp-dir", self.temp_dir, "--disable-usage-stats"]
        head = [RAY, "start", "--head", "--port", str(self.port), "--resources", '{"trainer_node": 1}',
                "--include-dashboard", "false", "--dashboard-port", str(_free_port()),
                "--ray-client-server-port", str(_free_port()), *common, *_node_ports()]
        worker = [RAY, "start", "--address", self.address, "--resources", '{"rollout_node": 1}', *common, *_node_ports()]
        try:
            self.procs.append(self._start(head, env, "head"))
            self._wait_for_nodes(1)
            self.procs.append(self._start(worker, env, "worker"))
            self._wait_for_nodes(2)
        except BaseException:
            self.stop()
            raise

    def _start(self, cmd, env, name):
        log = open(Path(self.temp_dir) / f"{name}.log", "w")
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_for_nodes(self, n: int) -> None:
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                out = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                                     timeout=60, env={**os.environ, "RAY_AUTH_MODE": "token"})
            except subprocess.TimeoutExpired:
                continue
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            time.sleep(2)
        logs = "".join((Path(self.temp_dir) / f).read_text()[-1000:] for f in ("head.log", "worker.log") if (Path(self.temp_dir) / f).exists())
        raise RuntimeError(f"the Ray cluster at {self.address} did not reach {n} nodes:\n{logs}")

    def stop(self) -> None:
        """SIGTERM each `ray start --block` session (it stops what it started), then SIGKILL what is left
        of those sessions: only the process groups this test created."""
        for sig, pause in ((signal.SIGTERM, 10), (signal.SIGKILL, 0)):
            for proc in reversed(self.procs):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
        for proc in self.procs:
            proc.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture
def two_nodes():
    cluster = TwoNodeCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_run_joins_a_two_node_cluster_with_trainer_and_rollout_on_different_nodes(tmp_path, tiny_dir, two_nodes):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "16", "--split-eval", "4"], check=True)
    (tmp_path / "my_rewards.py").write_text(  # varies with the response: groups carry signal
        "def short(inputs, target=20):\n"
        "    return [1.0 / (1.0 + len(x.response) / target) for x in inputs]\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data}/data.jsonl], eval_files: [{data}/eval.jsonl], prompt_mode: direct}}
rollout: {{engine: vllm, rollouts_per_prompt: 4, max_response_tokens: 16, max_model_len: 512, max_prompt_tokens: 400, kv_cache_gib: 0.5}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 16, micro_batch_size: 8}}
rewards: [{{path: {tmp_path}/my_rewards.py:short, style: sailrl, weight: 1.0, kwargs: {{target: 40}}}}]
resources: {{colocate: false, trainer_cpus: 1, rollout_cpus: 1,
            trainer_resources: {{trainer_node: 1}}, rollout_resources: {{rollout_node: 1}}}}
run: {{output_dir: {tmp_path}/run, total_steps: 2, prompts_per_step: 4, dynamic_sampling: false, eval_max_samples: 2,
      eval_samples_per_prompt: 0, save_every_steps: 0, progress_bar: false, mode: ray}}
""")
    env = {**os.environ, "RAY_ADDRESS": two_nodes.address, "PYTHONPATH": REPO_ROOT, "RAY_AUTH_MODE": "token"}
    out, records = run_cli(recipe, output_dir=tmp_path / "run", timeout_s=900, env=env)
    assert "object store instead" not in out.stderr  # the gloo group formed across the two nodes
    # the rollout node has the trainer node's weights (log-probs equal), sent over the group
    assert all(r["time/weight_sync_s"] > 0 for r in trained_steps(records, 2))
    nodes = json.loads((tmp_path / "run" / "placement.json").read_text())
    assert len(set(nodes["trainer"])) == 1 and len(set(nodes["rollout"])) == 1
    assert nodes["trainer"][0] != nodes["rollout"][0]
