"""The page's own wording, Japanese first and English too. The learner picks with the
language link (?lang=en|ja, kept in a cookie); otherwise the browser's Accept-Language
decides, and Japanese is the default."""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("ja", "en")
COOKIE = "wp_lang"

TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "title": "雑談練習 | Workplace Roleplay",
        "heading": "雑談練習",
        "tagline": "職場のちょっとした会話を、AIの同僚・先輩・上司と練習しましょう",
        "switch_label": "English",
        "switch_lang": "en",
        "partner": "相手",
        "situation": "場面",
        "new_chat": "新しい会話",
        "placeholder": "メッセージを入力（Enterで送信、Shift+Enterで改行）",
        "send": "送信",
        "feedback_heading": "感情分析フィードバック",
        "feedback_hint": "メッセージを送ると、あなたの発言ごとの感情分析がここに届きます。",
        "chat_unreachable": "チャットサービスに接続できません。しばらくしてから再読み込みしてください。",
        "feedback_unreachable": "これまでのフィードバックを読み込めませんでした。新しい分析は届きます。",
        "thinking": "考え中…",
        "waiting": "返信を待っています…",
        "replying": "返信中…",
        "cached": "（キャッシュ）",
        "engine_title": "この返信を作った応答エンジン",
        "engine_offline": "オフライン応答エンジン（multilingual-e5-small による検索型）",
        "engine_local": "ローカルLLM",
        "reply_failed": "返信を作れませんでした。少し待ってからもう一度お試しください。",
        "reply_unavailable": "ただいまサービスが一時的に利用できません。数秒待ってから、もう一度送信してください。",
        "reply_not_saved": (
            "返信は表示されましたが、保存できませんでした。この発言は記録されていません。もう一度送信してください。"
        ),
        "network_failed": "サーバーに接続できませんでした。ネットワークを確認して、もう一度お試しください。",
        "checking_saved": "接続が途切れました。発言が保存されたか確認しています…",
        "saved_despite_break": "接続が途切れましたが、発言と返信は保存されています。",
        "aborted": "送信を中止しました。",
        "unsent_title": "この発言は保存されていません。もう一度送信してください。",
        "unsent_status": "送信できませんでした。内容は入力欄に戻しました。",
        "polarity_title": "ネガティブ ← → ポジティブ",
        "analysed_by": "分析エンジン",
    },
    "en": {
        "title": "Small talk practice | Workplace Roleplay",
        "heading": "Small talk practice",
        "tagline": "Practise everyday workplace conversation with an AI colleague, senior or boss",
        "switch_label": "日本語",
        "switch_lang": "ja",
        "partner": "Partner",
        "situation": "Situation",
        "new_chat": "New conversation",
        "placeholder": "Type a message (Enter to send, Shift+Enter for a new line)",
        "send": "Send",
        "feedback_heading": "Emotion feedback",
        "feedback_hint": "Send a message and the emotion analysis of each of your turns arrives here.",
        "chat_unreachable": "The chat service cannot be reached. Please reload in a moment.",
        "feedback_unreachable": "Earlier feedback could not be loaded. New analyses will still arrive.",
        "thinking": "Thinking…",
        "waiting": "Waiting for the reply…",
        "replying": "Replying…",
        "cached": " (cached)",
        "engine_title": "The engine that wrote this reply",
        "engine_offline": "Offline reply engine (retrieval with multilingual-e5-small)",
        "engine_local": "Local LLM",
        "reply_failed": "No reply could be made. Please wait a moment and try again.",
        "reply_unavailable": "The service is briefly unavailable. Wait a few seconds and send your message again.",
        "reply_not_saved": "The reply was shown but not saved: this turn was not recorded. Please send it again.",
        "network_failed": "The server could not be reached. Check your connection and try again.",
        "checking_saved": "The connection dropped. Checking whether your message was saved…",
        "saved_despite_break": "The connection dropped, but your message and the reply were saved.",
        "aborted": "Sending was cancelled.",
        "unsent_title": "This message was not saved. Please send it again.",
        "unsent_status": "Not sent. Your message is back in the input box.",
        "polarity_title": "negative ← → positive",
        "analysed_by": "Analysed by",
    },
}


def pick_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    saved = request.cookies.get(COOKIE)
    if saved in LANGUAGES:
        return saved
    accept = request.headers.get("accept-language", "").lower()
    # The first language the browser lists decides between our two.
    for part in accept.split(","):
        code = part.split(";")[0].strip()[:2]
        if code in LANGUAGES:
            return code
    return "ja"
