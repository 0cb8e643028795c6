"""Japanese register on MeCab/IPAdic tokens: the end of each clause (its predicate and the particles
after it) tells plain from polite; the rewrite conjugates the clause's last verb from its base form
and conjugation type, so 「送って」 becomes 「お送りいただけますか」 and 「終わった」 「終わりました」.

The rules (phrases, humble and honorific verbs, rude words, heavy keigo) are in register_rules.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_I_ROW = {"う": "い", "く": "き", "ぐ": "ぎ", "す": "し", "つ": "ち", "ぬ": "に", "ぶ": "び", "む": "み", "る": "り"}
_TE = {
    "う": "って",
    "つ": "って",
    "る": "って",
    "く": "いて",
    "ぐ": "いで",
    "す": "して",
    "ぬ": "んで",
    "ぶ": "んで",
    "む": "んで",
}

SENTENCE_END = frozenset("。．！？!?\n")
FINAL_PARTICLES = frozenset({"よ", "ね", "な", "わ", "さ", "ぞ", "ぜ", "の", "か", "っけ", "ってば", "もん", "じゃん"})
CONNECTIVES = {
    "けど": "が",
    "けれど": "が",
    "けれども": "が",
    "けども": "が",
    "から": "ので",
    "ので": "ので",
    "が": "が",
    "し": "し",
}
REQUEST_HELPERS = frozenset({"くれる", "もらえる", "もらう", "くださる", "ちょうだい"})
POLITE_BASES = frozenset({"ます", "です", "ござる", "ございます", "くださる", "いただける", "いただく"})


@dataclass(frozen=True)
class Tok:
    surface: str
    pos: str
    sub: str
    ctype: str
    cform: str
    base: str
    start: int
    end: int

    @property
    def is_verb(self) -> bool:
        return self.pos == "動詞"


def masu_stem(base: str, ctype: str) -> str:
    """連用形 (the stem before ます): 送る→送り, 見る→見, する→し, 来る→来, いらっしゃる→いらっしゃい."""
    if ctype.startswith("一段"):
        return base[:-1]
    if ctype.startswith("サ変"):
        return base[:-2] + "し" if base.endswith("する") else base[:-2] + "じ"
    if ctype.startswith("カ変"):
        return base[:-2] + ("来" if base.endswith("来る") else "き")
    if ctype == "五段・ラ行特殊":
        return base[:-1] + "い"
    if ctype.startswith("五段") and base[-1:] in _I_ROW:
        return base[:-1] + _I_ROW[base[-1]]
    return base


def te_form(base: str, ctype: str) -> str:
    """て形: 送る→送って, 押す→押して, 行く→行って, 見る→見て, する→して."""
    if ctype.startswith("五段"):
        if base.endswith(("行く", "いく")):
            return base[:-1] + "って"
        if ctype == "五段・ラ行特殊":
            return base[:-1] + "って"
        return base[:-1] + _TE.get(base[-1], base[-1] + "て")
    return masu_stem(base, ctype) + "て"


@dataclass
class Clause:
    tokens: list[Tok]  # the clause without its final particles, connective and punctuation
    particles: list[Tok]  # final particles (よ, ね, か, の, な…)
    connective: Tok | None  # けど, から, し… that ties it to the next clause
    punct: str  # what ended it: 。！？、 or ""
    sentence_end: bool
    text: str  # the clause as the learner wrote it (all of it)

    @property
    def question(self) -> bool:
        bases = [p.surface for p in self.particles]
        return self.punct in ("？", "?") or "か" in bases or "の" in bases or "っけ" in bases

    @property
    def kana(self) -> bool:  # 〜かな: wondering aloud
        bases = [p.surface for p in self.particles]
        return "か" in bases and "な" in bases[bases.index("か") :]


class JapaneseRegister:
    def __init__(self, rules: dict[str, Any]) -> None:
        from ..japanese_tagger import TAGGER_LOCK, shared_tagger

        self.rules = rules["ja"]
        self._tagger = shared_tagger()  # the emotion analyser's too: one tagger per process
        self._lock = TAGGER_LOCK
        self._phrases = [(m, p) for p in self.rules["phrases"] for m in p["match"]]
        self._phrases.sort(key=lambda item: -len(item[0]))
        self._rude = [(re.compile(r["regex"]) if "regex" in r else None, r) for r in self.rules["rude"]]

    # -- tokens ---------------------------------------------------------------------------------

    def tokens(self, text: str) -> list[Tok]:
        with self._lock:
            node = self._tagger.parseToNode(text)
            out: list[Tok] = []
            cursor = 0
            while node:
                if node.surface:
                    f = node.feature.split(",")
                    start = text.find(node.surface, cursor)
                    if start < 0:
                        start = cursor
                    cursor = start + len(node.surface)
                    base = f[6] if len(f) > 6 and f[6] != "*" else node.surface
                    out.append(Tok(node.surface, f[0], f[1], f[4], f[5], base, start, cursor))
                node = node.next
        return out

    def _replace_words(self, text: str, mapping: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
        """Replace whole-token spans (a key must start and end on token boundaries)."""
        changes: list[tuple[str, str]] = []
        for key in sorted(mapping, key=len, reverse=True):
            if key not in text:
                continue
            toks = self.tokens(text)
            starts = {t.start for t in toks}
            ends = {t.end for t in toks}
            pieces, i = [], 0
            for m in re.finditer(re.escape(key), text):
                if m.start() in starts and m.end() in ends:
                    pieces.append(text[i : m.start()] + mapping[key])
                    i = m.end()
                    changes.append((key, mapping[key]))
            text = "".join(pieces) + text[i:]
        return text, changes

    def _verb_form(self, phrase: str) -> tuple[str, Tok | None]:
        """A phrase ending in a verb (お休みをいただく, 失礼する): its text before the verb, and the verb."""
        toks = self.tokens(phrase)
        verbs = [t for t in toks if t.is_verb]
        if not verbs:
            return phrase, None
        last = verbs[-1]
        return phrase[: last.start], last

    def _polite_verb(self, phrase: str, ending: str) -> str:
        prefix, verb = self._verb_form(phrase)
        if verb is None:
            return phrase + "です" if ending == "ます" else phrase
        return prefix + masu_stem(verb.base, verb.ctype) + ending

    # -- clauses -------------------------------------------------------------------------------

    def clauses(self, text: str) -> list[Clause]:
        toks = self.tokens(text)
        for i, t in enumerate(toks):
            # IPAdic reads a clause-final いい (ちょっといい？) as 言う's 連用形: it is the adjective.
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if t.surface == "いい" and t.base in ("いう", "言う") and t.cform == "連用形":
                if nxt is None or nxt.pos in ("記号", "助詞"):
                    toks[i] = Tok("いい", "形容詞", "自立", "形容詞・イイ", "基本形", "いい", t.start, t.end)
        out: list[Clause] = []
        current: list[Tok] = []

        def close(punct: str, end_of_sentence: bool, connective: Tok | None = None) -> None:
            body = list(current)
            particles: list[Tok] = []
            while body and body[-1].pos == "助詞" and body[-1].surface in FINAL_PARTICLES and body[-1].sub != "格助詞":
                # の after a verb or adjective ends a question; after a noun it is 連体化 (会議の)
                if body[-1].surface == "の" and body[-1].sub != "終助詞":
                    break
                particles.insert(0, body.pop())
            start = current[0].start if current else 0
            end = (connective.end if connective else (current[-1].end if current else 0)) + len(punct)
            out.append(Clause(body, particles, connective, punct, end_of_sentence, text[start:end]))
            current.clear()

        for i, t in enumerate(toks):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if t.surface in SENTENCE_END or (t.pos == "記号" and t.sub == "句点"):
                if current:
                    close(t.surface, True)
                elif out:
                    out[-1].punct += t.surface
                    out[-1].text += t.surface
                continue
            if t.pos == "記号" and t.sub == "読点":
                if current:
                    close("、", False)
                continue
            if t.pos == "助詞" and t.sub == "接続助詞" and t.surface in CONNECTIVES and current:
                punct = ""
                if nxt is not None and nxt.pos == "記号" and nxt.sub == "読点":
                    punct = "、"
                close(punct, False, connective=t)
                continue
            current.append(t)
        if current:
            close("", True)
        # A 読点 that followed a connective was taken with it: drop the empty clause it leaves.
        return [c for c in out if c.tokens or c.particles or c.connective]

    # -- the check -----------------------------------------------------------------------------

    def check(
        self, text: str, level: str, partner: str = ""
    ) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]]:
        rules = self.rules
        strengths = self._strengths(text, level)
        self._who = {"boss": "上司", "senior": "先輩"}.get(partner, "先輩" if level == "senior" else "目上の人")

        # Rude, whoever the partner.
        rude_reasons: list[str] = []
        rude_better = ""
        starts = {t.start for t in self.tokens(text)}
        for pattern, rule in self._rude:
            hit = (
                # a match must start a word: あいにくその is not くそ
                any(m.start() in starts for m in pattern.finditer(text))
                if pattern is not None
                else any(t.base == rule["base"] for t in self.tokens(text))
            )
            if hit:
                rude_reasons.append(rule["why"])
                rude_better = rude_better or rule.get(f"better_{level}", "")
        for t in self.tokens(text):
            if t.is_verb and t.cform.startswith("命令") and t.base not in rules["imperative_ok"]:
                rude_reasons.append(f"「{t.surface}」は命令形で、相手に命令する言い方です。お願いの形にしましょう。")
        if rude_reasons:
            better = rude_better
            if not better and len(rude_reasons) == 1 and "命令形" in rude_reasons[0]:
                polite, _, _ = self._rewrite(text, "superior" if level == "superior" else "senior")
                better = self._finish(polite) if polite != text else ""
            return "rude", rude_reasons, better, [], []

        if level == "peer":
            return self._check_peer(text, strengths)

        # Casual towards a senior or a superior: contractions, casual words, phrases, plain endings.
        rewritten, changes, casual = self._rewrite(text, level)
        if casual:
            return "too_casual", self._explain(changes, level), self._finish(rewritten), strengths, changes
        # Polite in form but blunt: a refusal without a cushion, leave announced instead of asked for.
        direct = self._directness(text, level)
        if direct is not None:
            verdict, reasons, better, _, found = direct
            praise = self._refusal_praise(text)  # a cushion was there, but the word is still blunt
            return verdict, reasons, better, [s for s in strengths if s != praise], found
        return "ok", [], "", strengths, []

    def _check_peer(
        self, text: str, strengths: list[str]
    ) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]]:
        score = sum(w for marker, w in self.rules["formal_markers"].items() if marker in text)
        if score < 2:
            return "ok", [], "", strengths, []
        plain = self._plain_request(text)
        reason = (
            "同僚にここまでの敬語を使うと、かえって距離を感じさせます。"
            "ちょっとしたお願いは「〜てもらえますか」で十分です。"
        )
        return "too_formal", [reason], plain, [], [(text, plain)] if plain else []

    def _plain_request(self, text: str) -> str:
        """Heavy keigo said plainly to a peer: cushions dropped, 〜いただけますでしょうか → 〜てもらえますか."""
        for cushion in self.rules["formal_cushions"]:
            text = text.replace(cushion, "")
        plain_verbs: dict[str, str] = self.rules["plain_verbs"]
        ending = r"いただけ(?:ますでしょうか|ないでしょうか|ますか|ますと幸いです|れば幸いです)[。？?]?"
        m = re.search(r"(?:お|ご)([一-龥]+[ぁ-ん]{0,2})" + ending, text)
        if m:
            stem = m.group(1)
            if stem in plain_verbs:
                verb = plain_verbs[stem]
                _, tok = self._verb_form(verb)
                te = verb[: len(verb) - len(tok.base)] + te_form(tok.base, tok.ctype) if tok else verb + "して"
            else:
                toks = [t for t in self.tokens(stem + "ます") if t.is_verb]
                te = te_form(toks[0].base, toks[0].ctype) if toks else stem + "して"
            return (text[: m.start()] + te + "もらえますか？").strip()
        m = re.search(r"(て|で)" + ending, text)
        if m:
            return (text[: m.start()] + m.group(1) + "もらえますか？").strip()
        return text

    # -- directness (refusals and announced leave) ---------------------------------------------

    def _has_reason(self, text: str, toks: list[Tok]) -> bool:
        d = self.rules["directness"]
        if any(w in text for w in d["reason_words"]):
            return True
        return any(
            t.surface in d["reason_connectives"] and (t.sub == "接続助詞" or (t.surface == "ため" and t.pos == "名詞"))
            for t in toks
        )

    def _has_alternative(self, text: str, toks: list[Tok]) -> bool:
        d = self.rules["directness"]
        return any(w in text for w in d["alternative_words"]) or any(t.surface in d["alternative_tokens"] for t in toks)

    def _cushion(self, text: str) -> str:
        return next((c for c in self.rules["directness"]["cushions"] if c in text), "")

    def _refusal(self, text: str, clause: Clause) -> tuple[str, int, int, str] | None:
        """The refusal that ends a clause: (kind, start, end, soft form) with start and end in text.
        kind is noun (無理です), do (できません, やりません, 残業しません), verb (行けません) or phrase."""
        d = self.rules["directness"]
        toks = clause.tokens
        if not toks or clause.question or not clause.sentence_end and clause.connective is None:
            return None
        for phrase in d["refusal_phrases"]:
            at = clause.text.find(phrase)  # the clause's text starts at its first token
            if at >= 0:
                return "phrase", toks[0].start + at, toks[0].start + at + len(phrase), d["phrase_soft"]
        bases = [t.base for t in toks]
        # 無理です, 嫌です (ね and よ are in the clause's particles)
        if len(toks) >= 2 and bases[-1] == "です" and toks[-1].cform.startswith("基本形"):
            noun = toks[-2]
            liked = noun.surface in d["dislike_nouns"] and any(t.surface == "が" and t.pos == "助詞" for t in toks)
            if noun.pos == "名詞" and noun.surface in d["refusal_nouns"] and not liked:
                return "noun", noun.start, toks[-1].end, d["soft_ending"]
        # ...ません / ...ない (/ ないです): the verb, an optional potential suffix, then the negative.
        endings: dict[tuple[str, ...], int] = {("ます", "ん"): 2, ("ない", "です"): 2}
        tail = endings.get(tuple(bases[-2:]), 1 if bases[-1:] == ["ない"] else 0)
        if not tail:
            return None
        k = len(toks) - tail - 1
        potential = False
        while k > 0 and toks[k].pos == "動詞" and toks[k].sub == "接尾" and toks[k].base in ("られる", "れる"):
            potential = True
            k -= 1
        verb = toks[k]
        if verb.pos != "動詞":
            return None
        prev = toks[k - 1] if k > 0 else None
        subjects = {t.surface for i, t in enumerate(toks[:-1]) if toks[i + 1].surface == "が"}
        if subjects & set(d["report_subjects"]):
            return None  # パソコンが起動できません: a problem report
        if verb.base == "する" and prev is not None and prev.surface in d["refusal_suru_nouns"]:
            return "do", verb.start, toks[-1].end, d["soft_ending"]
        if verb.base not in d["refusal_verbs"] or verb.sub != "自立":
            return None
        if verb.base in d["needs_potential"] and not potential:
            return None
        if verb.base == "できる" and prev is not None and prev.surface in d["report_nouns"]:
            return None
        if verb.base in d["do_verbs"]:
            return "do", verb.start, toks[-1].end, d["soft_ending"]
        if potential:  # 出られません → 出られそうにありません
            suffix = toks[len(toks) - tail - 1]
            stem = text[verb.start : suffix.start] + masu_stem(suffix.base, suffix.ctype)
            return "verb", verb.start, toks[-1].end, stem + d["soft_potential"]
        if verb.ctype.startswith("一段"):  # 行けません, 手伝えません → 行けそうにありません
            return "verb", verb.start, toks[-1].end, masu_stem(verb.base, verb.ctype) + d["soft_potential"]
        return "verb", verb.start, toks[-1].end, verb.base + "のが" + d["soft_ending"]  # 手伝うのが難しいです

    def _announcement(self, text: str, clause: Clause) -> tuple[int, int, str] | None:
        """A clause that announces leave (明日休みます, 早退します, 有給を取ります): start, end and the request."""
        d = self.rules["directness"]
        toks = clause.tokens
        if not toks or clause.question or not clause.sentence_end:
            return None
        bases = [t.base for t in toks]
        if len(toks) < 2 or bases[-1] != "ます" or not toks[-1].cform.startswith("基本形"):
            return None
        verb = toks[-2]
        prev = toks[-3] if len(toks) >= 3 else None
        if verb.base in d["announce_verbs"] and verb.pos == "動詞":
            return verb.start, toks[-1].end, str(d["announce_verbs"][verb.base])
        if verb.base == "する" and prev is not None and prev.surface in d["announce_suru_nouns"]:
            return prev.start, toks[-1].end, str(d["announce_suru_nouns"][prev.surface])
        if verb.base in d["announce_take_verbs"] and prev is not None and prev.surface == "を" and len(toks) >= 4:
            noun = toks[-4]
            if noun.surface in d["announce_take_nouns"]:
                return prev.start, toks[-1].end, str(d["announce_take_request"])
        return None

    def _directness(self, text: str, level: str) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]] | None:
        """too_direct for a blunt refusal (to a superior or a senior) or announced leave (to a
        superior); None when there is none. Called after rude and too_casual found nothing."""
        d = self.rules["directness"]
        toks = self.tokens(text)
        cushion = self._cushion(text)
        reason = self._has_reason(text, toks)
        alternative = self._has_alternative(text, toks)
        who = getattr(self, "_who", "上司" if level == "superior" else "先輩")
        clauses = self.clauses(text)
        for clause in clauses:
            found = self._refusal(text, clause)
            if found is None:
                continue
            kind, start, end, soft = found
            if level == "superior":
                blunt = not cushion or kind == "noun"
            else:
                blunt = not (cushion or reason or alternative)
            if not blunt:
                continue
            said = text[start:end]
            quote = clause.text.rstrip("。．！!、")
            # What comes before the refusal in its sentence, less a cushion or a vocative.
            sentence_start = max(text.rfind(ch, 0, start) for ch in "。．！？!?\n") + 1
            before = text[sentence_start:start]
            if not re.sub(r"[、\s]", "", before.replace(cushion, "") if cushion else before):
                soft = d["soft_subject"] + soft
            elif before.endswith("を") and kind in ("do", "phrase"):
                before, start = before[:-1] + "は", start - 1
                soft = "は" + soft
            elif kind == "do" and toks and not before.endswith(("は", "が", "も", "、", "には", "では")):
                soft = "は" + soft  # 残業しません, 参加できません → 残業は難しいです
            better = text[:start] + soft + text[end:]
            if not cushion:
                lead = re.match(r"^[^、。]{0,10}(?:さん|部長|課長|係長|社長|先輩|様)、", better)
                at = lead.end() if lead else 0
                better = better[:at] + d["cushion_for"][level] + better[at:]
            better = self._finish(better)
            if not reason and not alternative:
                offer = next((v for k, v in d["alternatives"].items() if k in text), None)
                if offer:
                    better += offer[level if level in offer else "superior"]
            cushion_name = d["cushion_names"][level]
            missing = [
                name
                for name, present in (
                    (cushion_name, cushion),
                    ("理由", reason),
                    ("代案", alternative),
                )
                if not present
            ]
            if level == "superior" and cushion and kind == "noun":
                why = f"「{said}」は言い切りで強く響きます。{who}には「難しいです」とやわらげて伝えましょう。"
            elif level == "superior":
                why = (
                    f"「{quote}」と言い切ると、{who}への断りとして強く響きます。"
                    f"{'、'.join(missing)}を添えると、角を立てずに断れます。"
                )
            else:
                listed = "、".join(missing)
                why = f"「{quote}」だけだと、{who}にはそっけなく聞こえます。{listed}のどれかを添えましょう。"
            return "too_direct", [why], better, [], [(said, soft)]
        if level != "superior" or any(w in text for w in d["request_words"]) or (cushion and reason):
            return None
        if "ゆっくり" in text or not any(w in text for w in d["announce_time_words"]):
            return None
        for clause in clauses:
            announced = self._announcement(text, clause)
            if announced is None:
                continue
            start, end, request = announced
            said = text[start:end]
            quote = clause.text.rstrip("。．！!、")
            better = self._finish(text[:start] + request + text[end:])
            why = (
                f"「{quote}」は、休むことを決めて伝える言い方です。{who}には「{request}」のように、"
                "お願いする形で聞きましょう。理由もひと言添えると丁寧です。"
            )
            return "too_direct", [why], better, [], [(said, request)]
        return None

    def _refusal_praise(self, text: str) -> str:
        """Praise for a refusal said with a cushion ("" when the message refuses nothing or bluntly)."""
        d = self.rules["directness"]
        cushion = self._cushion(text)
        if not cushion:
            return ""
        refuses = any(w in text for w in d["soft_refusals"]) or any(
            self._refusal(text, c) is not None for c in self.clauses(text)
        )
        if not refuses:
            return ""
        toks = self.tokens(text)
        parts = [f"「{cushion}」とクッション言葉を添え"]
        if self._has_reason(text, toks):
            parts.append("理由を伝え")
        if self._has_alternative(text, toks):
            parts.append("代案も示し")
        parts[-1] += "て"
        return "、".join(parts) + "、角を立てずに断れています。"

    # -- rewriting -----------------------------------------------------------------------------

    def _rewrite(self, text: str, level: str) -> tuple[str, list[tuple[str, str]], bool]:
        """The message in the register of the level, the changes worth explaining, and whether
        anything in it is casual for the level (a plain ending, a casual word or phrase)."""
        rules = self.rules
        changes: list[tuple[str, str]] = []
        text, _ = self._replace_words(text, rules["colloquial"])  # read as the standard form
        marks = re.compile("|".join(rules["casual_marks"]))
        laughing = bool(marks.search(text))
        text = marks.sub("", text).strip()
        words = {
            k: v
            for k, v in rules["casual_words"].items()
            if level == "superior" or k not in rules["casual_ok_for_senior"]
        }
        surfaces = {t.surface for t in self.tokens(text)}
        casual = [w for w in words if w in surfaces and w not in rules["soft_words"]]
        flagged = bool(casual) or laughing
        pieces: list[str] = []
        clauses = self.clauses(text)
        for index, clause in enumerate(clauses):
            last = index == len(clauses) - 1
            new, plain, change = self._rewrite_clause(clause, level, last)
            flagged = flagged or plain
            if change is not None and plain:
                changes.append(change)
            pieces.append(new)
        # Casual words are replaced last, on the rewritten text (ちょっといい？ → 少しよろしいでしょうか).
        rewritten, found = self._replace_words("".join(pieces), words)
        changes += [c for c in found if c[0] in casual]
        return rewritten, changes, flagged

    def _phrase(self, core: str, level: str) -> tuple[str, dict[str, Any]] | None:
        for match, phrase in self._phrases:
            ends_with = (
                not phrase.get("whole") and core.endswith(match) and self._boundary(core, len(core) - len(match))
            )
            if core == match or ends_with:
                if level in phrase:
                    return core[: len(core) - len(match)] + phrase[level], phrase
        return None

    def _boundary(self, text: str, at: int) -> bool:
        return at in {t.start for t in self.tokens(text)}

    def _rewrite_clause(self, c: Clause, level: str, last: bool) -> tuple[str, bool, tuple[str, str] | None]:
        toks = c.tokens
        if not toks:
            return c.text, False, None
        core = "".join(t.surface for t in toks)
        lead = c.text[: c.text.find(core)] if core in c.text else ""
        tail_ne = "ね" if any(p.surface == "ね" for p in c.particles) and not c.question else ""

        def punct() -> str:
            if c.connective is not None:
                return "、"
            return c.punct if c.punct else ("。" if c.sentence_end else "")

        def finish(polite: str, plain: bool = True) -> tuple[str, bool, tuple[str, str]]:
            original = core + "".join(p.surface for p in c.particles) + (c.connective.surface if c.connective else "")
            return lead + polite + punct(), plain, (original, polite)

        phrase = self._phrase(core, level)
        if phrase is not None:
            said, _ = phrase
            if c.question and not said.endswith("か"):
                said += "か"
            return finish(self._connect(said, c), plain=True)  # a casual set phrase
        if any(t.base in POLITE_BASES or t.surface in ("です", "ます") for t in toks):
            return c.text, False, None
        if not c.sentence_end and c.connective is None:
            return c.text, False, None  # 〜て、 〜ず、 a topic before 、: not where a sentence ends

        # The predicate: the last content word and the verbs, auxiliaries and て after it.
        i = len(toks) - 1
        while i > 0 and self._is_aux(toks[i]):
            i -= 1
        head = toks[i]
        chain = toks[i:]
        before = toks[:i]
        if head.pos == "動詞" and head.base == "する" and before and before[-1].sub == "サ変接続":
            head, chain, before = before[-1], [before[-1], *chain], before[:-1]
        bases = [t.base for t in chain]

        polite: str | None
        if head.pos == "動詞" or (head.sub == "サ変接続" and len(chain) > 1 and chain[1].base == "する"):
            polite = self._verb_clause(c, level, last, before, head, chain)
        elif head.pos == "形容詞":
            polite = self._adjective_clause(c, level, before, head, chain)
        elif head.pos in ("名詞", "助詞") and (
            c.sentence_end and (c.question or "だ" in bases[1:]) or "だ" in bases[1:]
        ):
            polite = self._noun_clause(c, level, before, chain)
        else:
            return c.text, False, None
        if polite is None:
            return c.text, self._ends_plain(c), None
        new, _, change = finish(
            self._connect(polite, c) + tail_ne if c.connective is None else self._connect(polite, c)
        )
        return new, self._ends_plain(c), change

    @staticmethod
    def _ends_plain(c: Clause) -> bool:
        """A clause that ends a sentence in the plain form (行く, 行った, 行かない, 大丈夫だ, 〜んだけど),
        or ties on with けど after one. A plain clause before ので, から, が or し, and a clause that
        runs on (〜て、, 〜ず、, 連用形、) are normal in polite speech."""
        last = c.tokens[-1]
        if c.connective is not None:
            if c.connective.surface not in ("けど", "けれど", "けども", "けれども"):
                return last.base == "だ" and last.pos == "助動詞"
        elif not c.sentence_end:
            return False
        if last.pos == "助動詞":
            return (
                last.base in ("だ", "た", "ない", "たい", "う", "ん")
                and last.cform.startswith("基本形")
                or last.surface == "だろ"
            )
        if last.pos in ("動詞", "形容詞"):
            return last.cform.startswith("基本形") or last.cform.startswith("命令")
        if last.pos == "助詞" and last.surface in ("て", "で") and c.sentence_end:
            return True
        return c.sentence_end and c.question and last.pos in ("名詞", "助詞")

    def _connect(self, polite: str, c: Clause) -> str:
        if c.connective is None:
            return polite
        joined = CONNECTIVES[c.connective.surface]
        return polite + joined

    @staticmethod
    def _is_aux(t: Tok) -> bool:
        return (
            t.pos == "助動詞"
            or (t.pos == "動詞" and t.sub in ("非自立", "接尾"))
            or (t.pos == "助詞" and t.sub == "接続助詞" and t.surface in ("て", "で"))
            or (t.pos == "名詞" and t.sub == "非自立" and t.surface in ("ん", "の"))
            or (t.pos == "形容詞" and t.sub == "非自立")
        )

    def _object_particle(self, before: list[Tok], verb_base: str) -> str:
        """The particle the learner dropped between a noun and its verb (資料送って → 資料を)."""
        if not before:
            return ""
        prev = before[-1]
        if prev.pos == "名詞" and prev.sub not in ("副詞可能", "数", "接尾", "非自立", "代名詞"):
            return "に" if verb_base in self.rules["motion_verbs"] else "を"
        return ""

    def _verb_clause(
        self, c: Clause, level: str, last: bool, before: list[Tok], head: Tok, chain: list[Tok]
    ) -> str | None:
        rules = self.rules
        text_before = "".join(t.surface for t in before)
        suru_noun = head.pos == "名詞"
        verb_base = head.base + "する" if suru_noun else head.base
        after_head = chain[2:] if suru_noun else chain[1:]
        bases = [t.base for t in after_head]
        surfaces = [t.surface for t in after_head]
        first_person = any(t.base in ("私", "俺", "僕", "自分") for t in before)

        # Requests: 〜て, 〜てくれる？, 〜てもらえる？, 〜てほしい, 命令形.
        request = (bases == ["て"] and c.sentence_end) or head.cform.startswith("命令") and not bases
        if "て" in bases:
            k = bases.index("て")
            rest = bases[k + 1 :]
            if (
                rest
                and (rest[0] in REQUEST_HELPERS or rest[0] == "ほしい")
                and all(b in ("ない", "ん") for b in rest[1:])
            ):
                request = True
                bases, surfaces = bases[:k], surfaces[:k]
            elif rest == [] and c.sentence_end:
                request = True
                bases, surfaces = bases[:k], surfaces[:k]
        if request and not bases:
            return text_before + self._object_particle(before, verb_base) + self._request(head, verb_base, level)

        # Explanatory ん/の だ: keep the plain form, say it politely (〜んです, 〜のですが).
        explanatory = len(bases) >= 2 and bases[-2] in ("ん", "の") and bases[-1] == "だ"
        if explanatory:
            bases, surfaces = bases[:-2], surfaces[:-2]
        elif any(p.surface == "の" for p in c.particles) and level != "superior":
            # どうやるの？ → どうやるんですか (a senior); a superior gets the ます form with 尊敬語
            return text_before + "".join(t.surface for t in chain) + "んですか"

        # Which verb to conjugate: the learner's, or its keigo equivalent for a superior.
        group = head.surface if not suru_noun else head.surface + chain[1].surface
        tail_verbs = [t for t in after_head[: len(bases)] if t.is_verb]
        verb_phrase = verb_base
        particle = ""
        if level == "superior" and not tail_verbs:
            if c.question and not first_person and verb_base in rules["honorific"]:
                verb_phrase = rules["honorific"][verb_base]
                particle = self._object_particle(before, verb_base)
            elif not c.question and verb_base in rules["humble"]:
                verb_phrase = rules["humble"][verb_base]
            elif suru_noun and not c.question and head.surface in rules["itasu_nouns"]:
                verb_phrase = head.surface + "いたす"
        if verb_phrase == verb_base:
            # conjugate the last verb of the learner's own chain (出られない → 出られません)
            verbs = [t for t in after_head[: len(bases)] if t.is_verb]
            last_verb = verbs[-1] if verbs else (chain[1] if suru_noun else head)
            cut = after_head.index(last_verb) if last_verb in after_head else -1
            stem_prefix = group + "".join(surfaces[:cut]) if cut >= 0 else (head.surface if suru_noun else "")
            stem = stem_prefix + masu_stem(last_verb.base, last_verb.ctype)
            rest = bases[cut + 1 :] if cut >= 0 else bases
        else:
            prefix, verb_tok = self._verb_form(verb_phrase)
            stem = prefix + masu_stem(verb_tok.base, verb_tok.ctype) if verb_tok else verb_phrase
            rest = bases
            text_before = text_before + particle

        if not rest and not explanatory and not (last_or_head_cform := (chain[-1].cform or "")).startswith("基本形"):
            if not last_or_head_cform.startswith("命令"):
                return None
        ending = self._verb_ending(rest, c, explanatory)
        if ending is None:
            return None
        if explanatory:
            if rest == ["たい"]:
                plain = stem + "たい"  # お休みをいただきたい
            else:
                plain = "".join(t.surface for t in chain)
                plain = plain[: len(plain) - len("んだ")] if plain.endswith(("んだ", "のだ")) else plain
            polite = text_before + plain + ("のです" if c.connective is not None else "んです")
            if c.question:
                polite += "か"
            return polite
        if c.kana:
            return text_before + ("".join(t.surface for t in chain)) + "でしょうか"
        return text_before + stem + ending

    def _verb_ending(self, rest: list[str], c: Clause, explanatory: bool) -> str | None:
        q = "か" if c.question and not c.kana else ""
        if explanatory:
            return ""
        if not rest:
            return "ます" + q
        table = {
            ("た",): "ました",
            ("ない",): "ません",
            ("ん",): "ません",
            ("ない", "た"): "ませんでした",
            ("たい",): "たいです",
            ("う",): "ましょう",
        }
        ending = table.get(tuple(rest))
        if ending is None:
            return None
        if rest == ["ない"] and c.question:
            return "ませんか"  # 行かない？ → 行きませんか (an invitation)
        if rest == ["う"] and c.question:
            return "ましょうか"
        return ending + q

    def _request(self, head: Tok, verb_base: str, level: str) -> str:
        rules = self.rules
        if level == "superior":
            if verb_base in rules["special_requests"]:
                return str(rules["special_requests"][verb_base])
            if head.pos == "名詞":  # 確認して → ご確認いただけますか
                noun = head.surface
                if re.fullmatch(r"[一-龥]+", noun):
                    prefix = "お" if noun in rules["o_nouns"] else "ご"
                    return prefix + noun + "いただけますか"
                return noun + "していただけますか"
            if verb_base in rules["o_itadaku"]:
                return "お" + masu_stem(head.base, head.ctype) + "いただけますか"
        if head.pos == "名詞":
            return head.surface + "していただけますか"
        return te_form(head.base, head.ctype) + "いただけますか"

    def _adjective_clause(self, c: Clause, level: str, before: list[Tok], head: Tok, chain: list[Tok]) -> str | None:
        text_before = "".join(t.surface for t in before)
        bases = [t.base for t in chain[1:]]
        adjective = head.surface
        if head.base in ("いい", "よい") and level == "superior":
            adjective = "よろしい"
        if c.kana or (c.question and head.base in ("いい", "よい")):
            return text_before + adjective + ("でしょうか" if level == "superior" or c.kana else "ですか")
        q = "か" if c.question else ""
        if head.base == "ない" and not bases:
            return text_before + "ありません" + q
        if c.connective is not None and c.connective.surface in ("から", "ので"):
            return text_before + "".join(t.surface for t in chain)  # 忙しいから → 忙しいので
        if not bases:
            return text_before + adjective + "です" + q
        if bases == ["た"]:
            return text_before + "".join(t.surface for t in chain) + "です" + q
        return None

    def _noun_clause(self, c: Clause, level: str, before: list[Tok], chain: list[Tok]) -> str | None:
        bases = [t.base for t in chain[1:]]
        surfaces = [t.surface for t in chain[1:]]
        stem = "".join(t.surface for t in before) + chain[0].surface
        stem = stem.replace("って", "は")
        q = "か" if c.question else ""
        if c.kana:
            return stem + "でしょうか"
        if not bases or bases == ["だ"] and surfaces == ["だ"]:
            return stem + "です" + q
        if bases == ["だ", "た"]:
            return stem + "でした" + q
        if bases in (["だ", "ない"], ["で", "は", "ない"]):
            return stem + "ではありません" + q
        return None

    # -- explanations --------------------------------------------------------------------------

    def _explain(self, changes: list[tuple[str, str]], level: str) -> list[str]:
        reasons: list[str] = []
        phrases = {m: p for p in self.rules["phrases"] for m in p["match"]}
        who = getattr(self, "_who", "上司" if level == "superior" else "先輩")
        words = self.rules["casual_words"]
        for original, polite in changes:
            for casual, neutral in words.items():  # the explanation shows the words of the suggestion
                if casual in polite and casual not in ("これ",):
                    polite = polite.replace(casual, neutral)
            why = next(
                (
                    phrases[m]["why"]
                    for m in sorted(phrases, key=len, reverse=True)
                    if original.startswith(m) or original.endswith(m)
                ),
                None,
            )
            if why and why not in reasons:
                reasons.append(why)
                continue
            if "いただけますか" in polite:
                reasons.append(
                    f"「{original}」は指示に聞こえます。{who}へのお願いは「{polite}」のように、依頼の形にしましょう。"
                )
            elif original in self.rules["casual_words"]:
                reasons.append(f"「{original}」はくだけた言葉です。{who}には「{polite}」と言いましょう。")
            else:
                reasons.append(
                    f"「{original}」は友達どうしの言い方です。{who}には「{polite}」のように、です・ますで話しましょう。"
                )
        if not reasons:
            reasons.append(f"くだけた言い方が混じっています。{who}には、です・ます で話しましょう。")
        return reasons

    def _finish(self, text: str) -> str:
        text = text.strip().rstrip("、")
        if text and text[-1] not in "。！？!?":
            text += "。"
        text = re.sub(r"(のですが)[。]$", r"\1、よろしいでしょうか。", text)
        return text

    def _strengths(self, text: str, level: str) -> list[str]:
        found = [s for s in self.rules["keigo_signs"] if s in text]
        out: list[str] = []
        praise = self._refusal_praise(text)
        if praise:
            out.append(praise)
        if found and level != "peer":
            out.append("敬語を使って、相手への敬意を示せています。")
        elif re.search(r"(です|ます|でした|ました|ません|ましょう)(か|ね|よ)?[。！？!?]?$", text):
            out.append("です・ます調で、丁寧に話せています。")
        elif level == "peer":
            out.append("同僚らしい、気さくで自然な話し方です。")
        if re.search(r"ありがと|感謝|助かり", text):
            out.append("感謝の気持ちを言葉にできています。")
        if re.search(r"申し訳|すみません|失礼", text):
            out.append("お詫びやひと言の気遣いを添えられています。")
        return out
