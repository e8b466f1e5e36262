"""Build the loop's handles (trainer, rollout, scorer, weight transfer), in this process (`run.mode: local`) or as Ray actors."""

from __future__ import annotations


from sail_rl.rl.config import RunRecipe


class Components:
    def __init__(self, trainer, rollout, scorer, closers, weight_transfer=None):
        from sail_rl.rl.weight_transfer import DirectTransfer

        self.trainer, self.rollout, self.scorer = trainer, rollout, scorer
        self.weight_transfer = weight_transfer or DirectTransfer(trainer, rollout)
        self._closers = closers

    def close(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:  # shutting down: best effort
                pass


def local_components(recipe: RunRecipe) -> Components:
    from rewards import ScoringPool
    from rollouts.engine import make_engine
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    trainer = PolicyTrainer(recipe.model.path, recipe.trainer, recipe.algorithm, total_steps=recipe.run.total_steps,
                            dtype=recipe.model.dtype, attn_implementation=recipe.model.attn_implementation)
    rollout = make_engine(recipe.rollout, recipe.model.path)
    scorer = ScoringPool(recipe.rewards_config(), max_workers=max(1, recipe.resources.reward_workers), kind="thread")
    return Components(trainer, rollout, scorer, [rollout.close, scorer.close])


def ray_components(recipe: RunRecipe) -> Components:
    import ray

    from rollouts.ray_workers import RolloutManager
    from sail_rl.rl.ray_layer import RayRewardPool, RayTrainerGroup, placement, start_ray
    from sail_rl.rl.weight_transfer import ray_transfer

    start_ray(recipe.resources.address)
    trainer_opts, rollout_opts = placement(recipe)
    trainer = RayTrainerGroup(recipe, recipe.model.path, trainer_opts)
    rollout = RolloutManager(recipe.rollout, recipe.model.path, actor_options=rollout_opts)
    scorer = RayRewardPool(recipe)
    try:
        transfer = ray_transfer(recipe, trainer, rollout)
    except Exception:
        rollout.close()
        ray.shutdown()
        raise
    return Components(trainer, rollout, scorer, [rollout.close, ray.shutdown], transfer)
