"""English register: directness (bare commands, "I want", "I need you to"), blunt refusals, slang,
courtesy markers and hedges, over-formality to a peer, rudeness. Sentence by sentence; the rewrite
keeps the learner's words and wraps them: "Send me the file" → "Could you send me the file when you
have a moment?". Word lists are in register_rules.yaml."""

from __future__ import annotations

import re
from typing import Any

_SENTENCES = re.compile(r"[^.!?]+[.!?]*")
_VOCATIVE = re.compile(r"^(?:(?:hey|hi|ok|okay|so|um|uh)\b,?\s+)?(?:[A-Z][a-z]+,\s+)?", re.IGNORECASE)
_TIME_WORDS = re.compile(
    r"\b(minute|moment|second|today|tonight|tomorrow|by|before|after|when|asap|now|later|monday|tuesday|wednesday|thursday|friday|week|morning|afternoon|evening)\b",
    re.IGNORECASE,
)


# Demands that sound like orders to a manager: the request to make instead, and why.
_DEMANDS_TO_A_MANAGER: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"^I need you to (.+)$", re.IGNORECASE),
        "Could you {} when you have a moment?",
        '"I need you to…" sounds like an order to a manager; ask with "Could you…?".',
    ),
    (
        re.compile(r"^I want to (.+)$", re.IGNORECASE),
        "I'd like to {}, if that's all right.",
        '"I want…" sounds demanding to a manager; say "I\'d like to…".',
    ),
    (
        re.compile(r"^I want (.+)$", re.IGNORECASE),
        "Could I have {}?",
        '"I want…" sounds demanding to a manager; ask "Could I have…?".',
    ),
)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _lower_first(text: str) -> str:
    if text.startswith("I ") or text.startswith("I'") or text == "I":
        return text
    return text[:1].lower() + text[1:] if text else text


class EnglishRegister:
    def __init__(self, rules: dict[str, Any]) -> None:
        self.rules = rules["en"]
        self._rude = [(re.compile(r["regex"], re.IGNORECASE), r["why"]) for r in self.rules["rude"]]
        self._slang = [
            (re.compile(r"\b" + re.escape(word) + r"\b", re.IGNORECASE), word, repl)
            for word, repl in self.rules["slang"].items()
        ]
        self._imperatives = frozenset(self.rules["imperative_verbs"])
        self._interjections = re.compile(
            r"^(" + "|".join(map(re.escape, self.rules["interjections"])) + r")\b[,!.]*\s*", re.IGNORECASE
        )
        self._sarcasm = [re.compile(p, re.IGNORECASE) for p in self.rules["sarcasm"]]
        self._formal = [(re.compile(k, re.IGNORECASE), w) for k, w in self.rules["formal_markers"].items()]
        self._direct = self.rules["directness"]
        self._refusal_re = re.compile(self._direct["refusal"], re.IGNORECASE)
        self._announcements = [(re.compile(p, re.IGNORECASE), t) for p, t in self._direct["announcements"]]

    def check(
        self, text: str, level: str, partner: str = ""
    ) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]]:
        lower = text.lower()
        strengths = self._strengths(lower, level, text)
        rude = [why for pattern, why in self._rude if pattern.search(text)]
        if rude:
            return "rude", rude, "", [], []
        if level == "peer":
            score = sum(w for pattern, w in self._formal if pattern.search(text))
            if score >= 2:
                plain = self._plain(text)
                reason = (
                    "This is much more formal than a teammate expects; say it simply, as you would to a friend at work."
                )
                return "too_formal", [reason], plain, [], [(text, plain)]
            return "ok", [], "", strengths, []

        reasons: list[str] = []
        changes: list[tuple[str, str]] = []
        out: list[str] = []
        soften_next = False
        for raw in _SENTENCES.findall(text):
            sentence = raw.strip()
            if not sentence:
                continue
            new, why, soften_next = self._sentence(sentence, level, soften_next)
            if why:
                reasons.append(why)
                changes.append((sentence, new))
            if new:
                out.append(new)
        if reasons:
            return "too_casual", reasons, " ".join(out), strengths, changes
        # Polite enough in words but blunt: a refusal without a softener, a day off announced.
        direct = self._directness(text, level)
        if direct is not None:
            verdict, advice, better, _, found = direct
            return verdict, advice, better, strengths, found
        return "ok", [], "", strengths, []

    def _sentence(self, sentence: str, level: str, soften: bool) -> tuple[str, str, bool]:
        """(new sentence, why it changed or "", whether the next sentence should be softened)."""
        body = sentence.rstrip(".!? ")
        end = sentence[len(body) :].strip() or "."
        words = body.lower().split()
        why = ""
        superior = level == "superior"

        # "Nope," / "Nah," before the refusal is slang: soften the refusal itself. (A plain "No," is
        # direct rather than casual: _directness coaches it.)
        if superior and words and words[0].strip(",.!") in ("nope", "nah"):
            rest = re.sub(r"^(nope|nah)\b[,.]?\s*", "", body, flags=re.IGNORECASE)
            if not rest:
                return "", '"Nope" is slang and sounds curt to a manager; soften the refusal ("I\'m afraid…").', True
            body, soften = rest, True
            why = '"Nope" is slang and sounds curt to a manager; soften the refusal ("I\'m afraid…").'
            words = body.lower().split()

        if soften:
            core = re.sub(r"^can't\b", "I can't", body, flags=re.IGNORECASE)
            core = re.sub(r"^cannot\b", "I cannot", core, flags=re.IGNORECASE)
            body = "I'm afraid " + _lower_first(core)
            return _cap(body) + (end if end != "?" else "."), why or 'Soften a refusal with "I\'m afraid…".', False

        if superior and any(p.search(body) for p in self._sarcasm):
            why = "Sarcasm is easily misread by a manager; say plainly what the problem is."
            return _cap(body) + end, why, False
        if superior and self._interjections.match(body):
            body = self._interjections.sub("", body)
            why = 'Exclamations like "Wow" or "Yay" are fine with teammates but casual for a manager.'
            if not body:
                return "", why, False
        if superior:
            new, slang_why = self._slang_out(body)
            if slang_why:
                body, why = new, slang_why
            if re.match(r"^(hey|yo)\b,?\s*", body, re.IGNORECASE):
                body = re.sub(r"^(hey|yo)\b,?\s*", "", body, flags=re.IGNORECASE)
                why = why or '"Hey" is too casual for a manager; start with their name or "Excuse me".'
            m = re.match(r"^want to (.+)$", body, re.IGNORECASE)
            if m and end == "?":
                return (
                    "Would you like to " + m.group(1) + "?",
                    why or 'Invite politely with "Would you like to…?".',
                    False,
                )

        lead = _VOCATIVE.match(body)
        vocative = body[: lead.end()] if lead else ""
        core = body[len(vocative) :]
        first = core.split()[0].lower() if core.split() else ""
        just = first == "just"
        if just:
            core = core.split(" ", 1)[1] if " " in core else ""
            first = core.split()[0].lower() if core.split() else ""
        has_please = "please" in core.lower()
        if first in self._imperatives and not has_please and end != "?" and not core.lower().startswith("let's"):
            extra = (
                "" if (_TIME_WORDS.search(core) or not superior or len(core.split()) > 6) else " when you have a moment"
            )
            name = re.sub(r"^(hey|hi|ok|okay|so|um|uh)\b,?\s*", "", vocative, flags=re.IGNORECASE)
            new = (name + "could you " if name else "Could you ") + _lower_first(core) + extra + "?"
            who = "a manager" if superior else "a senior colleague"
            return new, f'A bare command sounds like an order to {who}; ask with "Could you…?".', False

        if superior:
            for pattern, template, reason in _DEMANDS_TO_A_MANAGER:
                m = pattern.match(body)
                if m:
                    return template.format(m.group(1)), reason, False
        return _cap(body) + end, why, False

    # -- directness (refusals and announced leave) ---------------------------------------------

    def _found(self, lower: str, key: str) -> str:
        return next((w for w in self._direct[key] if w in lower), "")

    def _refusal(self, core: str) -> bool:
        m = self._refusal_re.match(core)
        if not m:
            return False
        rest = core[m.end() :].strip().lower()
        if any(c in f" {rest} " for c in self._direct["conditions"]):
            return False
        return not any(rest.startswith(x) for x in self._direct["not_refusals"])

    def _directness(self, text: str, level: str) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]] | None:
        """too_direct for a blunt refusal (to a manager or a senior) or a day off announced to a
        manager; None when there is none. Called after rude and too_casual found nothing."""
        d = self._direct
        lower = text.lower()
        cushion, reason, alternative = (
            self._found(lower, "cushions"),
            bool(self._found(lower, "reasons")),
            bool(self._found(lower, "alternatives")),
        )
        sentences = [s.strip() for s in _SENTENCES.findall(text) if s.strip()]
        superior = level == "superior"
        for index, sentence in enumerate(sentences):
            body = sentence.rstrip(".!? ")
            if "?" in sentence[len(body) :]:
                continue
            bare_no = re.match(r"^no\b[,.!]?\s*", body, re.IGNORECASE)
            rest = body[bare_no.end() :] if bare_no else body
            lead = _VOCATIVE.match(rest)
            name = rest[: lead.end()] if lead else ""
            name = re.sub(r"^(hey|hi|ok|okay|so|um|uh)\b,?\s*", "", name, flags=re.IGNORECASE)
            core = rest[lead.end() if lead else 0 :]
            if bare_no and not core:
                following = sentences[index + 1] if index + 1 < len(sentences) else ""
                if following and self._refusal(_VOCATIVE.sub("", following.rstrip(".!? "), count=1)):
                    continue  # "No. I can't …": coach the refusal that follows
            elif not self._refusal(core):
                continue
            if bool(cushion) if superior else bool(cushion or reason or alternative):
                return None
            soft = core
            for pattern, repl in d["soften"]:
                if re.match(pattern, soft, re.IGNORECASE):
                    soft = re.sub(pattern, repl, soft, count=1, flags=re.IGNORECASE)
                    break
            soft = soft or "I can't"
            new = name + d["cushion_for"][level] + _lower_first(soft) + "."
            out = [s for i, s in enumerate(sentences[:index]) if not re.fullmatch(r"no[.!]*", s, re.IGNORECASE)]
            out += [new, *sentences[index + 1 :]]
            if not reason and not alternative:
                out.append(next((v for k, v in d["offers"].items() if k and k in lower), d["offers"][""]))
            said_no = index > 0 and re.fullmatch(r"no[.!]*", sentences[index - 1], re.IGNORECASE)
            quote = (sentences[index - 1] + " " if said_no else "") + sentence.rstrip()
            if superior:
                missing = [
                    item
                    for item, present in (
                        ('a softener ("I\'m afraid…", "I\'m sorry, but…")', cushion),
                        ("a reason", reason),
                        ("an alternative", alternative),
                    )
                    if not present
                ]
                listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
                why = f'"{quote}" on its own sounds blunt to a manager; add {listed} so the refusal is easy to accept.'
            else:
                why = f'"{quote}" on its own sounds curt; add a "sorry", a reason or an alternative.'
            return "too_direct", [why], " ".join(out), [], [(sentence, new)]
        if not superior or self._found(lower, "requests") or (cushion and reason):
            return None
        for index, sentence in enumerate(sentences):
            body = sentence.rstrip(".!? ")
            if "?" in sentence[len(body) :]:
                continue
            for pattern, template in self._announcements:
                m = pattern.match(body)
                if not m:
                    continue
                request = template
                for k, group in enumerate(m.groups(), start=1):
                    request = request.replace("{" + str(k) + "}", group or "")
                request = _cap(request)
                out = [*sentences[:index], request, *sentences[index + 1 :]]
                why = f'"{sentence}" announces your time off; ask your manager instead ("{request}").'
                return "too_direct", [why], " ".join(out), [], [(sentence, request)]
        return None

    def _refusal_praise(self, text: str) -> str:
        lower = text.lower()
        cushion = self._found(lower, "cushions")
        if not cushion:
            return ""
        cores = [_VOCATIVE.sub("", s.strip()) for s in _SENTENCES.findall(text)]
        if not (self._found(lower, "soft_refusals") or any(self._refusal(c) for c in cores)):
            return ""
        at = lower.index(cushion)
        parts = [f'softened the refusal with "{text[at : at + len(cushion)]}"']
        if self._found(lower, "reasons"):
            parts.append("gave a reason")
        if self._found(lower, "alternatives"):
            parts.append("offered an alternative")
        said = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"You {said}, so it is easy to accept."

    def _slang_out(self, body: str) -> tuple[str, str]:
        found = []
        for pattern, word, repl in self._slang:
            if pattern.search(body):
                found.append(word)
                body = pattern.sub(repl, body)
        if not found:
            return body, ""
        return _cap(
            body.strip()
        ), f'"{found[0]}" is too casual for a manager or a client; say "{self.rules["slang"][found[0]]}".'

    def _plain(self, text: str) -> str:
        out = text
        for pattern, repl in self.rules["plain_rewrites"]:
            out = re.sub(pattern, repl, out, flags=re.IGNORECASE)
        out = _cap(out.strip())
        if re.match(r"^(could you|would you like to|can you)\b", out, re.IGNORECASE):
            out = out.rstrip(".!? ") + "?"
        return out

    def _strengths(self, lower: str, level: str, text: str = "") -> list[str]:
        out: list[str] = []
        praise = self._refusal_praise(text or lower)
        if praise:
            out.append(praise)
        markers = [m for m in self.rules["courtesy"] if m in lower]
        if markers:
            out.append(f'You used courtesy markers ("{markers[0]}"), which make your message easy to say yes to.')
        hedges = [h for h in self.rules["hedges"] if h in lower]
        if hedges:
            out.append(f'Softening with "{hedges[0]}" keeps the tone considerate.')
        if level == "peer" and not markers:
            out.append("A relaxed, friendly tone suits a teammate.")
        return out
