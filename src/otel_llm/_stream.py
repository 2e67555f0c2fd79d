"""Byte taps: see a response body as the user's client hands it on, end the call exactly once.

A tap never reads ahead and never holds bytes back: each piece goes to the parser and then,
unchanged, to the caller. Whatever way the body stops being read (exhausted, closed, context
exit, an error, cancellation, garbage collection of an abandoned response), the call ends once
with that outcome. One ``Tap`` does the bookkeeping; the classes below only adapt it to each
client library's body type (httpx/httpx2 byte streams, urllib3 raw responses, aiohttp readers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import wrapt

from ._names import SERVER_ADDRESS, SERVER_PORT
from ._parsers._json import loads
from ._parsers.ollama import NdjsonParser
from ._parsers.response import apply_body, parse_body_bytes
from ._parsers.routes import OPENAI_CHAT, OPENAI_COMPLETIONS
from ._parsers.sse import StreamParser, stream_parser

__all__ = ["UNASKED_USAGE", "AiohttpContentTap", "RequestsRawTap", "Tap", "UsageCut", "tap_httpx_classes"]

log = logging.getLogger("otel_llm")

_MAX_JSON = 16 << 20  # past this a non-SSE body is not kept for parsing

# (host, port) -> the recorder that saw that server stream usage nobody asked for (a relay that always sends it):
# that recorder no longer adds ``stream_options.include_usage`` for it, so it never hides a chunk of it. Bounded.
UNASKED_USAGE: dict[tuple[str | None, int | None], Any] = {}
_UNASKED_MAX = 256
_USAGE_APIS = (OPENAI_CHAT, OPENAI_COMPLETIONS)


def _learn_unasked(inv: Any) -> None:
    """A stream we did not add ``include_usage`` to, whose caller did not ask for usage either, brought usage:
    its server sends it on its own."""
    request = inv.request
    if inv.hide_usage or request.include_usage or not request.stream or inv.info.usage is None:
        return
    if inv.route.api not in _USAGE_APIS:
        return
    fixed = inv.entry.fixed  # the real server (the entry's own server label may be the bounded _OTHER)
    key = (fixed.get(SERVER_ADDRESS), fixed.get(SERVER_PORT))
    if UNASKED_USAGE.get(key) is inv.recorder:
        return
    if len(UNASKED_USAGE) >= _UNASKED_MAX:
        UNASKED_USAGE.clear()  # servers by the hundred: start over, never grow
    UNASKED_USAGE[key] = inv.recorder


_NULL_END = b',"usage":null}\n\n'  # a one-line chunk event that ends with the member include_usage adds
# OpenAI pads every chat chunk since 2025-08 (``stream_options.include_obfuscation``, on unless turned off): an
# ``obfuscation`` member of random letters and digits, the chunk's last, right after that one
_NULL_PAD = b',"usage":null,"obfuscation":"'
_PAD = b',"obfuscation":"'
_PAD_EVENT_END = b'"}\n\n'
_DONE_EVENT = b"data: [DONE]\n\n"  # the end marker of an OpenAI stream, the end of the read that carries it


def _plain(pad: bytes) -> bool:
    """A padding that is a plain JSON string's content: letters and digits (OpenAI's), or anything but a quote, an
    escape or a line end (where such a string ends is a parser's call)."""
    return pad.isalnum() or (pad.find(b'"') < 0 and pad.find(b"\\") < 0 and pad.find(b"\n") < 0)


def _cut_padded(line: bytes, end: bytes) -> bytes | None:
    """A padded chunk's line (one ending with ``end``: the closing quote of its padding, the chunk's brace, the line
    end) less the ``"usage":null`` member right before its padding; None when the line is not one (the padding not
    the last member, or not a plain string)."""
    head, sep, tail = line.rpartition(_NULL_PAD)
    if not sep:
        return None
    pad = tail.removesuffix(end)
    if pad is tail or not _plain(pad):
        return None
    return head + _PAD + tail


def _cut_chunk(data: bytes) -> bytes | None:
    """The commonest read, one whole chunk event of one line, less its ``"usage":null`` member (its last, or its last
    before OpenAI's padding); None when ``data`` is not that. The httpx taps call it on each read before anything
    else (a plain function: argument-clinic methods only, ``partition`` rather than ``find`` for the line end, as
    ``find`` parses its arguments at ~500-700 instructions a call)."""
    head = data.removesuffix(_NULL_END)
    if head is not data:
        tail = b"}\n\n"
    else:
        head, sep, tail = data.rpartition(_NULL_PAD)
        pad = tail.removesuffix(_PAD_EVENT_END)
        if not sep or pad is tail or not (pad.isalnum() or _plain(pad)):
            return None
        tail = _PAD + tail
    if head.partition(b"\n")[1] or head[:5] != b"data:":
        return None
    return head + tail


class UsageCut:
    """Takes what otel-llm's own ``stream_options.include_usage`` made the server add out of an SSE body's bytes, as
    they pass: nothing is held back. Each piece is handed on at once, minus the complete lines of the usage-only
    event (its one ``data:`` line, and the blank line that closes it), and minus the ``"usage":null`` member the
    server then ends every other chunk with (OpenAI's place for it: the last member of the chunk's object, a
    line ending ``,"usage":null}``, or the last but OpenAI's padding, ``,"usage":null,"obfuscation":"..."}``;
    JSON strings escape their quotes, so those bytes are that member). The
    caller reads the bytes it would have read had otel-llm asked nothing, and the SDK parses no field of it.
    A line that arrives split over two reads is handed on as it comes (it cannot be told apart before its
    end): it passes uncut (a usage event so passed is dropped from the SDK's chunks by the openai layer).

    Given a call (``inv``), the event's usage goes into that call's answer as it is cut: the openai SDK's stream
    then never builds a chunk object of it (with its usage details, the SDK's dearest chunk).

    ``lazy``: the openai SDK reads these bytes, not the caller (``create(stream=True)`` iterated). The chunks
    before the finish are handed on uncut, and the openai layer unsets ``usage`` on the SDK's chunk objects
    instead, until ``arm`` (called when the SDK hands on a finish reason, the usage event being next, or when the
    caller reaches for the raw body). The SDK then reads 13 bytes more a chunk (its line splitting, JSON and
    model building), which costs less than the cut: ~27,000 instructions less on a 10-chunk stream, counted
    (median of 7 layouts)."""

    __slots__ = ("blank", "done", "inv", "lazy", "mid", "resync", "start")

    def __init__(self, inv: Any = None, lazy: bool = False) -> None:
        self.inv = inv  # the call to give the cut event's usage to (a parser reads it otherwise)
        # nothing to cut now: the usage event is gone, or (``lazy``) not due yet
        self.done = lazy
        self.lazy = lazy  # see the class's doc

        self.resync = False  # armed: the reads handed on uncut tell where the next one starts (``resume``)
        self.mid = False  # inside a line whose beginning was handed on
        self.start = True  # the next line begins an event
        self.blank = False  # the usage event's data line was taken: take the blank line that ends it

    def arm(self) -> None:
        """Cut from the next read on (a lazy cut; otherwise nothing to do)."""
        if self.lazy:
            self.lazy = False
            self.done = False
            self.resync = True

    def ending(self, data: bytes, last: bytes) -> bytes:
        """A lazy cut's read that ends with the stream's end marker, the last read handed on ``last``: cut as an
        armed cut would. A server that writes its last events together (the finish chunk, the usage event, the end
        marker: some do, in one network read) has the usage event in this read, before the SDK reads its bytes
        and would build a chunk of it (~0.7 M instructions, counted); a server that writes them apart has it in a
        read of its own, which the openai layer arms the cut for (``arm``)."""
        self.arm()
        self.resume(last)
        return self(data)

    def resume(self, last: bytes) -> None:
        """Armed after reads handed on uncut, the last of them ``last``: where the next read starts."""
        self.resync = False
        if last[-2:] == b"\n\n" or last[-4:] == b"\r\n\r\n":  # (slices: ``endswith`` parses its arguments)
            self.start, self.mid = True, False
        elif last[-1:] == b"\n":
            self.start = self.mid = False
        else:  # inside a line: its end passes as it comes
            self.start, self.mid = False, True

    def __call__(self, data: bytes) -> bytes:
        if self.start and (chunk := _cut_chunk(data)) is not None:
            return chunk
        return self.rest(data)

    def rest(self, data: bytes) -> bytes:
        """``__call__`` for a read that is not one whole chunk ending with the member (the httpx taps try that,
        the commonest read, with ``_cut_chunk`` in their own loop first, and call this for the others)."""
        if self.start and data.partition(b"\n")[2] == b"\n" and data[:5] == b"data:":
            # one whole event of one line, not a chunk with the member (above): the usage event, taken whole; another
            # event, handed on whole (~10,000 instructions less than the line loop below, counted)
            ev = _usage_event(data[:-1])
            if ev is None:
                return data
            self.done = True
            if self.inv is not None:
                self._take(ev)
            return b""
        out: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            nl = data.find(b"\n", pos)
            if nl < 0:  # the rest of this read has no line end yet: hand it on
                out.append(data[pos:])
                self.mid = True
                self.blank = self.start = False
                break
            end = nl + 1
            line = data[pos:end]
            pos = end
            if self.mid:  # the end of a line already handed on in part
                self.mid = False
                out.append(line)
            elif line == b"\n" or line == b"\r\n":
                self.start = True
                if self.blank:  # the end of the usage event: taken too, and the cut is done
                    self.blank = False
                    self.done = True
                    out.append(data[pos:])
                    break
                out.append(line)
            elif self.start and line.startswith(b"data:"):
                self.blank = self.start = False
                if line.endswith(b',"usage":null}\n'):  # a chunk: the member asking for usage added to it goes
                    out.append(line[:-15] + b"}\n")
                elif line.endswith(b',"usage":null}\r\n'):
                    out.append(line[:-16] + b"}\r\n")
                elif (padded := _cut_padded(line, b'"}\r\n' if line.endswith(b"\r\n") else b'"}\n')) is not None:
                    out.append(padded)  # a padded chunk: the same member goes, from before its padding
                else:
                    ev = _usage_event(line)
                    if ev is None:
                        out.append(line)
                    else:  # the usage event: taken
                        self.blank = True
                        if self.inv is not None:
                            self._take(ev)
            else:
                self.blank = self.start = False
                out.append(line)
        return out[0] if len(out) == 1 else b"".join(out)

    def _take(self, ev: dict) -> None:
        inv = self.inv
        try:
            apply_body(inv.route, ev, inv.info)
        except Exception:
            log.debug("otel_llm: reading a usage event failed", exc_info=True)


def _usage_event(line: bytes) -> dict | None:
    """The usage-only chunk a ``data:`` line carries (no choices, a usage object), decoded; else None."""
    if line.find(b'"choices":[]') < 0 and line.find(b'"choices": []') < 0:  # (``in`` on bytes costs ~1,000 more)
        return None
    try:
        chunk = loads(line[5:])
    except (ValueError, TypeError):
        return None
    if isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict):
        return chunk
    return None


class Tap:
    """Feeds body bytes to the call's parser and ends the call once."""

    __slots__ = ("buf", "cut", "done", "inv", "parser", "size", "started")

    def __init__(self, inv: Any, sse: bool, lazy: bool = False) -> None:
        self.inv = inv
        inv.tap = self
        self.done = False
        self.started = False  # the body's first piece was asked for (set by the httpx taps: an SDK stream's)
        self.size = 0
        self.parser: StreamParser | NdjsonParser | None = None
        self.buf: list[bytes] | None = None
        self.cut: UsageCut | None = None  # the bytes a caller reads lose the usage event we asked for
        if inv.from_chunks and sse:
            # the openai SDK's own chunks give the data (see _patches.openai): the bytes only pass by, less the
            # usage event we asked for, read here so that the SDK never parses it (from the finish on, when the
            # tap can follow a lazy cut: ``UsageCut.lazy``)
            if inv.hide_usage:
                self.cut = UsageCut(inv, lazy)
        elif sse:
            self.parser = stream_parser(inv.route, inv.info, inv.recorder.capture)
            if inv.hide_usage:
                self.cut = UsageCut()
        else:
            self.buf = []
        inv.owned_by_stream = True

    def raw_reader(self) -> None:
        """The caller reached for the raw response of an SDK stream read from the SDK's chunks: if none of its
        bytes was read yet, they are parsed as any raw stream's (the SDK may never see them, the caller reading
        them itself)."""
        cut = self.cut
        inv = self.inv
        if cut is not None:
            cut.arm()  # whatever the caller reads from now on is cut
        if inv.from_chunks and not self.started and self.parser is None and self.buf is None and not self.done:
            inv.from_chunks = False
            self.parser = stream_parser(inv.route, inv.info, inv.recorder.capture)
            if cut is not None:
                cut.inv = None  # the parser reads the usage event (it sees each piece before the cut)

    @property
    def passive(self) -> bool:
        """Nothing to feed: only how the body ends matters."""
        return self.parser is None and self.buf is None

    def feed(self, data: bytes) -> None:
        if self.done or not data:
            return
        try:
            parser = self.parser
            if parser is not None:
                if parser.done:  # past the end marker: a replayable body read again (the SDK drains it) adds nothing
                    return
                count = parser.feed(data)
                if count:
                    self.inv.chunks_arrived(count)
            elif self.buf is not None:
                self.size += len(data)
                if self.size > _MAX_JSON:
                    self.buf = None
                else:
                    self.buf.append(data)
        except Exception:
            log.debug("otel_llm: parsing a response body failed", exc_info=True)

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        inv = self.inv
        try:
            parser = self.parser
            if parser is not None:
                count = parser.flush()
                if count:
                    inv.chunks_arrived(count)
                if parser.done and outcome == "closed_early":
                    outcome = "completed"  # SDKs close the body right after the end marker
                elif (
                    outcome == "completed"
                    and not parser.done
                    and not inv.info.finish_reasons
                    and (inv.status_code or 0) < 400  # an error page read as a stream is that error, not a cut
                ):
                    inv.error_type = inv.error_type or "stream_truncated"
            elif self.buf is None:  # passive: the SDK's chunks were read; a body that just stops was cut short
                if (
                    outcome == "completed"
                    and inv.stamps is not None  # chunks were seen (the caller iterated the SDK's stream)
                    and not inv.info.finish_reasons
                    and (inv.status_code or 0) < 400
                ):
                    inv.error_type = inv.error_type or "stream_truncated"
            elif self.buf:
                raw = b"".join(self.buf)
                self.buf = None
                if parse_body_bytes(inv.route, raw, inv.info, inv.recorder.capture):
                    if outcome == "closed_early":
                        outcome = "completed"  # the whole JSON document was read
                else:
                    sse = stream_parser(inv.route, inv.info, inv.recorder.capture)
                    sse.feed(raw)
                    sse.flush()
                    if sse.done and outcome == "closed_early":
                        outcome = "completed"
            _learn_unasked(inv)
        except Exception:
            log.debug("otel_llm: parsing a response body failed", exc_info=True)
        inv.tap = None  # the call and its tap no longer hold each other: freed when the caller lets go, not by the GC
        if exc is not None:
            inv.fail(exc)
        else:
            inv.end(outcome)


def _abandon(tap: Tap | None) -> None:
    if tap is not None and not tap.done:
        try:
            tap.finish("abandoned")
        except Exception:
            pass


_httpx_classes: dict[Any, tuple[type, type]] = {}


def _httpx_decoder(module: Any, content_encoding: str | None) -> Any:
    """``decode(piece)`` (``None`` flushes) giving a compressed httpx body as the application reads it, or None.

    httpx byte streams carry the body as sent (gzip, deflate, ...); the parsers need it decoded. The
    decoder is a fresh one the library makes for these headers, never the response's own (it has state).
    A body that fails to decode is not parsed any further; the application sees its own error.
    """
    if not content_encoding or content_encoding.strip().lower() == "identity":
        return None
    try:
        decoder = module.Response(200, headers=[("content-encoding", content_encoding)])._get_content_decoder()
    except Exception:
        return None
    failed = False

    def decode(data: bytes | None) -> bytes:
        nonlocal failed
        if failed:
            return b""
        try:
            out = decoder.flush() if data is None else decoder.decode(data)
            return out if isinstance(out, bytes) else b"".join(out)  # httpx2 decoders yield pieces
        except Exception:
            failed = True
            return b""

    return decode


def tap_httpx_classes(module: Any) -> tuple[type, type]:
    """Sync and async byte-stream taps that subclass ``module``'s own stream types (httpx or httpx2).

    httpx checks ``isinstance(response.stream, SyncByteStream)`` before iterating, so the taps must
    be of the module's classes.
    """
    hit = _httpx_classes.get(module)
    if hit is not None:
        return hit

    class SyncTap(module.SyncByteStream):
        __slots__ = ("_decode", "_inner", "_tap")

        def __init__(self, inner: Any, tap: Tap, content_encoding: str | None = None) -> None:
            self._inner = inner
            self._tap = tap
            self._decode = _httpx_decoder(module, content_encoding)

        def __iter__(self) -> Iterator[bytes]:
            tap = self._tap
            tap.started = True
            decode = self._decode
            try:
                if tap.cut is not None and decode is None:
                    cut = tap.cut
                    feed = None if tap.passive else tap.feed
                    last = b"\n\n"  # the last read handed on (read only when a lazy cut is armed or ends)
                    for chunk in self._inner:
                        if feed is not None:
                            feed(chunk)
                        if not cut.done:
                            if cut.resync:
                                cut.resume(last)
                            # the commonest read first, without UsageCut's method call
                            cut_chunk = _cut_chunk(chunk) if cut.start else None
                            if cut_chunk is not None:
                                chunk = cut_chunk
                            else:
                                chunk = cut.rest(chunk)
                                if not chunk:
                                    continue  # the piece was the usage event alone
                        elif cut.lazy and chunk.removesuffix(_DONE_EVENT) is not chunk:
                            chunk = cut.ending(chunk, last)
                        last = chunk
                        yield chunk
                elif tap.passive:
                    yield from self._inner  # handed on in C
                else:
                    for chunk in self._inner:
                        tap.feed(chunk if decode is None else decode(chunk))
                        yield chunk
            except GeneratorExit:
                raise  # the consumer stopped; close() or garbage collection will say how
            except BaseException as exc:
                tap.finish("failed", exc)
                raise
            if decode is not None:
                tap.feed(decode(None))
            tap.finish("completed")

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._tap.finish("closed_early")

        def __del__(self) -> None:
            _abandon(getattr(self, "_tap", None))

    class AsyncTap(module.AsyncByteStream):
        __slots__ = ("_decode", "_inner", "_tap")

        def __init__(self, inner: Any, tap: Tap, content_encoding: str | None = None) -> None:
            self._inner = inner
            self._tap = tap
            self._decode = _httpx_decoder(module, content_encoding)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            tap = self._tap
            tap.started = True
            decode = self._decode
            try:
                if tap.cut is not None and decode is None:
                    cut = tap.cut
                    feed = None if tap.passive else tap.feed
                    last = b"\n\n"  # the last read handed on (read only when a lazy cut is armed or ends)
                    async for chunk in self._inner:
                        if feed is not None:
                            feed(chunk)
                        if not cut.done:
                            if cut.resync:
                                cut.resume(last)
                            # the commonest read first, without UsageCut's method call
                            cut_chunk = _cut_chunk(chunk) if cut.start else None
                            if cut_chunk is not None:
                                chunk = cut_chunk
                            else:
                                chunk = cut.rest(chunk)
                                if not chunk:
                                    continue  # the piece was the usage event alone
                        elif cut.lazy and chunk.removesuffix(_DONE_EVENT) is not chunk:
                            chunk = cut.ending(chunk, last)
                        last = chunk
                        yield chunk
                elif tap.passive:
                    async for chunk in self._inner:
                        yield chunk
                else:
                    async for chunk in self._inner:
                        tap.feed(chunk if decode is None else decode(chunk))
                        yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                tap.finish("failed", exc)
                raise
            if decode is not None:
                tap.feed(decode(None))
            tap.finish("completed")

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._tap.finish("closed_early")

        def __del__(self) -> None:
            _abandon(getattr(self, "_tap", None))

    _httpx_classes[module] = (SyncTap, AsyncTap)
    return SyncTap, AsyncTap


class RequestsRawTap(wrapt.ObjectProxy):
    """Stands in for ``requests.Response.raw`` (a urllib3 response) of a streamed LLM answer."""

    def __init__(self, raw: Any, tap: Tap) -> None:
        super().__init__(raw)
        self._self_tap = tap

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        tap = self._self_tap
        try:
            for chunk in self.__wrapped__.stream(amt, decode_content=decode_content):
                tap.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            tap.finish("failed", exc)
            raise
        tap.finish("completed")

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        tap = self._self_tap
        try:
            data = self.__wrapped__.read(amt, *args, **kwargs)
        except BaseException as exc:
            tap.finish("failed", exc)
            raise
        tap.feed(data)
        if amt is None or not data:
            tap.finish("completed")
        return data

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tap.finish("closed_early")

    def release_conn(self) -> None:
        try:
            self.__wrapped__.release_conn()
        finally:
            self._self_tap.finish("closed_early")

    def __del__(self) -> None:
        _abandon(getattr(self, "_self_tap", None))


class AiohttpContentTap(wrapt.ObjectProxy):
    """Stands in for ``aiohttp.ClientResponse.content`` (a StreamReader) of an LLM answer.

    aiohttp's own iterators are bound to the real reader, so each read path is re-declared here.
    ``release()``/``close()`` of the response mark the reader with an exception; that is how an
    early close is seen.
    """

    def __init__(self, reader: Any, tap: Tap) -> None:
        super().__init__(reader)
        self._self_tap = tap

    def _self_after(self, data: Any) -> Any:
        tap = self._self_tap
        tap.feed(data)
        if not data or self.__wrapped__.at_eof():
            tap.finish("completed")
        return data

    def _self_failed(self, exc: BaseException) -> None:
        self._self_tap.finish("failed", exc)

    async def _self_pull(self, method: str, *args: Any) -> bytes:
        try:
            data = await getattr(self.__wrapped__, method)(*args)
        except BaseException as exc:
            self._self_failed(exc)
            raise
        return self._self_after(data)

    def read(self, n: int = -1) -> Awaitable[bytes]:
        return self._self_pull("read", n)

    def readany(self) -> Awaitable[bytes]:
        return self._self_pull("readany")

    def readline(self) -> Awaitable[bytes]:
        return self._self_pull("readline")

    def readuntil(self, separator: bytes = b"\n") -> Awaitable[bytes]:
        return self._self_pull("readuntil", separator)

    def readexactly(self, n: int) -> Awaitable[bytes]:
        return self._self_pull("readexactly", n)

    async def readchunk(self) -> tuple[bytes, bool]:
        try:
            chunk = await self.__wrapped__.readchunk()
        except BaseException as exc:
            self._self_failed(exc)
            raise
        self._self_after(chunk[0])
        return chunk

    def read_nowait(self, n: int = -1) -> bytes:
        return self._self_after(self.__wrapped__.read_nowait(n))

    async def _self_iter(self, step: Any) -> AsyncIterator[bytes]:
        while True:
            data = await step()
            if not data:
                return
            yield data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._self_iter(self.readline)

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._self_iter(self.readany)

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        return self._self_iter(lambda: self.read(n))

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        while True:
            chunk = await self.readchunk()
            if chunk == (b"", False):
                return
            yield chunk

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        self.__wrapped__.set_exception(exc, *args)
        tap = self._self_tap
        if not tap.done:
            if isinstance(exc, asyncio.CancelledError):
                tap.finish("failed", exc)
            else:
                tap.finish("closed_early")

    def __del__(self) -> None:
        _abandon(getattr(self, "_self_tap", None))
