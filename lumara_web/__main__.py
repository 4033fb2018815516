"""`python -m lumara_web [serve|bench|stats]`; without a command it serves, like app.py."""

from .cli import main

main()
