"""What the learners of the load and fault tests say: everyday workplace lines, Japanese first,
some English. One list for tests/resilience (chaos) and bench/full_platform.py."""

LEARNER_LINES = (
    "おはようございます。今日もよろしくお願いします。",
    "昨日の会議の資料、確認していただけましたか？",
    "すみません、少し遅れてしまいました。",
    "週末は家族と買い物に行きました。",
    "この件、今日中に対応できるか確認します。",
    "お先に失礼します。お疲れさまでした。",
    "先週の企画、通って本当に嬉しいです！",
    "締め切りが重なっていて、少し不安です。",
    "Good morning! How was your weekend?",
    "Could you take a look at my draft when you have a minute?",
    "I'm sorry, I missed the deadline for the report.",
    "Thanks so much for your help yesterday.",
)
