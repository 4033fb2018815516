"""`python -m lumara_web` starts the server, like `python app.py`."""

from .server import main

main()
