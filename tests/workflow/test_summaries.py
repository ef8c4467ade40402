"""The workflow summaries of `nemoclaw --help`: always what YAML reads in the file on disk,
from the cache when the file's text is the cached text."""

from __future__ import annotations

import pytest

from orchestrator.workflow import summaries as mod
from orchestrator.workflow.summaries import summaries

CASES = {
    "plain.yaml": ("name: plain\nsummary: Back up all sandbox state before upgrade\n", "Back up all sandbox state before upgrade"),
    "quoted.yaml": ('summary: "My own: quoted"\n', "My own: quoted"),
    "block.yaml": ("summary: |\n  two\n  lines\n", "two\nlines\n"),
    "later-error.yaml": ("summary: fine\nstates: [unclosed\n", None),  # does not parse: invalid
    "list.yaml": ("- summary: x\n", None),
    "number.yaml": ("summary: 42\n", None),
    "none.yaml": ("name: x\n", None),
}


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "wf"
    d.mkdir()
    out = []
    for name, (text, _) in CASES.items():
        (d / name).write_text(text)
        out.append(d / name)
    (d / "latin.yaml").write_bytes(b"summary: \xff\xfe\n")  # not UTF-8: invalid
    (d / "gone.yaml").symlink_to(d / "nowhere")  # unreadable: invalid
    return out + [d / "latin.yaml", d / "gone.yaml"]


EXPECTED = [s for _, s in CASES.values()] + [None, None]


def test_summaries_are_what_yaml_reads_cold_and_from_the_cache(files, tmp_path, monkeypatch):
    cache = tmp_path / "home" / ".nemoclaw" / "cache" / "workflow-summaries"
    assert summaries(files, cache) == EXPECTED
    assert cache.is_file() and oct(cache.stat().st_mode & 0o777) == oct(0o600)

    def no_yaml(text):
        raise AssertionError("read with YAML although the text is cached")

    monkeypatch.setattr(mod, "summary_of_text", no_yaml)
    before = cache.read_bytes()
    assert summaries(files, cache) == EXPECTED
    assert cache.read_bytes() == before  # nothing changed: not rewritten


def test_a_changed_file_is_read_again_even_with_the_same_size_and_time(files, tmp_path):
    import os

    cache = tmp_path / "cache"
    summaries(files, cache)
    plain = files[0]
    st = plain.stat()
    plain.write_text(CASES["plain.yaml"][0].replace("Back up", "Mess up"))  # same length
    os.utime(plain, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert plain.stat().st_size == st.st_size
    assert summaries(files, cache)[0] == "Mess up all sandbox state before upgrade"
    plain.write_text("summary: [broken\n")
    assert summaries(files, cache)[0] is None


@pytest.mark.parametrize("content", [b"{garbage", b"[1, 2]", b"{'version': 1, 'files': {'x': 3}}", b"\xff\xfe",
                                     b"{'version': 99, 'files': {}}", b"__import__('os').system('false')"])
def test_a_corrupt_cache_is_ignored_and_replaced(files, tmp_path, content):
    cache = tmp_path / "cache"
    cache.write_bytes(content)
    assert summaries(files, cache) == EXPECTED
    assert cache.read_bytes() != content
    assert summaries(files, cache) == EXPECTED


def test_a_wrong_cached_summary_for_another_text_is_not_used(files, tmp_path):
    cache = tmp_path / "cache"
    cache.write_text(repr({"version": 1, "files": {str(files[0]): ["other text\n", "Stale summary"]}}))
    assert summaries(files, cache)[0] == "Back up all sandbox state before upgrade"


def test_a_cache_that_cannot_be_written_changes_nothing(files, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert summaries(files, blocker / "cache") == EXPECTED  # its directory is a file: not writable
    assert summaries(files, None) == EXPECTED
