#!/usr/bin/env python3
"""Feedback service memory benchmark: RSS of a process that loads the service and its offline
emotion analysers (ML-Ask + oseti on MeCab for Japanese, VADER for English), and time per analysis.

    .venv/bin/python bench/feedback_memory.py [--limit-mb 300]

Runs the measurement in a fresh Python process (nothing loaded before), which imports the service
(feedback_service.app) and builds the analyser as app.build does: build_emotion_analysers() with
the offline provider, then warm_up(). Prints RSS before and after, peak RSS (VmHWM) and the mean
time per analysis; exits 1 if the peak reaches the limit. No network, no database.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

JAPANESE = [
    "プロジェクトが成功して本当に嬉しいです！",
    "何度も同じミスをされて本当に腹が立ちます。",
    "企画が通らなくて、とても悲しいです。",
    "来週の面接のことを考えると心配です。",
    "会議は午後三時から第二会議室で行います。",
    "大変助かりました。ありがとうございます！",
    "大変申し訳ございません。すぐに確認します。",
    "問題ありません。予定どおり進めてください。",
    "間に合わなくて申し訳ありません。",
    "「今日は楽しかった。」と言ってもらえました。",
    "本当？！嬉しい！！また一緒にやりましょう",
    "資料を送りました\n確認をお願いします\nよろしくお願いします",
    "すごい！と思いました。勉強になります。",
    "楽しかった♪また行きたいです（笑）",
    "最高😊明日も頑張ります",
    "残念ですが、今回は見送りになりました…",
    "嬉しくなくはないです。",
    "ちょっと不安ですが、やってみます。",
    "お疲れさまです。明日の準備は大丈夫ですか？",
    "締め切りが厳しくて、正直つらいです。",
    "新しいチームに入れてわくわくしています！",
    "3.5時間かかりましたが、無事に終わりました。",
    "承知しました",
    "なんでこんなことになったのか、理解できません。",
]
ENGLISH = [
    "I'm so happy with how the project turned out!",
    "I'm really angry that nobody told me about the change.",
    "I feel sad and disappointed about the results.",
    "I'm worried I won't finish the report before the deadline.",
    "The meeting starts at three in room B.",
    "Great job on the presentation!",
    "I'm not happy about this.",
    "Thanks a lot, that really helped me.",
    "Could you review my draft?",
    "I'm a bit nervous about tomorrow's interview.",
    "Honestly, this is frustrating. We keep missing deadlines.",
    "What a relief, the client approved the budget!",
    "I had sushi for lunch with my team.",
    "Sorry, I made a mistake in the numbers.",
    "I love working with this team :)",
    "That's surprising, I didn't expect that at all!",
]


def rss_mb() -> dict[str, float]:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


async def measure() -> dict[str, float]:
    from feedback_service.app import build  # noqa: F401  (what the service process has loaded)
    from feedback_service.emotion import build_emotion_analysers
    from feedback_service.settings import FeedbackSettings
    from workplace_kit.config import load_settings

    before = rss_mb()["VmRSS"]
    analyser, _ = build_emotion_analysers(load_settings(FeedbackSettings, ai_provider="offline"))
    await analyser.warm_up()  # type: ignore[attr-defined]
    loaded = rss_mb()["VmRSS"]
    timings = {}
    for language, texts in (("ja", JAPANESE), ("en", ENGLISH)):
        start = time.perf_counter()
        for text in texts:
            await analyser.analyse(text, language)
        timings[language] = (time.perf_counter() - start) / len(texts) * 1000
    after = rss_mb()
    print(f"RSS after importing the service: {before:.0f} MB")
    print(f"RSS with the analysers loaded:   {loaded:.0f} MB")
    print(f"RSS after {len(JAPANESE)} ja + {len(ENGLISH)} en analyses: {after['VmRSS']:.0f} MB")
    print(f"peak RSS (VmHWM):                {after['VmHWM']:.0f} MB")
    print(f"time per analysis: ja {timings['ja']:.2f} ms, en {timings['en']:.2f} ms")
    big = sorted(m for m in ("bunkai", "janome", "numpy", "torch", "transformers") if m in sys.modules)
    print(f"heavy modules loaded: {', '.join(big) or 'none'}")
    return after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-mb", type=float, default=300.0)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_process:
        # -P: bench/ stays off sys.path: the child imports the service as the service itself does.
        command = [sys.executable, "-P", __file__, "--in-process", "--limit-mb", str(args.limit_mb)]
        raise SystemExit(subprocess.call(command))
    peak = asyncio.run(measure())["VmHWM"]
    if peak >= args.limit_mb:
        print(f"FAIL: peak RSS {peak:.0f} MB >= {args.limit_mb:.0f} MB")
        raise SystemExit(1)
    print(f"OK: peak RSS {peak:.0f} MB < {args.limit_mb:.0f} MB")


if __name__ == "__main__":
    main()
