"""Rasa's own evaluations of the trained model, run by the engine's Python (3.10) in one process.

Three `rasa test` commands (two NLU sets and the dialogue stories) each imported TensorFlow, loaded the model and
drew plots nobody reads: about a minute and a half of a CI run. Here the model is loaded once and nothing is drawn.

    python tests/support/engine_evaluation.py MODEL OUT --nlu NAME=DATA [--nlu NAME=DATA ...] --stories DIR

writes what `rasa test nlu --successes` writes into OUT/NAME/ for each NLU set (intent_report.json,
VietnameseEntityExtractor_report.json, intent_successes.json, intent_errors.json, ...) and what `rasa test core`
writes into OUT/stories/ (story_report.json, failed_test_stories.yml).
"""

import argparse
import asyncio
from pathlib import Path

from rasa.core.agent import Agent
from rasa.core.test import test as test_stories
from rasa.nlu.test import run_evaluation


async def evaluate(model: str, out: Path, nlu_sets: list[str], stories: str) -> None:
    agent = Agent.load(model_path=model)
    for named in nlu_sets:
        name, data = named.split("=", 1)
        await run_evaluation(
            data, agent.processor, output_directory=str(out / name), successes=True, errors=True, disable_plotting=True
        )
    (out / "stories").mkdir(parents=True, exist_ok=True)
    await test_stories(stories, agent, out_directory=str(out / "stories"), disable_plotting=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("out", type=Path)
    parser.add_argument("--nlu", action="append", default=[], metavar="NAME=DATA")
    parser.add_argument("--stories", required=True)
    args = parser.parse_args()
    asyncio.run(evaluate(args.model, args.out, args.nlu, args.stories))


if __name__ == "__main__":
    main()
