"""Start Lumara: `python app.py`, then open http://127.0.0.1:5000 (see --help for flags)."""

from lumara_web.server import main

if __name__ == "__main__":
    main()
