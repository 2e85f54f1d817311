"""``python -m geounet``: the command line (as the ``geounet`` script)."""

from geounet.cli import main

if __name__ == "__main__":
    main()
