import pytest
from workplace_kit.ai.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("おはようございます", "ja"),
        ("今日は会議があります", "ja"),  # kanji and hiragana
        ("カタカナだけ", "ja"),
        ("今日はMTGがあります", "ja"),  # an English abbreviation inside Japanese
        ("ABCプロジェクトの進捗はどうですか？", "ja"),
        ("How was your weekend?", "en"),
        ("I had 寿司 for lunch today", "en"),  # a Japanese word inside English
        ("ＯＫ ｔｈａｎｋｓ", "en"),  # full-width Latin letters
        ("", "ja"),  # nothing to go on: the platform default
        ("123!?", "ja"),
        ("😀", "ja"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected
