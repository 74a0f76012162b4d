"""Tests of peestore.csvformat: the streaming CSV reader and writer of the data tools."""
import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peestore.tools import _csv as csvformat
from peestore.tools._csv import CsvReader, FieldCountError, cell, record_text
from peestore.errors import TooLargeError, ValidationError


def _reader(text, max_field_bytes=1 << 20, max_record_bytes=5 << 20, chunk=None,
            monkeypatch=None):
    if chunk is not None:
        monkeypatch.setattr(csvformat, "CHUNK_CHARS", chunk)
    return CsvReader(io.StringIO(text), "t.csv", max_field_bytes=max_field_bytes,
                     max_record_bytes=max_record_bytes)


def _all(reader, max_fields=100):
    out = []
    while True:
        record = reader.read(max_fields)
        if record is None:
            return out
        out.append((reader.line, record))


class _CountingText(io.StringIO):
    """A text stream that counts how many characters were read from it."""

    def __init__(self, text):
        super().__init__(text)
        self.taken = 0

    def read(self, n=-1):
        data = super().read(n)
        self.taken += len(data)
        return data


def test_writer_tells_null_from_empty_and_quotes_what_needs_it():
    """NULL is an empty field, "" is two quotes; commas, quotes, CR and LF are quoted."""
    assert record_text([None, "", "a", 'say "hi"', "a,b", "x\r\ny", "\r"]) == (
        ',"",a,"say ""hi""","a,b","x\r\ny","\r"\r\n')
    assert cell(None) == "" and cell("") == '""' and cell("plain") == "plain"


def test_reader_tells_null_from_empty():
    """An empty unquoted field is None, a quoted one the empty string."""
    assert _all(_reader(',"",x\r\n"",,\r\n')) == [(1, [None, "", "x"]), (2, ["", None, None])]


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_reader_accepts_every_line_end(newline, monkeypatch):
    """CR, LF and CRLF all end a record; a blank line is no record; lines are counted."""
    text = newline.join(["a,b", "1,2", "", '"x' + newline + 'y",3', "4,5"]) + newline
    for chunk in (1, 3, 64):
        assert _all(_reader(text, chunk=chunk, monkeypatch=monkeypatch)) == [
            (1, ["a", "b"]), (2, ["1", "2"]), (4, ["x" + newline + "y", "3"]),
            (6, ["4", "5"])]


def test_last_record_without_line_end():
    """The end of the text ends the last record; a trailing comma is one more NULL."""
    assert _all(_reader("a,b\r\n1,")) == [(1, ["a", "b"]), (2, ["1", None])]


@pytest.mark.parametrize("text, line, message", [
    ('a,b\r\n"x,1\r\n', 2, "not closed"),
    ('a,b\r\n"multi\nline"x,1\r\n', 3, "after a closing quote"),
])
def test_malformed_records_name_their_line(text, line, message):
    """A quote left open, or text after a closing quote: a ValidationError with its line."""
    with pytest.raises(ValidationError, match="t.csv line %d: .*%s" % (line, message)):
        _all(_reader(text))


def test_a_long_field_is_refused_while_it_is_read(monkeypatch):
    """A field over max_field_bytes stops the reading at once, with or without quotes."""
    for quote in ("", '"'):
        text = _CountingText("a,b\r\n1," + quote + "x" * 1000000 + quote + "\r\n")
        monkeypatch.setattr(csvformat, "CHUNK_CHARS", 4096)
        reader = CsvReader(text, "t.csv", max_field_bytes=10000, max_record_bytes=50000)
        reader.read(2)
        with pytest.raises(TooLargeError, match="t.csv line 2: a field is longer than 10000 "
                                                "bytes"):
            reader.read(2)
        assert text.taken < 30000


def test_field_size_counts_utf8_bytes():
    """max_field_bytes counts bytes: 6 two-byte characters are over 10 bytes."""
    assert _all(_reader("éééé,x\n", max_field_bytes=10)) == [(1, ["éééé", "x"])]
    with pytest.raises(TooLargeError):
        _all(_reader("éééééé,x\n", max_field_bytes=10))


def test_skip_refuses_what_read_refuses_without_keeping_the_text(monkeypatch):
    """skip() applies every limit and reports every malformed record as read() does."""
    cases = [('a,b\r\n"x,1\r\n', ValidationError, "line 2: a quoted field is not closed"),
             ('"a\r\n\rb"x,1\r\n', ValidationError, "line 3: 'x' after a closing quote"),
             ("x" * 200 + "\r\n", TooLargeError, "a field is longer than 100 bytes"),
             ('"' + "é" * 60 + '"\r\n', TooLargeError, "a field is longer than 100 bytes"),
             (",".join(["x" * 90] * 5) + "\r\n", TooLargeError, "take more than 300 bytes"),
             (",".join("abcdefghijkl") + "\r\n", FieldCountError, "more than 10 fields")]
    for text, error, message in cases:
        for chunk in (3, 4096):
            monkeypatch.setattr(csvformat, "CHUNK_CHARS", chunk)
            for method in ("read", "skip"):
                reader = CsvReader(io.StringIO(text), "t.csv", max_field_bytes=100,
                                   max_record_bytes=300)
                with pytest.raises(error, match=message):
                    while getattr(reader, method)(10) is not None:
                        pass


def test_a_long_record_is_refused():
    """A record of many fields each under the limit is refused past max_record_bytes."""
    with pytest.raises(TooLargeError, match="the record's fields take more than 100 bytes as text"):
        _all(_reader(",".join(["x" * 20] * 10) + "\n", max_field_bytes=50,
                     max_record_bytes=100))


@pytest.mark.parametrize("quote", ["", '"'])
def test_the_record_limit_counts_the_bytes_python_keeps(quote, monkeypatch):
    """One emoji makes a field take 4 bytes a character: four fields that are each 1000
    bytes of UTF-8 take about 16,000 bytes; past 5,000 the record is refused, while the
    same fields in ASCII (4,000 bytes) pass. Long or short lines alike."""
    wide = quote + "a" * 996 + "\U0001F600" + quote
    narrow = quote + "a" * 1000 + quote
    for chunk in (64, 4096):
        with pytest.raises(TooLargeError, match="t.csv line 1: the record's fields take "
                                                "more than 5000 bytes as text"):
            _all(_reader(",".join([wide] * 4) + "\r\n", max_field_bytes=1000,
                         max_record_bytes=5000, chunk=chunk, monkeypatch=monkeypatch))
        assert len(_all(_reader(",".join([narrow] * 4) + "\r\n" + wide + ",x\r\n",
                                max_field_bytes=1000, max_record_bytes=5000, chunk=chunk,
                                monkeypatch=monkeypatch))) == 2


def test_too_many_fields_stop_the_reading(monkeypatch):
    """A record with more fields than allowed is refused at the first one too many."""
    monkeypatch.setattr(csvformat, "CHUNK_CHARS", 4096)
    text = _CountingText("ab," * 1000000 + "\r\n")
    with pytest.raises(FieldCountError) as info:
        CsvReader(text, "t.csv", max_field_bytes=100, max_record_bytes=10 ** 9).read(5)
    assert info.value.line == 1 and info.value.limit == 5
    assert text.taken < 20000


def test_no_process_wide_setting_changes():
    """Reading a 2 MB field changes nothing of the csv module's own limit."""
    limit = csv.field_size_limit()
    assert _all(_reader("x" * (2 << 20) + "\n", max_field_bytes=4 << 20))[0][1][0][:1] == "x"
    assert csv.field_size_limit() == limit


_values = st.one_of(st.none(), st.text(alphabet=st.sampled_from(
    list('ab ,"\r\n\t\'=é\u2028') + ["\U0001F600"]), max_size=8))
_records = st.lists(st.lists(_values, min_size=2, max_size=4), max_size=5)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_records, st.sampled_from([1, 2, 5, 4096]))
def test_what_is_written_reads_back(records, chunk):
    """Any records, read back in any chunk size: the same values, None and "" kept apart;
    and the csv module reads the same strings."""
    text = "".join(record_text(r) for r in records)
    saved = csvformat.CHUNK_CHARS
    csvformat.CHUNK_CHARS = chunk
    try:
        got = [record for _, record in _all(_reader(text))]
    finally:
        csvformat.CHUNK_CHARS = saved
    assert got == records
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["" if v is None else v for v in r] for r in records]


_line_ends = st.sampled_from(["\r\n", "\n", "\r"])
_blanks = st.text(alphabet=st.sampled_from(["\r", "\n"]), max_size=6)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(_blanks, st.lists(_values, min_size=2, max_size=4), _line_ends),
                max_size=6), _blanks, st.sampled_from([1, 2, 5, 4096]))
def test_any_line_ends_and_blank_lines_read_back(records, trailing, chunk):
    """Records ended by CR, LF or CRLF, with runs of blank lines between them: the same
    records, each with the line it begins on (a CRLF is one line end, even split over
    two chunks); the csv module agrees on the records."""
    text = ""
    expected = []
    for blanks, record, end in records:
        text += blanks
        expected.append((1 + csvformat._breaks(text), record))
        text += record_text(record)[:-2] + end
    text += trailing
    saved = csvformat.CHUNK_CHARS
    csvformat.CHUNK_CHARS = chunk
    try:
        got = _all(_reader(text))
        skipper = _reader(text)
        skipped = []
        while True:
            count = skipper.skip(100)
            if count is None:
                break
            skipped.append((skipper.line, count))
    finally:
        csvformat.CHUNK_CHARS = saved
    assert got == expected
    # skip checks and counts the same records without holding their values.
    assert skipped == [(line, len(record)) for line, record in expected]
    assert [r for r in csv.reader(io.StringIO(text, newline="")) if r] == [
        ["" if v is None else v for v in r] for _, r in expected]


def test_a_run_of_blank_lines_is_one_step(monkeypatch):
    """Megabytes of blank lines (CR, LF, CRLF mixed) cost no Python step per line: the
    reader asks the text for no more calls than its chunks, and counts every line."""
    monkeypatch.setattr(csvformat, "CHUNK_CHARS", 4096)
    text = _CountingText("a,b\r\n" + "\r\r\n\n" * 250000 + "1,2\r\n")
    reader = CsvReader(text, "t.csv", max_field_bytes=100, max_record_bytes=1000)
    steps = []
    record = reader._record
    monkeypatch.setattr(reader, "_record", lambda n: steps.append(n) or record(n))
    assert _all(reader) == [(1, ["a", "b"]), (750002, ["1", "2"])]
    assert steps == []
