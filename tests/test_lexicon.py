"""lexicon: what is a kind of what, from the bundled WordNet files."""

from pathlib import Path

import pytest

from lumara_web import lexicon


@pytest.mark.parametrize("word, kind", [
    ("labrador", "dog"),  # short for "labrador retriever"
    ("poodle", "dog"),
    ("puppies", "dog"),  # a plural, by WordNet's rules
    ("mice", "mouse"),  # an irregular plural, from its exception list
    ("sedan", "car"),
    ("mum", "mother"),
    ("daughter", "child"),
    ("Valencia", "city"),
])
def test_a_kind_of_a_thing_is_one(word, kind):
    assert lexicon.is_a(word, kind)


@pytest.mark.parametrize("word, kind", [
    ("cat", "dog"),
    ("dog", "labrador"),  # the other way round: not every dog is a labrador
    ("brother", "dog"),  # "dog" the informal word for a man is not a usual sense
    ("wiener", "dog"),  # nor "dog" the sausage
    ("Juno", "dog"),  # a name WordNet does not know
    ("zzzz", "dog"),
    ("dog", "zzzz"),
])
def test_other_things_are_not(word, kind):
    assert not lexicon.is_a(word, kind)


def test_files_with_either_line_end_read_the_same(tmp_path):
    """WordNet's offsets count one byte per line end; the package ships two-byte ones."""
    source = lexicon.wordnet()
    assert source is not None
    folder = Path(source.folder)
    for name in ("index.noun", "data.noun", "noun.exc"):
        (tmp_path / name).write_bytes((folder / name).read_bytes().replace(b"\r\n", b"\n"))
    unix = lexicon.WordNet(tmp_path)
    assert unix.is_a("labrador", "dog") and not unix.is_a("cat", "dog")
