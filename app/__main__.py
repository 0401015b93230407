"""`python -m app` runs the same command line as the `homing` script."""

from app.cli import main

if __name__ == "__main__":
    main()
