"""In-process A/B of otel-llm's own overhead: a developer tool for profiling and before/after numbers.

    .venv/bin/python benchmarks/inprocess.py [--scenario sync_chat stream_chat ...] [--profile DIR]

Real responses of the fake provider (status, headers, body) are recorded once, then replayed by an
in-memory transport, so no socket, server or scheduler noise is in the loop. Blocks of calls
alternate between instrumented (``LLMInstrumentor().instrument()``) and not (``uninstrument()``),
and between the floor (a bare SDK span + the same metric points) and not, in the same process:
the medians of the paired block differences are the overheads, in CPU µs per call.
This complements ``run.py`` (fresh processes, real loopback traffic, peers); it is not a substitute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worker import CHAT_MODEL, EMBED_MODEL, MAX_TOKENS, MESSAGES, STREAM_CHUNKS, Floor, floor_stream, setup_sdk

SCENARIOS = ("sync_chat", "async_chat", "stream_chat", "embeddings", "raw_httpx", "raw_requests", "non_llm_get")


def record_responses() -> dict[tuple[str, bool], tuple[int, list[tuple[str, str]], bytes]]:
    """(path, streamed) -> (status, headers, body) as the fake provider answers them."""
    import httpx

    from otel_llm.fakeprovider import FakeProvider

    out = {}
    with FakeProvider() as fp, httpx.Client() as c:
        base = fp.url + "/v1"
        chat = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
        for path, body, stream in (
            ("/chat/completions", chat, False),
            ("/chat/completions", dict(chat, stream=True, stream_options={"include_usage": True}), True),
            ("/embeddings", {"model": EMBED_MODEL, "input": "hello telemetry", "encoding_format": "base64"}, False),
        ):
            r = c.post(base + path, json=body, headers={"x-fake-chunks": str(STREAM_CHUNKS)})
            headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in ("transfer-encoding",)]
            out[(path, stream)] = (r.status_code, headers, r.content)
    return out


def _handler_for(module: Any, canned: dict) -> Any:
    def handler(request: Any) -> Any:
        path = request.url.path
        if not path.endswith(("/chat/completions", "/embeddings")):
            return module.Response(200, json={"ok": True})
        key = "/embeddings" if path.endswith("/embeddings") else "/chat/completions"
        stream = b'"stream":true' in request.content.replace(b" ", b"")
        if stream and b"stream_options" not in request.content:  # usage only when asked, as the real server
            status, headers, body = canned[(key, True)]
            lines = [blk for blk in body.split(b"\n\n") if blk and b'"choices":[]' not in blk]
            body = b"\n\n".join(lines) + b"\n\n"
        else:
            status, headers, body = canned[(key, stream)]
        if stream:
            pieces = [blk + b"\n\n" for blk in body.split(b"\n\n") if blk]
            return module.Response(status, headers=headers, stream=_Chunks(module, pieces))
        return module.Response(status, headers=headers, content=body)

    return handler


def _Chunks(module: Any, pieces: list[bytes]) -> Any:
    class Chunks(module.SyncByteStream, module.AsyncByteStream):
        def __iter__(self) -> Any:
            yield from pieces

        async def __aiter__(self) -> Any:
            for p in pieces:
                yield p

    return Chunks()


def make_calls(scenario: str, canned: dict, floor: Floor) -> tuple[Any, Any, bool]:
    """(plain call, floor call, is_async)."""
    import httpx
    import httpx2
    import openai

    if scenario in ("sync_chat", "stream_chat", "embeddings"):
        client = openai.OpenAI(
            base_url="http://127.0.0.1:9/v1",
            api_key="sk",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(_handler_for(httpx2, canned))),
        )
        if scenario == "sync_chat":

            def plain() -> Any:
                return client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)

            def floored() -> Any:
                span = floor.start("chat", CHAT_MODEL, False)
                t0 = time.perf_counter()
                r = plain()
                u = r.usage
                floor.end(span, t0, r.model, r.id, r.choices[0].finish_reason, u.prompt_tokens, u.completion_tokens)

            return plain, floored, False
        if scenario == "embeddings":

            def plain() -> Any:
                return client.embeddings.create(model=EMBED_MODEL, input="hello telemetry")

            def floored() -> Any:
                span = floor.start("embeddings", EMBED_MODEL, False)
                t0 = time.perf_counter()
                r = plain()
                floor.end(span, t0, r.model, "", "stop", r.usage.prompt_tokens, None)

            return plain, floored, False

        def plain() -> Any:
            n = 0
            for _ in client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
            ):
                n += 1
            return n

        def floored() -> Any:
            span = floor.start("chat", CHAT_MODEL, True)
            t0 = time.perf_counter()
            stream = client.chat.completions.create(
                model=CHAT_MODEL,
                messages=MESSAGES,
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},  # real token counts need the usage chunk
            )
            floor_stream(floor, span, t0, stream)

        return plain, floored, False
    if scenario == "async_chat":
        aclient = openai.AsyncOpenAI(
            base_url="http://127.0.0.1:9/v1",
            api_key="sk",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_handler_for(httpx2, canned))),
        )

        async def aplain() -> Any:
            return await aclient.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)

        async def afloored() -> Any:
            span = floor.start("chat", CHAT_MODEL, False)
            t0 = time.perf_counter()
            r = await aplain()
            u = r.usage
            floor.end(span, t0, r.model, r.id, r.choices[0].finish_reason, u.prompt_tokens, u.completion_tokens)

        return aplain, afloored, True
    if scenario in ("raw_httpx", "non_llm_get"):
        hc = httpx.Client(transport=httpx.MockTransport(_handler_for(httpx, canned)))
        url = "http://127.0.0.1:9/v1/chat/completions"
        body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
        if scenario == "non_llm_get":

            def plain() -> Any:
                return hc.get("http://127.0.0.1:9/healthz").json()

            return plain, plain, False

        def plain() -> Any:
            return hc.post(url, json=body).json()

        def floored() -> Any:
            span = floor.start("chat", CHAT_MODEL, False, http_url=url)
            t0 = time.perf_counter()
            d = plain()
            u = d["usage"]
            floor.end(span, t0, d["model"], d["id"], d["choices"][0]["finish_reason"], u["prompt_tokens"],
                      u["completion_tokens"])  # fmt: skip

        return plain, floored, False
    if scenario == "raw_requests":
        import requests
        from requests.adapters import BaseAdapter
        from requests.structures import CaseInsensitiveDict

        status, headers, content = canned[("/chat/completions", False)]

        class Stub(BaseAdapter):
            def send(self, request: Any, **kwargs: Any) -> Any:
                r = requests.Response()
                r.status_code = status
                r._content = content
                r.headers = CaseInsensitiveDict(headers)
                r.request = request
                r.url = request.url
                return r

            def close(self) -> None:
                pass

        s = requests.Session()
        s.mount("http://", Stub())
        url = "http://127.0.0.1:9/v1/chat/completions"
        body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}

        def plain() -> Any:
            return s.post(url, json=body).json()

        def floored() -> Any:
            span = floor.start("chat", CHAT_MODEL, False, http_url=url)
            t0 = time.perf_counter()
            d = plain()
            u = d["usage"]
            floor.end(span, t0, d["model"], d["id"], d["choices"][0]["finish_reason"], u["prompt_tokens"],
                      u["completion_tokens"])  # fmt: skip

        return plain, floored, False
    raise SystemExit(scenario)


def run_blocks(fn: Any, size: int, is_async: bool) -> float:
    cpu = time.process_time_ns
    if is_async:

        async def loop() -> int:
            c0 = cpu()
            for _ in range(size):
                await fn()
            return cpu() - c0

        return asyncio.run(loop()) / size / 1000
    c0 = cpu()
    for _ in range(size):
        fn()
    return (cpu() - c0) / size / 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--scenario", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--size", type=int, default=200, help="calls per block (stream: /10)")
    ap.add_argument("--profile", default=None, help="directory: cProfile each scenario's instrumented calls")
    ap.add_argument("--spin", type=float, default=0, help="only run instrumented calls this many seconds (py-spy)")
    args = ap.parse_args(argv)

    from otel_llm import LLMInstrumentor

    tp, mp, _ = setup_sdk()
    canned = record_responses()
    floor = Floor(tp, mp, "127.0.0.1", 9)
    inst = LLMInstrumentor()
    print(f"{'scenario':13s} {'plain':>9s} {'otel-llm':>9s} {'floor':>9s}  (CPU µs/call over plain; x = ratio)")
    for scenario in args.scenario:
        plain, floored, is_async = make_calls(scenario, canned, floor)
        size = max(5, args.size // 10) if scenario == "stream_chat" else args.size
        if scenario == "non_llm_get":
            size *= 5
        if args.spin:
            inst.instrument(tracer_provider=tp, meter_provider=mp, capture_content=False)
            end = time.monotonic() + args.spin
            while time.monotonic() < end:
                run_blocks(plain, size, is_async)
            inst.uninstrument()
            continue
        if args.profile:
            import cProfile

            inst.instrument(tracer_provider=tp, meter_provider=mp, capture_content=False)
            run_blocks(plain, size, is_async)
            prof = cProfile.Profile()
            prof.enable()
            run_blocks(plain, size * 5, is_async)
            prof.disable()
            inst.uninstrument()
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            prof.dump_stats(str(Path(args.profile) / f"{scenario}.prof"))
            continue
        for _ in range(2):  # warm-up both ways
            inst.instrument(tracer_provider=tp, meter_provider=mp, capture_content=False)
            run_blocks(plain, size, is_async)
            inst.uninstrument()
            run_blocks(plain, size, is_async)
            run_blocks(floored, size, is_async)
        ours, floors, bases = [], [], []
        for b in range(args.blocks):
            order = ("plain", "ours", "floor") if b % 2 == 0 else ("floor", "ours", "plain")
            t: dict[str, float] = {}
            for kind in order:
                if kind == "ours":
                    inst.instrument(tracer_provider=tp, meter_provider=mp, capture_content=False)
                    t[kind] = run_blocks(plain, size, is_async)
                    inst.uninstrument()
                else:
                    t[kind] = run_blocks(plain if kind == "plain" else floored, size, is_async)
            bases.append(t["plain"])
            ours.append(t["ours"] - t["plain"])
            floors.append(t["floor"] - t["plain"])
        o, f = statistics.median(ours), statistics.median(floors)
        ratio = f"{o / f:.2f}" if f > 0.5 else "-"
        print(
            f"{scenario:13s} {statistics.median(bases):9.1f} {o:+9.1f} {f:+9.1f}  x{ratio}"
            f"   (otel-llm spread {min(ours):+.1f}..{max(ours):+.1f})",
            flush=True,
        )
    tp.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
