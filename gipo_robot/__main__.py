"""``python -m gipo_robot``: the ``gipo-robot`` command line."""

from gipo_robot.cli.main import main

if __name__ == "__main__":
    main()
