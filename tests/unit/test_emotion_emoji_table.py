"""The sentence splitter's emoji table (emotion/emoji_boundaries.json) is what the installed emoji and
emojis packages give, so precomputing it changed no split; and the analysers load without those packages."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from feedback_service.emotion import sentences


def test_table_is_fresh() -> None:
    stored = json.loads(sentences.EMOJI_TABLE.read_text(encoding="utf-8"))
    assert stored == sentences.build_emoji_table(), (
        "emoji_boundaries.json is stale: run `python -m feedback_service.emotion.sentences`"
    )


def test_table_matches_every_character_as_the_packages_do() -> None:
    import emoji

    singles = sorted(char for char in emoji.EMOJI_DATA if len(char) == 1)
    from_packages = re.compile("[" + "".join(map(re.escape, singles)) + "]+")
    run, final = sentences._emoji_tables()
    differ = [
        hex(code)
        for code in range(0x110000)
        if not 0xD800 <= code < 0xE000 and bool(run.fullmatch(chr(code))) != bool(from_packages.fullmatch(chr(code)))
    ]
    assert differ == []
    assert "😊" in final and "♪" not in final and "🍣" not in final  # a face ends a sentence, food does not
    assert final <= set(singles)


def test_splitter_loads_without_the_emoji_packages() -> None:
    probe = (
        "import sys, ipadic, MeCab\n"
        "from feedback_service.emotion.sentences import SentenceSplitter\n"
        "t = MeCab.Tagger(ipadic.MECAB_ARGS); t.parse('')\n"
        "print(SentenceSplitter(t)('最高😊明日も頑張ります'))\n"
        "print(sorted({'emoji', 'emojis'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['最高😊', '明日も頑張ります']", "[]"]
