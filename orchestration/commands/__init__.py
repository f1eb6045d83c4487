"""`ods` commands that live in a module of their own (listed in `orchestration.cli.COMMAND_MODULES`):
each module has `register(commands)`, which adds its subparser and sets its `handler`."""
