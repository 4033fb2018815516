"""lexicon: what is a kind of what, from the bundled WordNet files."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import snowballstemmer

from lumara_web import lexicon
from lumara_web.text import stem


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


def copy_noun_files(folder: Path, convert=lambda data: data) -> None:
    """The bundled WordNet's noun files, passed through `convert`, into `folder`."""
    source = lexicon.wordnet()
    assert source is not None
    for name in ("index.noun", "data.noun", "noun.exc"):
        (folder / name).write_bytes(convert((Path(source.folder) / name).read_bytes()))


def test_files_with_either_line_end_read_the_same(tmp_path):
    """WordNet's offsets count one byte per line end; the package ships two-byte ones."""
    copy_noun_files(tmp_path, lambda data: data.replace(b"\r\n", b"\n"))
    unix = lexicon.WordNet(tmp_path)
    assert unix.is_a("labrador", "dog") and not unix.is_a("cat", "dog")
    # Only the noun files: nouns still match, the other parts of speech are left out.
    assert unix.synonyms("cilantro", "coriander") and not unix.synonyms("began", "started")
    assert not unix.is_past_tense("lived")


@pytest.mark.parametrize("word, other", [
    ("cilantro", "coriander"),  # one noun synset
    ("son", "boy"),  # the boy's usual senses include a son
    ("apartment", "flat"),  # the apartment's first sense is one of the flat's
    ("began", "started"),  # verbs, an irregular form
    ("myopic", "nearsighted"),  # adjectives of one synset
    ("loud", "noisy"),  # adjectives WordNet cross-references
    ("colour", "color"),  # spellings
    ("chit-chat", "small_talk"),  # a compound
])
def test_words_that_share_their_usual_sense_are_synonyms(word, other):
    assert lexicon.synonyms(word, other) and lexicon.synonyms(other, word)


@pytest.mark.parametrize("word, other", [
    ("cat", "dog"), ("hate", "love"), ("early", "late"), ("quiet", "loud"), ("bank", "river"),
])
def test_other_words_are_not_synonyms(word, other):
    assert not lexicon.synonyms(word, other)


def test_a_part_of_a_place_is_in_it_and_a_rare_sense_counts_only_when_asked():
    assert lexicon.is_in("Vietnam", "Asia") and lexicon.is_in("Kenya", "Africa")
    assert not lexicon.is_in("Asia", "Vietnam") and not lexicon.is_a("Vietnam", "Asia")
    assert lexicon.is_in("wine", "alcohol", usually=True)
    assert not lexicon.is_in("levothyroxine", "medication")  # WordNet does not know it
    assert lexicon.is_a("brother", "person", usually=True)
    assert lexicon.is_a("glass", "person") and not lexicon.is_a("glass", "person", usually=True)


@pytest.mark.parametrize("word, past", [
    ("lived", True), ("began", True), ("ate", True),
    ("live", False), ("living", False), ("lives", False), ("am", False), ("table", False),
])
def test_past_forms_of_verbs(word, past):
    assert lexicon.is_past_tense(word) is past


def test_compounds_of_any_part_of_speech_are_known():
    assert lexicon.knows_any("small_talk") and lexicon.knows_any("nearsighted")
    assert not lexicon.knows_any("sister_ana")


@pytest.mark.parametrize("word, kind, near", [
    ("middle school", "school", True),  # one link up
    ("sedan", "car", True),
    ("dog", "animal", False),  # far up: "an animal" says less than "a dog"
    ("cat", "dog", False),  # two kinds of one thing are not each other
    ("car", "sedan", False),
])
def test_a_near_kind_is_one_link_up(word, kind, near):
    assert lexicon.is_near_kind(word, kind, 1) is near


@pytest.mark.parametrize("word, other, related", [
    ("teacher", "teaches", True), ("painter", "paint", True), ("marry", "wedding", True),
    ("teacher", "paint", False), ("dog", "bark", False),
])
def test_forms_of_one_meaning_in_other_parts_of_speech(word, other, related):
    assert lexicon.related_forms(word, other) is related


def test_what_a_definition_denies():
    assert "meat" in lexicon.denied_by_definition("vegetarian")
    assert lexicon.denied_by_definition("teetotal") == ("alcoholic_beverages",)
    assert lexicon.denied_by_definition("gardener") == ()


def test_stemming_from_many_threads_at_once_gives_each_its_own_stem():
    """The stemmer keeps its word in itself; shared between threads it garbled them."""
    words = [f"{base}{suffix}{n}" for n in range(400)
             for base, suffix in (("sprain", "ed"), ("paint", "ing"), ("hope", "fully"))]
    expected = {word: snowballstemmer.stemmer("english").stemWord(word) for word in words}
    stem.cache_clear()
    with ThreadPoolExecutor(8) as pool:
        stems = list(pool.map(stem, words))
    assert dict(zip(words, stems)) == expected


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_the_dictionary_stays_out_of_the_process_memory_after_its_first_scan(tmp_path):
    """Opening a part of speech reads every line of its data file once; those pages go back
    to the system's file cache (a lookup maps again only what it reads)."""
    copy_noun_files(tmp_path)  # a copy of its own: only this test maps it
    data = tmp_path / "data.noun"
    copy = lexicon.WordNet(tmp_path)
    assert resident_kb(data) < data.stat().st_size // 1024 // 10
    assert copy.is_a("labrador", "dog") and not copy.is_a("cat", "dog")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_pages_read_by_lookups_can_be_handed_back(tmp_path):
    copy_noun_files(tmp_path)
    index = tmp_path / "index.noun"
    copy = lexicon.WordNet(tmp_path)
    for word in ("labrador", "poodle", "sparrow", "oak", "violin", "lisbon", "teacher"):
        copy.is_a(word, "dog")
        copy.knows(word)
    assert resident_kb(index) > 0
    copy.release_pages()
    assert resident_kb(index) == resident_kb(tmp_path / "data.noun") == 0
    assert copy.is_a("labrador", "dog") and not copy.is_a("cat", "dog")  # maps again


def resident_kb(path: Path) -> int:
    total, current = 0, None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                current = fields[5] if len(fields) > 5 else None
            elif fields[0] == "Rss:" and current == str(path):
                total += int(fields[1])
    return total
