"""The page's own wording, Japanese first and English too. The learner picks with the
language link (?lang=en|ja, kept in a cookie); otherwise the browser's Accept-Language
decides, and Japanese is the default."""

from __future__ import annotations

from fastapi import Request
from workplace_kit.accounts import DISPLAY_NAME_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS

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
        "coaching_label": "言い方のアドバイス",
        "verdict_ok": "言葉づかいOK",
        "verdict_too_casual": "くだけすぎ",
        "verdict_rude": "失礼な言い方",
        "verdict_too_formal": "かたすぎ",
        "verdict_too_direct": "ストレートすぎ",
        "register_expected": "この相手には",
        "did_well": "よかった点：",
        "to_change": "直すとよい点：",
        "try_this": "こう言ってみましょう：",
        # The account page (account.html, account.js); {wait} and {n} are filled in by the script.
        "nav_account": "アカウント",
        "nav_practice": "練習に戻る",
        "account_title": "アカウント | Workplace Roleplay",
        "account_heading": "アカウント",
        "account_tagline": "練習の記録を残すための登録・ログイン・ログアウト",
        "account_needs_js": "このページを使うには、ブラウザのJavaScriptを有効にしてください。",
        "account_loading": "読み込み中…",
        "account_load_failed": "アカウントの情報を読み込めませんでした。少し待ってから再読み込みしてください。",
        "who_heading": "いまの状態",
        "who_kind": "種類",
        "kind_guest": "ゲスト（未登録）",
        "kind_account": "登録済みのアカウント",
        "display_name": "表示名",
        "email": "メールアドレス",
        "no_email": "なし",
        "save_heading": "アカウントを作成して、練習の記録を残す",
        "save_explain": (
            "いまはゲストとして練習しています。アカウントを作成しても、これまでの練習の履歴は消えずにそのまま残ります。"
            "次からはメールアドレスとパスワードでログインして、別の端末やブラウザからでも続きができます。"
        ),
        "display_name_hint": f"画面に表示される名前です（{DISPLAY_NAME_MAX_CHARS}文字まで・省略できます）。",
        "password_hint": f"{PASSWORD_MIN_CHARS}文字以上で入力してください。",
        "create_account": "アカウントを作成",
        "login_heading": "作成済みのアカウントにログイン",
        "login_explain": (
            "すでにアカウントをお持ちの方はこちら。なお、いまのゲストでの練習はログインしたアカウントには移りません"
            "（残したいときは、先に上でアカウントを作成してください）。"
        ),
        "password": "パスワード",
        "log_in": "ログイン",
        "google_sign_in": "Googleでサインイン",
        "google_explain": "Googleアカウントでもサインインできます。いまのゲストでの練習もそのまま引き継がれます。",
        "account_explain": (
            "練習の記録はこのアカウントに保存されています。ログアウトすると、このブラウザでは新しいゲストとして練習を続けられます。"
        ),
        "log_out": "ログアウト",
        "sending": "送信中…",
        "upgraded": "アカウントを作成しました。これまでの練習の履歴もそのまま残っています。",
        "logged_in": "ログインしました。",
        "logged_out": "ログアウトしました。新しいゲストとして練習を続けられます。",
        "err_wrong_credentials": "メールアドレスまたはパスワードが正しくありません。",
        "err_email_taken": (
            "このメールアドレスはすでに登録されています。下の「作成済みのアカウントにログイン」からログインしてください。"
        ),
        "err_email": "メールアドレスの形式が正しくありません（例: name@example.co.jp）。",
        "err_password": f"パスワードは{PASSWORD_MIN_CHARS}文字以上、{PASSWORD_MAX_CHARS}文字以下で入力してください。",
        "err_display_name": f"表示名は{DISPLAY_NAME_MAX_CHARS}文字以内で、改行などは使えません。",
        "err_rate_limited": "試行の回数が多すぎます。{wait}ほど待ってから、もう一度お試しください。",
        "wait_seconds": "{n}秒",
        "wait_minutes": "{n}分",
        "err_unavailable": "ただいまサービスが一時的に利用できません。少し待ってから、もう一度お試しください。",
        "err_csrf": "ページの有効期限が切れました。再読み込みしてから、もう一度お試しください。",
        "err_unknown": "うまくいきませんでした。少し待ってから、もう一度お試しください。",
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
        "coaching_label": "Advice on how you said it",
        "verdict_ok": "Register OK",
        "verdict_too_casual": "Too casual",
        "verdict_rude": "Rude",
        "verdict_too_formal": "Too formal",
        "verdict_too_direct": "Too direct",
        "register_expected": "With this partner",
        "did_well": "What worked:",
        "to_change": "What to change:",
        "try_this": "Try this:",
        "nav_account": "Account",
        "nav_practice": "Back to practice",
        "account_title": "Account | Workplace Roleplay",
        "account_heading": "Your account",
        "account_tagline": "Keep your practice: create an account, log in or log out",
        "account_needs_js": "This page needs JavaScript: please turn it on in your browser.",
        "account_loading": "Loading…",
        "account_load_failed": "Your account could not be loaded. Please wait a moment and reload the page.",
        "who_heading": "Signed in as",
        "who_kind": "Type",
        "kind_guest": "Guest (not registered)",
        "kind_account": "Registered account",
        "display_name": "Display name",
        "email": "Email",
        "no_email": "none",
        "save_heading": "Create an account to keep your practice",
        "save_explain": (
            "You are practising as a guest. Creating an account keeps everything you have practised so far. "
            "Next time, log in with your email and password to carry on from any device or browser."
        ),
        "display_name_hint": f"The name shown on screen (at most {DISPLAY_NAME_MAX_CHARS} characters; optional).",
        "password_hint": f"At least {PASSWORD_MIN_CHARS} characters.",
        "create_account": "Create account",
        "login_heading": "Log in to an existing account",
        "login_explain": (
            "Already have an account? Log in here. What you practised as this guest does not move to that account "
            "(to keep it, create an account above first)."
        ),
        "password": "Password",
        "log_in": "Log in",
        "google_sign_in": "Sign in with Google",
        "google_explain": "You can also sign in with a Google account; your practice as a guest is kept.",
        "account_explain": (
            "Your practice is saved to this account. Log out and this browser carries on as a new guest."
        ),
        "log_out": "Log out",
        "sending": "Sending…",
        "upgraded": "Your account is ready. Everything you practised so far is kept.",
        "logged_in": "You are logged in.",
        "logged_out": "You are logged out. You can carry on practising as a new guest.",
        "err_wrong_credentials": "The email or the password is wrong.",
        "err_email_taken": "An account with this email already exists. Log in below instead.",
        "err_email": "Enter a valid email address (for example name@example.com).",
        "err_password": f"The password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters long.",
        "err_display_name": f"The display name can have at most {DISPLAY_NAME_MAX_CHARS} characters, no line breaks.",
        "err_rate_limited": "Too many attempts. Please wait {wait} and try again.",
        "wait_seconds": "{n} seconds",
        "wait_minutes": "{n} minutes",
        "err_unavailable": "The service is briefly unavailable. Please wait a moment and try again.",
        "err_csrf": "This page has expired. Reload it and try again.",
        "err_unknown": "That did not work. Please wait a moment and try again.",
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
