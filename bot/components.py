"""Custom Rasa NLU components for Vietnamese (engine environment; named in config.yml).

- `VietnameseTokenizer`: words with offsets into the typed text, whose `text` is the canonical form (NFC, tone
  marks in one place, teencode expanded) and whose `lemma` is that form without diacritics. Featurizers reading
  the lemma see "khong co" and "không có" and "ko có" as the same words.
- `VietnameseEntityExtractor`: symptoms, temperatures, days/times, test results and vaccine doses found by the
  rules in `bot.vnparse`, which the dialogue's answer parsing shares.
- `NotUnderstood`: nonsense to the not-understood path (`nlu_fallback`): a message whose words are mostly neither
  words of the training data nor Vietnamese syllables ("asdfghjkl", "今天天气很好", "lorem ipsum"), a link or code,
  and whatever the classifier calls `out_of_scope` (off-topic chat, trained on examples of its own). The classifier
  alone is confident on gibberish, so no confidence threshold can tell it apart. A message that answers something
  ("bữa qua") is never off-topic: it keeps the classifier's likeliest other intent.
- `EmergencyNeedsWords`: the classifier's `emergency` stands only on words of danger (an urgent symptom, a call for
  help); without them the next intent of the ranking is taken. A false emergency raises an urgent alert and stops
  the questions, and the classifier gave it to plain answers ("tối qua ạ").
"""

from __future__ import annotations

import json
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.vnparse import find_all, names_an_emergency
from bot.vntext import Word, is_syllable, leading_yes_no, words, yes_no


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(Tokenizer):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @classmethod
    def create(
        cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, context: ExecutionContext
    ) -> VietnameseTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        tokens = [Token(w.canonical, w.start, lemma=w.folded, end=w.end) for w in words(text, split_expansions=False)]
        return self._apply_token_pattern(tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class VietnameseEntityExtractor(GraphComponent, EntityExtractorMixin):
    @classmethod
    def create(
        cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, context: ExecutionContext
    ) -> VietnameseEntityExtractor:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if (message.get(INTENT) or {}).get("name") in _NOT_ANSWERS:
                continue  # "giá vàng hôm nay", off-topic: its days and numbers answer nothing
            found = [
                {
                    ENTITY_ATTRIBUTE_TYPE: f.entity,
                    ENTITY_ATTRIBUTE_START: f.start,
                    ENTITY_ATTRIBUTE_END: f.end,
                    ENTITY_ATTRIBUTE_VALUE: f.value,
                }
                for f in find_all(text)
            ]
            message.set(ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name(found), add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class EmergencyNeedsWords(GraphComponent):
    @classmethod
    def create(
        cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, context: ExecutionContext
    ) -> EmergencyNeedsWords:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get("name") != "emergency" or names_an_emergency(message.get(TEXT) or ""):
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != "emergency"]
            if ranking:
                message.set(INTENT, ranking[0], add_to_output=True)
                message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages


NOT_UNDERSTOOD = "nlu_fallback"
OFF_TOPIC = "out_of_scope"
_NOT_ANSWERS = {OFF_TOPIC, NOT_UNDERSTOOD}


_MASHED = re.compile(r"(\w)\1{3,}")
_NOT_WORDS = re.compile(r"https?://|www\.|\w\.(com|vn|net|ly)\b|^\s*[{<]")


def _answers_something(text: str) -> bool:
    """A button's payload, or words that answer a question: a symptom, a temperature, a result, doses, a yes or no
    said first (or in a few words), or a day that is most of the message ("bữa qua"; not "giá vàng hôm nay")."""
    if text.startswith("/") or leading_yes_no(text) is not None:
        return True
    ws, found = words(text), find_all(text)
    if any(f.entity != "time" for f in found) or (yes_no(text) is not None and len(ws) <= 4):
        return True
    said_as_days = sum(1 for w in ws if any(f.start <= w.start < f.end for f in found))
    return bool(ws) and said_as_days * 2 >= len(ws)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class NotUnderstood(GraphComponent):
    VOCABULARY_FILE = "vocabulary.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # under 60 % of the words known and nothing an answer says: nonsense (tests/devset/nlu_dev_nonsense.yml)
        return {"min_known_share": 0.6}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or set()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NotUnderstood:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> NotUnderstood:
        with model_storage.read_from(resource) as path:
            vocabulary = set(json.loads((path / cls.VOCABULARY_FILE).read_text(encoding="utf-8")))
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m.get(TEXT) or "" for m in training_data.intent_examples if m.get(INTENT) != OFF_TOPIC]
        self.vocabulary = {w.folded for text in examples for w in words(text)}
        with self._model_storage.write_to(self._resource) as path:
            (path / self.VOCABULARY_FILE).write_text(json.dumps(sorted(self.vocabulary)), encoding="utf-8")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            text = message.get(TEXT) or ""
            if _answers_something(text):
                if intent.get("name") == OFF_TOPIC:  # "bữa qua" is a day, however it was heard
                    self._understood(message, text)
                continue
            if intent.get("name") == OFF_TOPIC or self._nonsense(text):
                # First in the ranking too, as the FallbackClassifier puts it: `rasa test nlu` then scores the
                # classifier's own intent (it undoes fallbacks), and the dialogue sees nlu_fallback.
                fallback = {"name": NOT_UNDERSTOOD, "confidence": intent.get("confidence", 1.0)}
                message.set(INTENT, fallback, add_to_output=True)
                ranking = [fallback, *(message.get(INTENT_RANKING_KEY) or [])]
                message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    @staticmethod
    def _understood(message: Message, text: str) -> None:
        """The classifier's likeliest intent that is an answer; never an emergency without words of danger (its
        veto came earlier: "Quảng Nam, giờ nhập vào Đà Nẵng" once became an urgent alert here)."""
        emergency = names_an_emergency(text)
        ranking = [
            r
            for r in message.get(INTENT_RANKING_KEY) or []
            if r.get("name") not in _NOT_ANSWERS and (emergency or r.get("name") != "emergency")
        ]
        ranking.sort(key=lambda r: -r.get("confidence", 0.0))
        message.set(INTENT, ranking[0] if ranking else {"name": "inform", "confidence": 1.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    def _known(self, word: Word) -> bool:
        if _MASHED.search(word.text.lower()):
            return False  # "aaaaaaa", "kkkkkk": keys held down, though their letters fold to a syllable
        if any(c.isdecimal() for c in word.folded):
            return len(word.folded) <= 5  # 38, 38,5, 20/6; not 1234567
        return word.folded in self.vocabulary or is_syllable(word.folded)

    def _nonsense(self, text: str) -> bool:
        if _NOT_WORDS.search(text):
            return True  # a link or code is never an answer
        ws = words(text)
        if not ws:
            return False  # nothing typed (an emoji: read by the dialogue)
        known = sum(self._known(w) for w in ws)
        return known / len(ws) < self._config["min_known_share"]
