"""A model router with failover and a spend guard read from otel-llm's in-process spend figures."""

from __future__ import annotations

import os

import otel_llm

otel_llm.instrument()

import openai  # noqa: E402

STRONG = os.environ.get("STRONG_MODELS", "gpt-4.1,claude-sonnet-4.5").split(",")
CHEAP = os.environ.get("CHEAP_MODELS", "gemini-2.5-flash,deepseek-v3.2").split(",")
BUDGET_USD = float(os.environ.get("BUDGET_USD", "0.05"))

client = openai.OpenAI(max_retries=0, timeout=20)


def ask(prompt: str, complex_prompt: bool) -> tuple[str, str]:
    over_budget = otel_llm.spend().total_usd >= BUDGET_USD
    chain = (STRONG + CHEAP) if complex_prompt and not over_budget else CHEAP + STRONG[:1]
    last: Exception | None = None
    for model in chain:  # each attempt is its own span: you see which model answered and what it cost
        try:
            reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
            return model, reply.choices[0].message.content or ""
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError) as exc:
            last = exc
    raise RuntimeError("every model failed") from last


def main() -> None:
    for i, prompt in enumerate(["Capital of Peru?", "Plan a zero-downtime database migration.", "2+2?"]):
        model, text = ask(prompt, complex_prompt=i == 1)
        print(f"{model}: {text[:60]}")
    for m in otel_llm.spend().models:
        print(f"{m.provider}/{m.model}: {m.calls} calls, ${m.cost_usd:.6f}")


if __name__ == "__main__":
    main()
