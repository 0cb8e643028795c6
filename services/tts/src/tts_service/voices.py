"""The voices (voices.yaml) and the rule that gives every character a fixed voice per language.

`load_voice_book()` reads and checks the file once; `VoiceBook.table(provider, ja_engine)` is the
choice a running service makes (Gemini or offline, and which Japanese engine), and answers
"which voice speaks for this character in this language" the same way every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from workplace_content import Character

from .engines.base import VoiceSpec

VOICES_FILE = Path(__file__).parent / "voices.yaml"
GEMINI_ENGINE = "google:gemini-tts"
LANGUAGES = ("ja", "en")
JA_ENGINES = ("auto", "openjtalk", "kokoro")
Provider = Literal["offline", "google"]
Age = Literal["20s", "30s", "40s", "50s", "60s"]
Tone = Literal["bright", "calm", "firm", "gentle", "brisk", "warm"]
Gender = Literal["female", "male"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VoiceEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")
    language: Literal["ja", "en"]
    gender: Gender
    engine: Literal["offline:pyopenjtalk", "offline:kokoro", "offline:piper"]
    params: dict[str, float | str] = Field(default_factory=dict)
    description: str = Field(min_length=1)


class GeminiVoice(_Strict):
    name: str = Field(pattern=r"^[A-Z][a-z]+$")
    gender: Gender
    description: str = Field(min_length=1)


class Rule(_Strict):
    """Holds for a character whose traits are among those listed (a missing list: any)."""

    gender: Gender | None = None
    age: tuple[Age, ...] | None = None
    tone: tuple[Tone, ...] | None = None
    voice: str

    def holds(self, character: Character) -> bool:
        v = character.voice
        return (
            (self.gender is None or v.gender == self.gender)
            and (self.age is None or v.age in self.age)
            and (self.tone is None or v.tone in self.tone)
        )

    @property
    def unconditional(self) -> bool:
        return self.age is None and self.tone is None


class GeminiSection(_Strict):
    voices: tuple[GeminiVoice, ...]
    characters: dict[str, str]
    rules: tuple[Rule, ...]
    defaults: dict[Literal["ja", "en"], str]


class JaFemaleRules(_Strict):
    auto: tuple[Rule, ...]
    openjtalk: tuple[Rule, ...]
    kokoro: tuple[Rule, ...]


class JaRules(_Strict):
    male: tuple[Rule, ...]
    female: JaFemaleRules


class EnRules(_Strict):
    male: tuple[Rule, ...]
    female: tuple[Rule, ...]


class OfflineRules(_Strict):
    ja: JaRules
    en: EnRules


class Defaults(_Strict):
    ja: dict[Literal["auto", "openjtalk", "kokoro"], str]
    en: str


class VoicesFile(_Strict):
    voices: tuple[VoiceEntry, ...]
    gemini: GeminiSection
    rules: OfflineRules
    defaults: Defaults

    @model_validator(mode="after")
    def _consistent(self) -> VoicesFile:
        ids = [v.id for v in self.voices]
        if len(ids) != len(set(ids)):
            raise ValueError("a voice id is listed twice")
        by_id = {v.id: v for v in self.voices}
        gemini = {g.name: g for g in self.gemini.voices}
        if len(gemini) != len(self.gemini.voices):
            raise ValueError("a Gemini voice is listed twice")

        def check(rules: tuple[Rule, ...], language: str, gender: str, where: str, *, offline: bool) -> None:
            if not rules or not rules[-1].unconditional:
                raise ValueError(f"{where}: the last rule must have no conditions (a voice for anyone)")
            for rule in rules:
                if offline:
                    voice = by_id.get(rule.voice)
                    if voice is None or voice.language != language:
                        raise ValueError(f"{where}: {rule.voice} is not a {language} voice")
                    # English offline has one (male) voice; Japanese voices match the character.
                    if language == "ja" and voice.gender != gender:
                        raise ValueError(f"{where}: {rule.voice} is not a {gender} voice")
                elif rule.voice not in gemini:
                    raise ValueError(f"{where}: {rule.voice} is not a listed Gemini voice")

        ja, en = self.rules.ja, self.rules.en
        check(ja.male, "ja", "male", "rules.ja.male", offline=True)
        for engine in JA_ENGINES:
            check(getattr(ja.female, engine), "ja", "female", f"rules.ja.female.{engine}", offline=True)
        check(en.male, "en", "male", "rules.en.male", offline=True)
        check(en.female, "en", "female", "rules.en.female", offline=True)
        for gender in ("female", "male"):
            rules = tuple(r for r in self.gemini.rules if r.gender in (None, gender))
            check(rules, "", gender, f"gemini.rules ({gender})", offline=False)
        for character, name in self.gemini.characters.items():
            if name not in gemini:
                raise ValueError(f"gemini.characters.{character}: {name} is not a listed Gemini voice")
        for default in (*self.defaults.ja.values(), self.defaults.en):
            if default not in by_id:
                raise ValueError(f"defaults: unknown voice {default}")
        for name in self.gemini.defaults.values():
            if name not in gemini:
                raise ValueError(f"gemini.defaults: {name} is not a listed Gemini voice")
        return self


def gemini_voice_id(language: str, name: str) -> str:
    return f"{language}-gemini-{name.lower()}"


@dataclass(frozen=True)
class VoiceTable:
    """The voices of one configuration: provider (offline or google) and the Japanese engine."""

    book: VoiceBook
    provider: Provider
    ja_engine: str

    @property
    def voices(self) -> tuple[VoiceSpec, ...]:
        """What requests may name: every offline voice, and Gemini's when Gemini speaks."""
        if self.provider == "google":
            return self.book.offline + self.book.gemini
        return self.book.offline

    def voice(self, voice_id: str) -> VoiceSpec | None:
        spec = self.book.by_id.get(voice_id)
        if spec is None or (spec.engine == GEMINI_ENGINE and self.provider != "google"):
            return None
        return spec

    def for_character(self, character: Character, language: str) -> VoiceSpec:
        if self.provider == "google":
            return self.book.gemini_for(character, language)
        return self.book.offline_for(character, language, self.ja_engine)

    def offline_for(self, character: Character, language: str) -> VoiceSpec:
        """The character's voice when Gemini cannot speak."""
        return self.book.offline_for(character, language, self.ja_engine)

    def default(self, language: str) -> VoiceSpec:
        if self.provider == "google":
            return self.book.by_id[gemini_voice_id(language, self.book.file.gemini.defaults[_lang(language)])]
        return self.offline_default(language)

    def offline_default(self, language: str) -> VoiceSpec:
        defaults = self.book.file.defaults
        voice_id = defaults.en if language == "en" else defaults.ja[_ja_engine(self.ja_engine)]
        return self.book.by_id[voice_id]

    def engines(self) -> set[str]:
        """The engines this table's voices need (those to load at start)."""
        return {v.engine for v in self.voices}


def _lang(language: str) -> Literal["ja", "en"]:
    return "en" if language == "en" else "ja"


def _ja_engine(value: str) -> Literal["auto", "openjtalk", "kokoro"]:
    if value == "openjtalk":
        return "openjtalk"
    if value == "kokoro":
        return "kokoro"
    return "auto"


@dataclass(frozen=True)
class VoiceBook:
    file: VoicesFile
    offline: tuple[VoiceSpec, ...]
    gemini: tuple[VoiceSpec, ...]
    by_id: dict[str, VoiceSpec]

    @classmethod
    def from_file(cls, data: VoicesFile) -> VoiceBook:
        offline = tuple(
            VoiceSpec(
                id=v.id,
                language=v.language,
                gender=v.gender,
                engine=v.engine,
                params=dict(v.params),
                description=v.description,
            )
            for v in data.voices
        )
        gemini = tuple(
            VoiceSpec(
                id=gemini_voice_id(language, g.name),
                language=language,
                gender=g.gender,
                engine=GEMINI_ENGINE,
                params={"voice_name": g.name},
                description=f"Gemini {g.name} ({g.description})",
            )
            for language in LANGUAGES
            for g in data.gemini.voices
        )
        return cls(data, offline, gemini, {v.id: v for v in offline + gemini})

    def table(self, provider: Provider, ja_engine: str) -> VoiceTable:
        return VoiceTable(self, provider, ja_engine)

    def offline_for(self, character: Character, language: str, ja_engine: str) -> VoiceSpec:
        rules = self.file.rules
        gender = character.voice.gender
        if language == "en":
            chosen = rules.en.male if gender == "male" else rules.en.female
        elif gender == "male":
            chosen = rules.ja.male
        else:
            chosen = getattr(rules.ja.female, _ja_engine(ja_engine))
        return self.by_id[_first(chosen, character)]

    def gemini_for(self, character: Character, language: str) -> VoiceSpec:
        name = self.file.gemini.characters.get(character.id) or _first(self.file.gemini.rules, character)
        return self.by_id[gemini_voice_id(_lang(language), name)]


def _first(rules: tuple[Rule, ...], character: Character) -> str:
    for rule in rules:
        if rule.holds(character):
            return rule.voice
    raise LookupError(f"no voice rule holds for {character.id}")  # the file's check forbids it


@cache
def load_voice_book(path: Path = VOICES_FILE) -> VoiceBook:
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return VoiceBook.from_file(VoicesFile.model_validate(data))
