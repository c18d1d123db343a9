"""The ``ros2-tracker`` command line: one module per subcommand with ``add_parser`` and ``run``."""
