"""The watch-term language: fold, tokenize, parse_query, Query.describe."""

from __future__ import annotations

import re
import unicodedata

import pytest

from bot import unicode_marks
from bot.query import (
    MAX_TERM_LENGTH,
    Phrase,
    Query,
    QueryError,
    Token,
    ascii_words,
    fold,
    parse_query,
    plural_forms,
    spellings,
    tokenize,
)
from bot.text import clean_text, html_to_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tariff", "tariff"),
        ("Café", "cafe"),
        ("Cafe\u0301", "cafe"),  # combining acute accent
        ("ＴＡＲＩＦＦ", "tariff"),  # full-width letters
        ("tariff’s", "tariff's"),  # typographic apostrophe
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("Việt Nam", "viet nam"),
        ("ﬁnance", "finance"),  # ligature
        ("naïve ÉLAN", "naive elan"),
        ("ガ", "ガ"),  # kana voicing is not an accent: ガ stays distinct from カ
        # Latin letters with no Unicode decomposition
        ("Łódź", "lodz"),
        ("ŁÓDŹ", "lodz"),
        ("København", "kobenhavn"),
        ("SØREN", "soren"),
        ("Ǿ", "o"),  # Ø + acute: the accent goes, then Ø folds
        ("Diyarbakır", "diyarbakir"),
        ("DİYARBAKIR", "diyarbakir"),
        ("Œuvre", "oeuvre"),
        ("cœur", "coeur"),
        ("Æsir", "aesir"),
        ("Þingvellir", "thingvellir"),
        ("Guðmundsson", "gudmundsson"),
        ("Ħamrun", "hamrun"),
        ("Đoković", "đokovic"),  # kept: two spellings, see test_spellings
        # invisible format characters vanish
        ("ta\u00adriff", "tariff"),  # soft hyphen
        ("می\u200cخواهد", "میخواهد"),  # ZWNJ
        ("क्\u200dष", "क्ष"),  # ZWJ
        ("Pax\u200bSilica", "paxsilica"),  # ZWSP
        ("\ufefftariff\u2060", "tariff"),  # BOM, word joiner
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("  -- … !! ", []),
        ("Trade-Deal", [(0, 5, "trade"), (6, 10, "deal")]),
        ("tradedeal", [(0, 9, "tradedeal")]),
        ("TRADE DEAL.", [(0, 5, "TRADE"), (6, 10, "DEAL")]),  # capitals: acronym-sized words
        ("TRADE AGREEMENT", [(0, 5, "TRADE"), (6, 15, "agreement")]),
        ("trade, deal", [(0, 5, "trade"), (7, 11, "deal")]),
        ("tariff’s", [(0, 8, "tariff's")]),
        ("the tariffs' cost", [(0, 3, "the"), (4, 11, "tariffs"), (13, 17, "cost")]),
        ("don't", [(0, 5, "don't")]),
        ("‘quoted’", [(1, 7, "quoted")]),
        ("x_y", [(0, 3, "x_y")]),  # "_" joins words: /u/eu_watcher
        ("/u/eu_watcher", [(1, 2, "u"), (3, 13, "eu_watcher")]),
        ("Cafe\u0301 au", [(0, 5, "cafe"), (6, 8, "au")]),
        ("ＴＡＲＩＦＦ!", [(0, 6, "tariff")]),
        ("U.S. F-35s", [(0, 4, "US"), (5, 6, "f"), (7, 10, "35s")]),
        ("AI said", [(0, 2, "AI"), (3, 7, "said")]),
        ("Ai Weiwei", [(0, 2, "ai"), (3, 9, "weiwei")]),
        # acronyms: capitals kept (2-5 letters), dotted or not, plural/possessive in lower case
        ("U.S.-China", [(0, 4, "US"), (5, 10, "china")]),
        ("U.S lumber", [(0, 3, "US"), (4, 10, "lumber")]),
        ("E.U. and A.I.", [(0, 4, "EU"), (5, 8, "and"), (9, 13, "AI")]),
        ("NGOs", [(0, 4, "NGOs")]),
        ("EU’s", [(0, 4, "EU's")]),
        ("IT'S", [(0, 4, "IT'S")]),  # all capitals: a contraction, not IT's
        ("its It IT", [(0, 3, "its"), (4, 6, "it"), (7, 9, "IT")]),
        ("NASDAQ", [(0, 6, "nasdaq")]),  # six letters: no acronym
        ("J.K. Rowling", [(0, 4, "JK"), (5, 12, "rowling")]),
        ("USA США", [(0, 3, "USA"), (4, 7, "США")]),
        # symbols inside names
        ("AT&T at T-Mobile", [(0, 4, "AT&T"), (5, 7, "at"), (8, 9, "t"), (10, 16, "mobile")]),
        ("R&D, S&P 500, M&A", [(0, 3, "R&D"), (5, 8, "S&P"), (9, 12, "500"), (14, 17, "M&A")]),
        ("Tom & Jerry", [(0, 3, "tom"), (6, 11, "jerry")]),
        ("C++ C# F# Disney+", [(0, 3, "c++"), (4, 6, "c#"), (7, 9, "f#"), (10, 17, "disney+")]),
        ("1+1 #AI", [(0, 1, "1"), (2, 3, "1"), (5, 7, "AI")]),
        ("ภาษีนำ", [(0, 1, "ภ"), (1, 2, "า"), (2, 4, "ษี"), (4, 5, "น"), (5, 6, "ํา")]),
        ("東京都に", [(0, 1, "東"), (1, 2, "京"), (2, 3, "都"), (3, 4, "に")]),
        ("Tokyo東京", [(0, 5, "tokyo"), (5, 6, "東"), (6, 7, "京")]),
        # invisible format characters stay inside the word
        ("new ta\u00adriff", [(0, 3, "new"), (4, 11, "tariff")]),
        ("tar\u00adiff\u00ad’s", [(0, 10, "tariff's")]),
        ("دولت می\u200cخواهد", [(0, 4, "دولت"), (5, 13, "میخواهد")]),
        ("کتاب\u200dها", [(0, 7, "کتابها")]),
        ("Pax\u200bSilica", [(0, 10, "paxsilica")]),
        ("\u200btariff\u200b deal", [(1, 8, "tariff"), (9, 13, "deal")]),
        ("tariff \u00ad deal", [(0, 6, "tariff"), (9, 13, "deal")]),  # alone: no word
        # elided French/Italian articles are words of their own
        ("l’Ukraine", [(0, 1, "l"), (2, 9, "ukraine")]),
        ("l'Ukraine", [(0, 1, "l"), (2, 9, "ukraine")]),
        ("lʼUkraine", [(0, 1, "l"), (2, 9, "ukraine")]),
        ("L’OTAN", [(0, 1, "l"), (2, 6, "OTAN")]),
        ("d’Israël", [(0, 1, "d"), (2, 8, "israel")]),
        ("jusqu’à Kyiv", [(0, 5, "jusqu"), (6, 7, "a"), (8, 12, "kyiv")]),
        ("qu’il", [(0, 2, "qu"), (3, 5, "il")]),
        ("dell’Europa", [(0, 4, "dell"), (5, 11, "europa")]),
        ("all'Italia", [(0, 3, "all"), (4, 10, "italia")]),
        ("l’Ukraine’s", [(0, 1, "l"), (2, 11, "ukraine's")]),
        ("qu’l’x", [(0, 2, "qu"), (3, 4, "l"), (5, 6, "x")]),
        ("東京l’Ukraine", [(0, 1, "東"), (1, 2, "京"), (2, 3, "l"), (4, 11, "ukraine")]),
        # ... but not possessives, contractions or other apostrophes
        ("Ukraine’s", [(0, 9, "ukraine's")]),
        ("l's", [(0, 3, "l's")]),
        ("Nell's", [(0, 6, "nell's")]),
        ("UN’s", [(0, 4, "UN's")]),
        ("Dell's", [(0, 6, "dell's")]),
        ("o'clock", [(0, 7, "o'clock")]),
        ("O’Brien", [(0, 7, "o'brien")]),
        ("I'm", [(0, 3, "i'm")]),
        ("y'all", [(0, 5, "y'all")]),
        ("don't", [(0, 5, "don't")]),
        ("rock'n'roll", [(0, 11, "rock'n'roll")]),
        ("aujourd’hui", [(0, 11, "aujourd'hui")]),
        ("l’ ", [(0, 1, "l")]),
    ],
)
def test_tokenize(text: str, expected: list[tuple[int, int, str]]) -> None:
    tokens = tokenize(text)
    assert tokens == [Token(*t) for t in expected]
    for token in tokens:  # offsets index the original text
        raw = fold(text[token.start : token.end]).strip("'").replace(".", "")
        assert raw == token.word.lower()


@pytest.mark.parametrize(
    "text",
    [
        "The tariff’s cost",
        "Aide à l’Ukraine; l'OTAN et d’Israël",
        "New ta\u00adriff on steel",
        "دولت می\u200cخواهد",
        "Pax\u200bSilica",
        "Đoković’s win",
        "Łódź, København, Diyarbakır, Œuvre",
        "東京l’Ukraine",
        "\u202bשלום\u202c world\u200e",
    ],
)
def test_a_term_copied_from_a_feed_matches_its_words(text: str) -> None:
    """Terms and feed text share one tokenizer, so a term pasted from the
    source page or from an alert has exactly the words the matcher sees in
    the feed text (which `bot.parse` cleans first: some invisible characters
    are removed there, the soft hyphen is not)."""
    feed_words = tuple(t.word for t in tokenize(clean_text(text)))
    assert tuple(t.word for t in tokenize(text)) == feed_words
    assert parse_query(text).include == (Phrase(feed_words),)
    assert parse_query(clean_text(text)).include == (Phrase(feed_words),)


def test_html_soft_hyphen_entity() -> None:
    assert [t.word for t in tokenize(html_to_text("<b>ta&shy;riff</b>&#173;s"))] == ["tariffs"]


@pytest.mark.parametrize(
    "char", [chr(cp) for cp in (0xAD, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF)]
)
def test_invisible_characters_join_words_whether_or_not_cleaned(char: str) -> None:
    text = f"ta{char}riff’s rise"
    assert [t.word for t in tokenize(text)] == ["tariff's", "rise"]
    assert [t.word for t in tokenize(clean_text(text))] == ["tariff's", "rise"]
    assert parse_query(f"ta{char}riff").include == (Phrase(("tariff",)),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain words only",
        "it's the tariff's cost, don't panic",
        "l'ukraine and d'israel, qu'il l's",
        "rock'n'roll y'all o'clock l' x 'quoted' nell's dell'europa all'italia",
        "qu'l'x jusqu'a lorsqu'il puisqu'elle",
        "u.s. f-35s 2024's l'2024",
        # capitals, symbols and typographic punctuation take the same path
        "U.S. NGOs’ AT&T L’OTAN’s “quoted” — dash… IT'S Q&A",
        "Trade Deal: C++ and C# at T-Mobile; U.S.-China, U.S, eu_watcher",
        "Aide à l’Ukraine",  # not ASCII: see below
    ],
)
def test_ascii_words_agrees_with_tokenize(text: str) -> None:
    words = ascii_words(text)
    assert words is None or words == [t.word for t in tokenize(text)]
    assert (words is None) == ("à" in text)


@pytest.mark.parametrize(
    ("word", "forms"),
    [
        ("tariff", ("tariffs",)),
        ("rat", ("rats",)),  # not "rates"
        ("us", ("uss",)),  # not "uses"
        ("jon", ("jons",)),  # not "jones"
        ("tim", ("tims",)),  # not "times"
        ("car", ("cars",)),  # not "cares"
        ("plan", ("plans",)),  # not "planes"
        ("war", ("wars",)),  # not "wares"
        ("cas", ("cass",)),  # not "cases"
        ("do", ("dos",)),  # not "does"
        ("to", ("tos",)),  # not "toes"
        ("tax", ("taxs", "taxes")),
        ("ox", ("oxs", "oxes", "oxen")),
        ("crisis", ("crisiss", "crisises", "crises")),
        ("child", ("childs", "children")),
        ("person", ("persons", "people")),
        ("index", ("indexs", "indexes", "indices")),
        ("spokeswoman", ("spokeswomans", "spokeswomen")),
        ("boss", ("bosss", "bosses")),
        ("church", ("churchs", "churches")),
        ("crash", ("crashs", "crashes")),
        ("waltz", ("waltzs", "waltzes")),
        ("quiz", ("quizs", "quizes", "quizzes")),
        ("bus", ("buss", "buses")),
        ("gas", ("gass", "gases")),
        ("bias", ("biass", "biases")),
        ("virus", ("viruss", "viruses")),
        ("hero", ("heros", "heroes")),
        ("veto", ("vetos", "vetoes")),
        ("embargo", ("embargos", "embargoes")),
        ("radio", ("radios",)),
        ("company", ("companys", "companies")),
        ("policy", ("policys", "policies")),
        ("day", ("days",)),
        ("f35", ("f35s",)),
    ],
)
def test_plural_forms(word: str, forms: tuple[str, ...]) -> None:
    assert plural_forms(word) == forms


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("tariff", ("tariff",)),
        ("đokovic", ("dokovic", "djokovic")),
        ("điniđic", ("dinidic", "djinidjic")),
    ],
)
def test_spellings(word: str, expected: tuple[str, ...]) -> None:
    assert spellings(word) == expected


def p(*words: str, exact: bool = False) -> Phrase:
    return Phrase(words, exact)


@pytest.mark.parametrize(
    ("text", "include", "exclude"),
    [
        ("tariff", [p("tariff")], []),
        ("  Trade Deal  ", [p("trade", "deal")], []),
        ("Trade-Deal", [p("trade", "deal")], []),
        ("semiconductor -rumor", [p("semiconductor")], [p("rumor")]),
        (
            '"trade deal" OR tariff -rumor -"denied"',
            [p("trade", "deal", exact=True), p("tariff")],
            [p("rumor"), p("denied", exact=True)],
        ),
        ("“pax silica”", [p("pax", "silica", exact=True)], []),  # Slack smart quotes
        ("tariff or duty", [p("tariff", "or", "duty")], []),  # only upper-case OR
        ("ab OR bc OR cd", [p("ab"), p("bc"), p("cd")], []),
        ("tariff OR tariff", [p("tariff")], []),  # duplicates collapse
        ("trade -rumor deal", [p("trade", "deal")], [p("rumor")]),
        ("-rumor chips", [p("chips")], [p("rumor")]),
        ("chips -trade-war", [p("chips")], [p("trade", "war")]),
        ("trade - deal", [p("trade", "deal")], []),  # a lone dash is punctuation
        # autocorrect's dashes at a word's start still exclude
        ("chips \u2011rumor", [p("chips")], [p("rumor")]),
        (
            'chips \u2013rumor \u2212"price war"',
            [p("chips")],
            [p("rumor"), p("price", "war", exact=True)],
        ),
        ("trade \u2013 deal", [p("trade", "deal")], []),
        ("ＴＡＲＩＦＦ Café", [p("tariff", "cafe")], []),
        ("tariff’s", [p("tariff's")], []),
        ("(tariff OR duty)", [p("tariff"), p("duty")], []),
        ("کتاب\u200cها", [p("کتابها")], []),  # ZWNJ: one word, as in feed text
        ("ta\u00adriff -ru\u200bmor", [p("tariff")], [p("rumor")]),
        ("l’Ukraine", [p("l", "ukraine")], []),
        ("Łódź OR Œuvre", [p("lodz"), p("oeuvre")], []),
    ],
)
def test_parse_query(text: str, include: list[Phrase], exclude: list[Phrase]) -> None:
    query = parse_query(text)
    assert query.text == text.strip()
    assert query.include == tuple(include)
    assert query.exclude == tuple(exclude)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "term is empty"),
        ("   \t ", "term is empty"),
        ("x" * (MAX_TERM_LENGTH + 1), "term is longer than 200 characters"),
        ("-rumor", "a term can't be only exclusions: add a word to look for"),
        ('-rumor -"trade war"', "a term can't be only exclusions"),
        ("-a OR -b", "a term can't be only exclusions"),
        ("OR", "OR needs a phrase on both sides"),
        ("OR OR", "OR needs a phrase on both sides"),
        ("tariff OR", "OR needs a phrase on both sides"),
        ("OR tariff", "OR needs a phrase on both sides"),
        ("tariff OR OR duty", "OR needs a phrase on both sides"),
        ('"trade deal', "unbalanced quote"),
        ('tariff "', "unbalanced quote"),
        ('""', "a quoted phrase has no letters or digits"),
        ("&& !!", "term has no letters or digits"),
        ('"pax silica" summit', "quoted phrase can't stand next to other words"),
        ("tariff -tariff", "both looked for and excluded"),
    ],
)
def test_parse_query_errors(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert message in str(info.value)


def test_query_error_is_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_exactly_max_length_is_accepted() -> None:
    text = " ".join(["words"] * 40)[:MAX_TERM_LENGTH]
    assert len(text) == MAX_TERM_LENGTH
    assert parse_query(f"  {text}  ").text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tariff", "*tariff* (also: tariffs)"),
        ("trade deal", "phrase *trade deal* (also: trade deals)"),
        ("policy", "*policy* (also: policies)"),
        ("tax", "*tax* (also: taxes)"),
        ("paris", "*paris*"),
        ("chips", "*chips*"),
        ("potato chips", "phrase *potato chips*"),
        ("boss", "*boss* (also: bosses)"),
        ("AT&T", "*AT&T* (also: AT&Ts)"),
        ("US", "*US*"),
        ("NGO", "*NGO* (also: NGOs)"),
        ("crisis", "*crisis*"),
        ("child", "*child* (also: children)"),
        ("ภาษี", "phrase *ภาษี*"),
        ("day", "*day* (also: days)"),
        ("ai", "*ai* (also: ais)"),
        ('"tariff"', 'exact word *"tariff"*'),
        (
            'tariff OR "pax silica" -rumor',
            '*tariff* (also: tariffs) or exact phrase *"pax silica"*, excluding *rumor*',
        ),
        (
            'Semiconductor -rumor -"trade war"',
            '*semiconductor* (also: semiconductors), excluding *rumor* or *"trade war"*',
        ),
        ("F-35", "phrase *f 35*"),
        ("東京", "phrase *東京*"),
        ("us", "*us*"),  # no hint for a word ending in s; matches "uss", not "uses"
        ("rat", "*rat* (also: rats)"),
        ("bus", "*bus*"),
        ("quiz", "*quiz* (also: quizzes)"),
        ("veto", "*veto* (also: vetos, vetoes)"),
        ("trade embargo", "phrase *trade embargo* (also: trade embargos, trade embargoes)"),
        ("company", "*company* (also: companies)"),
        ("کتاب\u200cها", "*کتابها*"),
        ("l’Ukraine", "phrase *l ukraine* (also: l ukraines)"),
    ],
)
def test_describe(text: str, expected: str) -> None:
    assert parse_query(text).describe() == expected


def test_query_is_hashable_value() -> None:
    assert parse_query("trade deal") == parse_query("trade deal")
    assert len({parse_query("ab OR bc"), parse_query("ab OR bc")}) == 1
    assert isinstance(parse_query("xy"), Query)


def test_stored_mark_table_is_this_unicode_database() -> None:
    """The combining marks kept in bot/unicode_marks.py (read at every start
    instead of scanning 135,000 code points) are exactly what `unicodedata`
    says, whenever this Python has the table's Unicode version."""
    if unicodedata.unidata_version != unicode_marks.TABLE_VERSION:
        pytest.skip(f"table is for Unicode {unicode_marks.TABLE_VERSION}")
    assert unicode_marks.mark_ranges() == unicode_marks.scan_mark_ranges()


@pytest.mark.parametrize("mark", ["\u0301", "\u093f", "\U0001d167", "\U000e0100"])
def test_a_combining_mark_stays_in_its_word(mark: str) -> None:
    """Marks in the BMP, plane 1 and plane 14 all belong to the word before them."""
    assert [t.word for t in tokenize(f"x{mark}y z")][1:] == ["z"]
    assert len(tokenize(f"x{mark}y z")) == 2


_PLAIN_TERMS = [
    "tariff",
    "Trade Deal",
    "trade  deal",
    "US",
    "us",
    "EU wide",
    "NGOs",
    "G7 summit",
    "nonprofit groups",
    "COVID19 vaccine",
    "AT T",
    "ABCDEF deal",
    "A B",
    "e commerce",
    "7 eleven",
    "Oman talks",
    "kpop stars",
    "midterm vote",
    "Disney",
    "x",
    "3",
]


@pytest.mark.parametrize("text", _PLAIN_TERMS)
def test_plain_terms_parse_as_the_general_parser_does(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain word terms take a one-pass shortcut; it must give the query (or
    the error) the general parser gives."""
    from bot import query

    def parsed() -> Query | str:
        query.parse_query.cache_clear()
        try:
            return parse_query(text)
        except QueryError as exc:
            return str(exc)

    shortcut = parsed()
    monkeypatch.setattr(query, "_SIMPLE_TERM_RE", re.compile(r"(?!)"))
    assert parsed() == shortcut
    query.parse_query.cache_clear()


def test_lower_case_word_pattern_finds_what_the_full_one_finds_in_lower_case_text() -> None:
    """`_LOWER_WORD_RE` is `_ASCII_WORD_RE` for text without capitals: same
    words at the same offsets (names with symbols, apostrophes, underscores)."""
    import random

    from bot.query import _ASCII_WORD_RE, _LOWER_WORD_RE

    rng = random.Random(16)
    pieces = [*"abz09'_&+#.- ,", "++", "c++", "at&t", "a.b.", "x_y", "it's", "f#"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert [m.span() for m in _LOWER_WORD_RE.finditer(text)] == [
            m.span() for m in _ASCII_WORD_RE.finditer(text)
        ], text


def test_words_of_text_without_joiners_are_the_runs_of_letters_and_digits() -> None:
    """`_lower_words` (translate and split) and `tokenize` (`_PLAIN_WORD_RE`)
    skip `_LOWER_WORD_RE` for ASCII text in which `_joins_words` finds
    nothing: the same words at the same offsets for any such text, capitals,
    controls and every other punctuation character included."""
    import random
    import string

    from bot.query import _LOWER_WORD_RE, _PLAIN_WORD_RE, _joins_words, _lower_words

    rng = random.Random(17)
    pieces = [*string.printable, "\x00", "\x1c", "\x7f", "abc", "x9", "tariff", "US"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        if "'" not in text:
            assert _lower_words(text) == _LOWER_WORD_RE.findall(text), repr(text)
        if not _joins_words(text):
            spans = [m.span() for m in _LOWER_WORD_RE.finditer(text)]
            assert [m.span() for m in _PLAIN_WORD_RE.finditer(text)] == spans, repr(text)
