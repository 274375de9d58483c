"""Custom Rasa NLU components for Vietnamese (engine environment; named in config.yml).

- `VietnameseTokenizer`: words with offsets into the typed text, whose `text` is the canonical form (NFC, tone
  marks in one place, teencode expanded) and whose `lemma` is that form without diacritics. Featurizers reading
  the lemma see "khong co" and "không có" and "ko có" as the same words.
- `VietnameseEntityExtractor`: symptoms, temperatures, days/times, test results and vaccine doses found by the
  rules in `bot.vnparse`, which the dialogue's answer parsing shares.
- `EmergencyNeedsWords`: the classifier's `emergency` stands only on words of danger (an urgent symptom, a call for
  help); without them the next intent of the ranking is taken. A false emergency raises an urgent alert and stops
  the questions, and the classifier gave it to plain answers ("tối qua ạ").
"""

from __future__ import annotations

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
from bot.vntext import words


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
