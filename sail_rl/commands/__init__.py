"""Subcommands of `sail-rl`: each module has configure(parser) and run(args)."""
