"""Agent benchmark: local-backend answer latency (warm), cold start of `mopsbot ask`, openai first-turn prompt size.

    .venv/bin/python benchmarks/bench_agent.py [--questions 60] [--cold-runs 3]

Needs the knowledge index (`mopsbot knowledge ingest`, done by `make demo`). Prompt size counts the system prompt
plus the tool schemas with the cl100k tokenizer (tiktoken, as llama-index ships it); goal <= 2,500 tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mopsbot.agent.factory import build_agent
from mopsbot.agent.history import count_tokens
from mopsbot.agent.prompts import system_prompt
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.knowledge.evaluate import load_cases
from mopsbot.tools.builtin import builtin_registry

REPO = Path(__file__).resolve().parents[1]
CALLER = CallerContext("U07SC0005", "C07MKTG001", "public")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()

    registry = builtin_registry()
    prompt = system_prompt(registry, CALLER)
    schemas = json.dumps(registry.schemas())
    tokens = count_tokens(prompt) + count_tokens(schemas)
    print(
        f"openai first-turn prompt: {tokens} tokens (system {count_tokens(prompt)} + tools {count_tokens(schemas)}) "
        f"for {len(registry)} tools; goal <= 2,500 -> {tokens / 2500:.2f} of budget"
    )

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), workspace=REPO, chroma_path=REPO / "var" / "chroma")
        agent = build_agent(settings, backend="local")
        agent.knowledge.index.ingest([settings.knowledge_dir])
        questions = [c.question for c in load_cases(REPO / "evals" / "retrieval" / "questions.yaml")]
        agent.run_turn("warm up: what is our webinar SOP?", CALLER)
        times = []
        for i in range(args.questions):
            start = time.perf_counter()
            agent.run_turn(questions[i % len(questions)], CALLER, f"bench-{i}")
            times.append((time.perf_counter() - start) * 1e3)
        print(
            f"local backend, warm: p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms "
            f"over {len(times)} questions"
        )

        cold = []
        env_db = {
            "MOPSBOT_DATA_DIR": tmp,
            "MOPSBOT_CHROMA_PATH": str(REPO / "var" / "chroma"),
            "MOPSBOT_WORKSPACE": str(REPO),
        }
        for _ in range(args.cold_runs):
            start = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).with_name("mopsbot")), "ask", "what's our SOP for a webinar?", "--json"],
                check=True,
                capture_output=True,
                env={**__import__("os").environ, **env_db},
            )
            cold.append(time.perf_counter() - start)
        print(
            f"cold start of `mopsbot ask` (new process, answer included): median {statistics.median(cold):.2f} s "
            f"over {len(cold)} runs"
        )


if __name__ == "__main__":
    main()
