"""The RL loop: prompts -> rollouts -> rewards -> advantages -> update -> weight sync."""
