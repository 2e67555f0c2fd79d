"""The ``otel-llm`` command: ``demo``, ``report`` and ``provider``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]


def _rich() -> Any:
    try:
        import rich  # noqa: F401
    except ImportError:
        sys.exit("otel-llm: the command line needs the 'cli' extra: pip install 'otel-llm[cli]'")
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or in CI: wide enough for the whole table
        console = Console(width=200)
    return console


def render_table(report: Any, title: str) -> Any:
    from rich.table import Table

    from .report import COLUMNS

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in report.rows:
        table.add_row(*report.cells(row))
    table.caption = f"total ${report.total_cost:.4f}"
    if report.total_savings is not None:
        table.caption += f" · relay savings ${report.total_savings:.4f}"
    if report.errors_by_type:
        table.caption += " · errors: " + ", ".join(f"{k} {v}" for k, v in sorted(report.errors_by_type.items()))
    return table


def render_tenant_table(report: Any) -> Any:
    """The per-tenant table, or None when no call carried a tenant."""
    if not report.tenants:
        return None
    from rich.table import Table

    from .report import TENANT_COLUMNS

    table = Table(title="Spend by tenant", title_justify="left", header_style="bold")
    for i, name in enumerate(TENANT_COLUMNS):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in report.tenants:
        table.add_row(*report.tenant_cells(row))
    return table


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoOptions, run_demo
    from .report import render_html

    console = _rich()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    opts = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        error_rate=args.error_rate,
        budget=args.budget,
        otlp=args.otlp,
        keep_serving=args.keep_serving,
        metrics_port=args.metrics_port,
        html=args.html,
        seed=args.seed,
    )
    console.print(
        f"[bold]otel-llm demo[/]: {opts.rate:g} calls/s for {opts.duration:g}s across "
        "gpt-4.1, claude-sonnet-4.5, gemini-2.5-flash, deepseek-v3.2 "
        f"(error share {opts.error_rate:.0%}, budget ${opts.budget:g})"
    )
    if opts.metrics_port:
        console.print(f"Prometheus metrics: http://localhost:{opts.metrics_port}/metrics while it runs")
    with Progress(
        TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=False
    ) as bar:
        task = bar.add_task("calls", total=max(1, int(opts.duration * opts.rate)))
        try:
            result = run_demo(opts, progress=lambda done, total: bar.update(task, completed=done))
        except ValueError as exc:
            console.print(f"[red]otel-llm demo: {exc}[/]")
            return 2
    console.print(render_table(result.report, "Per-model summary (from the instrumentation's own metrics)"))
    tenants = render_tenant_table(result.report)
    if tenants is not None:
        console.print(tenants)
    console.print(
        f"{result.calls} logical calls · {result.spans} spans · {result.failovers} failovers · "
        f"{result.failed} failed after every fallback · "
        f"{result.downgraded} complex prompts downgraded by the budget guard"
    )
    if opts.html:
        with open(opts.html, "w", encoding="utf-8") as fh:
            fh.write(render_html(result.report, title="otel-llm demo"))
        console.print(f"HTML report: {opts.html}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import ReportError, from_prometheus, render_html

    try:
        report = from_prometheus(args.prometheus, window=args.window, selector=args.selector)
    except (ReportError, ValueError) as exc:
        print(f"otel-llm report: {exc}", file=sys.stderr)
        return 1
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(render_html(report))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        console = _rich()
        console.print(render_table(report, f"LLM calls, last {args.window} ({args.prometheus})"))
        tenants = render_tenant_table(report)
        if tenants is not None:
            console.print(tenants)
        if args.html:
            console.print(f"HTML report: {args.html}")
    return 0


def _provider(args: argparse.Namespace) -> int:
    from .fakeprovider import main as provider_main

    argv = ["--port", str(args.port), "--latency-scale", str(args.latency_scale), "--error-rate", str(args.error_rate)]
    return int(provider_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-llm", description="OpenTelemetry for LLM calls.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run an instrumented multi-model workload against an embedded provider")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (default 20)")
    demo.add_argument("--rate", type=float, default=8.0, help="logical calls per second (default 8)")
    demo.add_argument("--error-rate", type=float, default=0.06, help="share of 429/5xx/timeouts (default 0.06)")
    demo.add_argument("--budget", type=float, default=0.25, help="USD budget of the router's spend guard")
    demo.add_argument("--otlp", metavar="ENDPOINT", help="also send traces and metrics to this OTLP gRPC endpoint")
    demo.add_argument("--keep-serving", action="store_true", help="keep provider and metrics up after the run")
    demo.add_argument("--metrics-port", type=int, default=9464, help="Prometheus port (0 = off; default 9464)")
    demo.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_demo)

    report = sub.add_parser("report", help="the per-model table from a running Prometheus")
    report.add_argument("--prometheus", default="http://localhost:9090", help="Prometheus base URL")
    report.add_argument("--window", default="1h", help="time window, e.g. 15m, 1h, 1d (default 1h)")
    report.add_argument("--selector", default="", help='extra label matchers, e.g. job="my-app"')
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    report.set_defaults(func=_report)

    prov = sub.add_parser("provider", help="serve the fake OpenAI/Anthropic/Gemini-compatible provider")
    prov.add_argument("--port", type=int, default=8000)
    prov.add_argument("--latency-scale", type=float, default=1.0)
    prov.add_argument("--error-rate", type=float, default=0.0)
    prov.set_defaults(func=_provider)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
