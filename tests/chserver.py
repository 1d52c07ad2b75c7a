"""ClickHouse's HTTP interface over chDB, for tests: the real engine in one process, many client processes on it.

chDB is ClickHouse inside one process, and it lets one process open a folder; Debian packages no ClickHouse server
recent enough. So a test that needs several processes on one database (two dashboards, two ingest workers) starts
this: it answers what clickhouse-connect's HTTP client sends (queries in the body or the URL, `param_*` values bound
by the engine, settings as URL parameters, sessions by `session_id`, Native inserts with the statement in the URL)
by running each on the engine, on a connection of its own (a session's for a session). The SQL and the storage are
ClickHouse's; only this small transport is ours.

    python tests/chserver.py FOLDER PORT      # serves until killed; prints "ready" once it listens
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

import chdb

IGNORED = {"client_protocol_version", "query", "database", "session_id", "session_timeout", "session_check",
           "query_id", "default_format",
           "compress", "decompress", "wait_end_of_query", "send_progress_in_http_headers",
           "http_headers_progress_interval_ms", "enable_http_compression", "user", "password"}
TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*$", re.I)
CODE = re.compile(r"Code: (\d+)")
INSERT_HEAD = re.compile(rb"\s*(INSERT\s[^\n]*?\sFORMAT\s+\w+)\s*?\n", re.I)


class Engine:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.first = chdb.connect(folder)  # holds the engine open between requests
        self.sessions: dict[str, Any] = {}
        self.lock = threading.Lock()

    def connection(self, session: str | None) -> tuple[Any, bool]:
        """(connection, whether to close it after the request)."""
        if not session:
            return chdb.connect(self.folder), True
        with self.lock:
            if session not in self.sessions:
                self.sessions[session] = chdb.connect(self.folder)
            return self.sessions[session], False


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 31)
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding}")


def _fields(content_type: str, body: bytes) -> dict[str, str]:
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    found: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            found[str(name)] = part.get_payload(decode=True).decode()
    return found


def handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if urlparse(self.path).path == "/ping":
                self._send(200, b"Ok.\n")
            else:
                self.do_POST()

        def do_POST(self) -> None:
            url = urlparse(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            body = self._body()
            try:
                body = _decompress(body, self.headers.get("Content-Encoding"))
                kind = self.headers.get("Content-Type", "")
                if kind.startswith("multipart/form-data"):  # long parameters: the query and its values as fields
                    params.update(_fields(kind, body))
                    body = b""
                result = self._run(params, body)
                if os.environ.get("CHSERVER_DEBUG") == "2":
                    print("OK", params, body[:200], result[:80], file=sys.stderr, flush=True)
                self._send(200, result)
            except Exception as exc:  # noqa: BLE001 - the engine's words go back as the server's would
                text = str(exc)
                if os.environ.get("CHSERVER_DEBUG"):
                    print(params, body[:300], text[:200], file=sys.stderr, flush=True)
                code = CODE.search(text)
                self._send(500, text.encode(), {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        def _run(self, params: dict[str, str], body: bytes) -> bytes:
            con, close = engine.connection(params.get("session_id"))
            try:
                if params.get("database"):
                    con.query(f"USE `{params['database']}`")
                for key, value in params.items():
                    if key not in IGNORED and not key.startswith("param_"):
                        con.query(f"SET {key} = '{value.replace(chr(39), chr(39) * 2)}'")
                bound = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
                if "query" not in params and (head := INSERT_HEAD.match(body)):  # statement, newline, rows
                    params["query"], body = head.group(1).decode(), body[head.end():]
                if "query" in params and body:  # an insert: the statement in the URL, its rows in the body
                    sql = params["query"]
                    fmt = TRAILING_FORMAT.search(sql)
                    with tempfile.NamedTemporaryFile(suffix=".data", delete=False) as tmp:
                        tmp.write(body)
                    try:
                        statement = (TRAILING_FORMAT.sub("", sql) + f" FROM INFILE '{tmp.name}' FORMAT "
                                     + (fmt.group(1) if fmt else "Native"))
                        con.query(statement, "TabSeparated", params=bound)
                    finally:
                        os.unlink(tmp.name)
                    return b""
                sql = params.get("query") or body.decode()
                # The statement's own FORMAT, passed as the engine's output format too: chDB's argument wins over the
                # clause for some statements (EXPLAIN).
                trailing = TRAILING_FORMAT.search(sql)
                fmt = trailing.group(1) if trailing else params.get("default_format") or "TabSeparated"
                return bytes(con.query(sql, fmt, params=bound).bytes())
            finally:
                if close:
                    con.close()

        def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-ClickHouse-Timezone", "UTC")
            self.send_header("X-ClickHouse-Summary", "{}")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(folder: str, port: int) -> None:
    engine = Engine(folder)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(engine))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
