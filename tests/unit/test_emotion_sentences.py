"""oseti's sentence splitter without bunkai: the same sentences bunkai gave (the expected values are
bunkai 1.5.7's output), and the analysers load without bunkai, janome or their memory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from feedback_service.emotion.sentences import SentenceSplitter


@pytest.fixture(scope="module")
def split() -> SentenceSplitter:
    import ipadic
    import MeCab

    tagger = MeCab.Tagger(ipadic.MECAB_ARGS)
    tagger.parse("")
    return SentenceSplitter(tagger)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        # bunkai splits inside quotes too; oseti has always scored these pieces
        ("「今日は楽しかった。」と言われました。嬉しい！", ["「今日は楽しかった。", "」と言われました。", "嬉しい！"]),
        ("本当？！嬉しい！！また行こう", ["本当？！", "嬉しい！！", "また行こう"]),
        ("ありがとう\n助かりました\n\nまた明日", ["ありがとう\n", "助かりました\n\n", "また明日"]),
        ("問題ありません", ["問題ありません"]),
        ("嬉しい！と思った。え？って顔をされた", ["嬉しい！と思った。", "え？って顔をされた"]),
        ("  すごい！ということ。", ["  すごい！ということ。"]),
        ("すごい！\nと思いました。", ["すごい！\n", "と思いました。"]),
        ("楽しかった♪また行きたい（笑）次は？", ["楽しかった♪", "また行きたい（笑）", "次は？"]),
        ("最高😊明日も頑張ります", ["最高😊", "明日も頑張ります"]),
        ("悲しい…。でも頑張る", ["悲しい…。", "でも頑張る"]),
        ("3.5時間かかった。No.1です！", ["3.5時間かかった。", "No.1です！"]),
        ("了解です。 \n 明日やります", ["了解です。 \n ", "明日やります"]),
        ("Great!! Thanks. See you", ["Great!! ", "Thanks. ", "See you"]),
    ],
)
def test_splits_as_bunkai_did(split: SentenceSplitter, text: str, sentences: list[str]) -> None:
    assert split(text) == sentences


def test_analysers_load_without_bunkai_and_stay_small() -> None:
    # A fresh interpreter: the test session may have imported anything.
    probe = (
        "import sys\n"
        "from feedback_service.emotion.offline import JapaneseEmotionAnalyser, EnglishEmotionAnalyser\n"
        "JapaneseEmotionAnalyser().analyse('楽しかった😊また行きたい！'); EnglishEmotionAnalyser().analyse('Great!')\n"
        "print(sorted({'bunkai', 'janome', 'numpy', 'torch'} & set(sys.modules)))\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", out
    assert int(out[1]) < 200, f"peak RSS {out[1]} MB"
