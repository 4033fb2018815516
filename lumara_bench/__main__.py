"""`python -m lumara_bench [--quick] [--check] [--eval] …` (see --help)."""

from .bench import main

main()
