#!/usr/bin/env python3
"""A real HTTP receiver for trailwatch's sink tests, which tests can make slow, flaky or rejecting.

Usage: python3 receiver.py --kind ndjson|otlp --out PATH [--errors PATH] [--log]
                           [--tls-cert PEM --tls-key PEM [--client-ca PEM]]

With --tls-cert it serves HTTPS (control requests too), and with --client-ca it requires a
client certificate that CA signed (mutual TLS).

Prints exactly one line, `listening 127.0.0.1:PORT`, to stdout once it accepts connections, and
nothing more to stdout afterwards. Stop it by killing the process (SIGTERM or SIGKILL: every
accepted request is already fsynced to --out before it is answered). It also exits by itself once
its parent process goes away, so a panicking test cannot leak it.

Data requests
  ndjson: POST to any path not starting with `/_`; body is newline-delimited JSON objects.
  otlp:   POST /v1/logs, Content-Type: application/json, an OTLP/JSON ExportLogsServiceRequest.
  Both:   `Content-Encoding: gzip` is gunzipped first; chunked request bodies are accepted.
  Malformed payloads are answered 400 (415 for a wrong content type or encoding, 404/405 for a
  wrong path or method) and described, one JSON line each, in --errors (if given); nothing from
  such a request is written to --out.

Behaviour keys (POST /_control): fail, retry_after, reject, reset, delay_secs, stall,
partial_reject (see State.apply_control), and fault_rate: that share of data requests, drawn
from a seeded generator, gets one of RANDOM_FAULTS (counted in /_stats as random_faults).

Control (never delayed, stalled or failed)
  POST /_control  JSON object merged into the behaviour; answers the resulting behaviour.
  GET  /_control  the current behaviour.
  GET  /_stats    counters, see Stats.snapshot().
"""

import argparse
import base64
import binascii
import gzip
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOUR_KEYS = ("fail", "retry_after", "reject", "reset", "delay_secs", "stall", "partial_reject", "fault_rate")
# What `fault_rate` picks from, evenly: an error status (503 with Retry-After: 1, 429, 500), a
# connection reset before answering, a slow answer (1.5 s), or the lines taken and the answer cut
# off (so the sender cannot know and sends them again).
RANDOM_FAULTS = ("503", "429", "500", "reset", "slow", "cut")


class BadPayload(Exception):
    """A data request the receiver refuses because the sender got something wrong."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class State:
    def __init__(self, kind, out_path, errors_path):
        self.kind = kind
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        # Behaviour.
        self.fail = []
        self.retry_after = None
        self.reject = None
        self.reset = 0
        self.delay_secs = 0.0
        self.stall = False
        self.partial_reject = None
        self.fault_rate = 0.0
        self.rng = random.Random(7)
        self.random_faults = {}
        self.unstalled = threading.Event()
        self.unstalled.set()
        # Stats.
        self.requests = 0
        self.accepted_requests = 0
        self.accepted_lines = 0
        self.failed_requests = 0
        self.injected_failures = 0
        self.rejected_requests = 0
        self.resets = 0
        self.bad_requests = 0
        self.partial_rejections = 0
        self.last_headers = {}
        self.content_encodings = []
        self.max_request_lines = 0
        self.in_flight = 0
        self.stalled_now = 0
        # Files: created now (so tests can always read them), appended to, never truncated.
        self.out = open(out_path, "ab")
        self.errors = open(errors_path, "ab") if errors_path else None

    # -- behaviour ------------------------------------------------------------------------------

    def behaviour(self):
        return {
            "fail": list(self.fail),
            "retry_after": self.retry_after,
            "reject": self.reject,
            "reset": self.reset,
            "delay_secs": self.delay_secs,
            "fault_rate": self.fault_rate,
            "stall": self.stall,
            "partial_reject": self.partial_reject,
        }

    def apply_control(self, body):
        """Validates a whole control object first, then applies it; raises ValueError."""
        if not isinstance(body, dict):
            raise ValueError("control body must be a JSON object")
        unknown = sorted(set(body) - set(BEHAVIOUR_KEYS))
        if unknown:
            raise ValueError(f"unknown control keys {unknown}; known: {list(BEHAVIOUR_KEYS)}")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v):
            return (is_int(v) or isinstance(v, float)) and v >= 0

        if "fail" in body:
            f = body["fail"]
            if is_int(f):
                f = [f]
            if not (isinstance(f, list) and all(is_int(c) and 100 <= c <= 599 for c in f)):
                raise ValueError("fail must be a list of HTTP status codes")
        if "retry_after" in body:
            v = body["retry_after"]
            if not (v is None or is_num(v) or isinstance(v, str)):
                raise ValueError("retry_after must be seconds, a string or null")
        if "reject" in body:
            v = body["reject"]
            if not (v is None or (is_int(v) and 100 <= v <= 599)):
                raise ValueError("reject must be an HTTP status code or null")
        if "reset" in body and not (is_int(body["reset"]) and body["reset"] >= 0):
            raise ValueError("reset must be a non-negative integer")
        if "delay_secs" in body and not (body["delay_secs"] is None or is_num(body["delay_secs"])):
            raise ValueError("delay_secs must be a non-negative number")
        if "fault_rate" in body and not (is_num(body["fault_rate"]) and body["fault_rate"] <= 1):
            raise ValueError("fault_rate must be a number from 0 to 1")
        if "stall" in body and not isinstance(body["stall"], bool):
            raise ValueError("stall must be true or false")
        if "partial_reject" in body:
            v = body["partial_reject"]
            if self.kind != "otlp":
                raise ValueError("partial_reject is for --kind otlp only")
            if not (v is None or (is_int(v) and v >= 0)):
                raise ValueError("partial_reject must be a non-negative integer or null")

        with self.lock:
            if "fail" in body:
                f = body["fail"]
                self.fail = [f] if is_int(f) else list(f)
            if "retry_after" in body:
                self.retry_after = body["retry_after"]
            if "reject" in body:
                self.reject = body["reject"]
            if "reset" in body:
                self.reset = body["reset"]
            if "delay_secs" in body:
                self.delay_secs = float(body["delay_secs"] or 0)
            if "fault_rate" in body:
                self.fault_rate = float(body["fault_rate"])
            if "partial_reject" in body:
                self.partial_reject = body["partial_reject"]
            if "stall" in body:
                self.stall = body["stall"]
                if self.stall:
                    self.unstalled.clear()
                else:
                    self.unstalled.set()
            return self.behaviour()

    # -- stats ----------------------------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "accepted_requests": self.accepted_requests,
                "accepted_lines": self.accepted_lines,
                "failed_requests": self.failed_requests,
                "last_headers": dict(self.last_headers),
                "content_encodings": list(self.content_encodings),
                "max_request_lines": self.max_request_lines,
                # Extras.
                "injected_failures": self.injected_failures,
                "random_faults": dict(self.random_faults),
                "rejected_requests": self.rejected_requests,
                "resets": self.resets,
                "bad_requests": self.bad_requests,
                "partial_rejections": self.partial_rejections,
                "in_flight": self.in_flight,
                "stalled_now": self.stalled_now,
                "behaviour": self.behaviour(),
            }

    def count_failed(self, field):
        with self.lock:
            self.failed_requests += 1
            setattr(self, field, getattr(self, field) + 1)

    def record_error(self, method, path, status, message, body):
        if self.errors is None:
            return
        entry = {
            "time": time.time(),
            "method": method,
            "path": path,
            "status": status,
            "error": message,
            "body_prefix": body[:300].decode("utf-8", "replace") if body else "",
        }
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        with self.write_lock:
            self.errors.write(line)
            self.errors.flush()
            os.fsync(self.errors.fileno())

    def accept(self, lines, headers, encoding):
        """Durably appends lines (bytes, no newline) to --out, then counts the request."""
        data = b"".join(line + b"\n" for line in lines)
        with self.write_lock:
            self.out.write(data)
            self.out.flush()
            os.fsync(self.out.fileno())
        with self.lock:
            self.accepted_requests += 1
            self.accepted_lines += len(lines)
            self.max_request_lines = max(self.max_request_lines, len(lines))
            self.last_headers = headers
            self.content_encodings.append(encoding)


# -- strict JSON ---------------------------------------------------------------------------------


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


def _pairs_no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def strict_loads(text):
    """json.loads that refuses NaN/Infinity and duplicate object keys."""
    return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_pairs_no_duplicates)


# -- ndjson --------------------------------------------------------------------------------------


def parse_ndjson(body):
    if not body:
        raise BadPayload(400, "empty body: expected at least one NDJSON line")
    raw_lines = body.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()  # the optional trailing newline
    lines = []
    for i, raw in enumerate(raw_lines, start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadPayload(400, f"line {i}: not UTF-8: {e}")
        if not text.strip():
            raise BadPayload(400, f"line {i}: empty line")
        try:
            obj = strict_loads(text)
        except ValueError as e:
            raise BadPayload(400, f"line {i}: invalid JSON: {e}")
        if not isinstance(obj, dict):
            raise BadPayload(400, f"line {i}: expected a JSON object, got {type(obj).__name__}")
        lines.append(line)
    return lines


# -- otlp ----------------------------------------------------------------------------------------

_otlp = None


def otlp_modules():
    global _otlp
    if _otlp is None:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        _otlp = (json_format, logs_service_pb2)
    return _otlp


# OTLP/JSON encodes these bytes fields as hex, where ProtoJSON would use base64.
_HEX_FIELDS = {"traceId": 16, "spanId": 8}


def _check_otlp_json(node, path):
    """OTLP/JSON rules protobuf's parser does not enforce: lowerCamelCase keys, integer enums,
    and hex trace/span ids (which are converted to base64 here, in place, for the parser)."""
    if isinstance(node, dict):
        for k in list(node):
            v = node[k]
            p = f"{path}.{k}"
            if "_" in k:
                raise BadPayload(400, f"{p}: OTLP/JSON keys must be lowerCamelCase")
            if k == "severityNumber" and not (isinstance(v, int) and not isinstance(v, bool)):
                raise BadPayload(400, f"{p}: OTLP/JSON enums must be integers, got {v!r}")
            if k in _HEX_FIELDS and path.endswith("]") and ".logRecords[" in path:
                if not isinstance(v, str):
                    raise BadPayload(400, f"{p}: must be a hex string")
                if v == "":
                    continue
                if len(v) != 2 * _HEX_FIELDS[k]:
                    raise BadPayload(400, f"{p}: must be {2 * _HEX_FIELDS[k]} hex digits, got {v!r}")
                try:
                    node[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    raise BadPayload(400, f"{p}: not hex: {v!r}")
                continue
            _check_otlp_json(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_otlp_json(v, f"{path}[{i}]")


def any_value(v):
    """An OTLP AnyValue as a plain python value."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return v.bool_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def parse_otlp(body):
    json_format, logs_service_pb2 = otlp_modules()
    try:
        text = body.decode("utf-8")
        tree = strict_loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadPayload(400, f"invalid JSON: {e}")
    if not isinstance(tree, dict):
        raise BadPayload(400, "expected a JSON object")
    _check_otlp_json(tree, "$")
    req = logs_service_pb2.ExportLogsServiceRequest()
    try:
        json_format.ParseDict(tree, req)  # strict: unknown fields are errors
    except json_format.ParseError as e:
        raise BadPayload(400, f"not an ExportLogsServiceRequest: {e}")
    lines = []
    for rl in req.resource_logs:
        resource = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            scope = {"name": sl.scope.name, "version": sl.scope.version}
            for rec in sl.log_records:
                d = json_format.MessageToDict(rec, preserving_proto_field_name=False)
                for k in _HEX_FIELDS:
                    if k in d:
                        d[k] = base64.b64decode(d[k]).hex()
                line = {"resource": resource, "scope": scope, "record": d}
                lines.append(json.dumps(line, separators=(",", ":")).encode())
    return lines


# -- HTTP ----------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "trailwatch-test-receiver/1"
    state: State = None  # set in main
    log_enabled = False

    def log_message(self, format, *args):
        if self.log_enabled:
            sys.stderr.write("receiver: %s - %s\n" % (self.address_string(), format % args))

    # -- plumbing -------------------------------------------------------------------------------

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise BadPayload(400, "truncated chunked body")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadPayload(400, f"bad chunk size line {size_line!r}")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BadPayload(400, f"bad Content-Length {length!r}")
        return self.rfile.read(n)

    def reply(self, status, body, content_type="application/json", extra_headers=()):
        if isinstance(body, str):
            body = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def reply_json(self, status, obj):
        self.reply(status, json.dumps(obj, separators=(",", ":")))

    def abort_connection(self):
        """Closes the TCP connection without an answer, with an RST if the OS allows."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # after abort_connection

    # -- routing --------------------------------------------------------------------------------

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/_stats":
            self.reply_json(200, self.state.snapshot())
        elif path == "/_control":
            with self.state.lock:
                b = self.state.behaviour()
            self.reply_json(200, b)
        elif path.startswith("/_"):
            self.reply(404, "no such control endpoint", "text/plain")
        else:
            self.data_request()

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path == "/_control":
            try:
                body = self.read_body()
                ctl = strict_loads(body.decode("utf-8"))
                b = self.state.apply_control(ctl)
            except (BadPayload, ValueError, UnicodeDecodeError) as e:
                self.reply(400, f"bad control request: {e}", "text/plain")
                return
            self.reply_json(200, b)
        elif path.startswith("/_"):
            self.read_body()
            self.reply(404, "no such control endpoint", "text/plain")
        else:
            self.data_request()

    def do_PUT(self):
        self.data_request()

    do_DELETE = do_PATCH = do_PUT

    # -- data -----------------------------------------------------------------------------------

    def data_request(self):
        st = self.state
        try:
            body = self.read_body()
        except BadPayload as e:
            body, early = b"", e
            self.close_connection = True  # the framing is lost
        else:
            early = None
        with st.lock:
            st.requests += 1
            st.in_flight += 1
        try:
            self._data_request(body, early)
        finally:
            with st.lock:
                st.in_flight -= 1

    def _data_request(self, body, early):
        st = self.state
        # Slow or stalled receiver: applies to every data request.
        if not st.unstalled.is_set():
            with st.lock:
                st.stalled_now += 1
            st.unstalled.wait()
            with st.lock:
                st.stalled_now -= 1
        with st.lock:
            delay = st.delay_secs
        if delay > 0:
            time.sleep(delay)

        # A random fault (fault_rate), then the injected misbehaviour, in this order: reset,
        # fail queue, reject.
        with st.lock:
            fault = None
            if st.fault_rate > 0 and st.rng.random() < st.fault_rate:
                fault = st.rng.choice(RANDOM_FAULTS)
                st.random_faults[fault] = st.random_faults.get(fault, 0) + 1
        if fault == "slow":
            time.sleep(1.5)
        elif fault == "reset":
            st.count_failed("resets")
            self.abort_connection()
            return
        elif fault in ("503", "429", "500"):
            st.count_failed("injected_failures")
            extra = [("Retry-After", "1")] if fault == "503" else []
            self.reply(int(fault), "injected failure", "text/plain", extra)
            return
        with st.lock:
            do_reset = st.reset > 0
            if do_reset:
                st.reset -= 1
            code = None
            if not do_reset and st.fail:
                code = st.fail.pop(0)
            reject = st.reject
            retry_after = st.retry_after
        if do_reset:
            st.count_failed("resets")
            self.abort_connection()
            return
        if code is not None:
            st.count_failed("injected_failures")
            extra = []
            if code in (429, 503) and retry_after is not None:
                if isinstance(retry_after, float) and retry_after.is_integer():
                    retry_after = int(retry_after)
                extra.append(("Retry-After", str(retry_after)))
            self.reply(code, "injected failure", "text/plain", extra)
            return
        if reject is not None:
            st.count_failed("rejected_requests")
            self.reply_json(reject, {"error": "rejected by test receiver"})
            return

        # The real thing.
        try:
            if early is not None:
                raise early
            lines, encoding = self.decode(body)
        except BadPayload as e:
            st.count_failed("bad_requests")
            st.record_error(self.command, self.path, e.status, e.message, body)
            self.reply(e.status, e.message + "\n", "text/plain")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        st.accept(lines, headers, encoding)
        if fault == "cut":
            # Taken, but the answer stops halfway: the sender cannot know, and sends it again.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"accepted":')
            self.wfile.flush()
            self.abort_connection()
            return
        if st.kind == "otlp":
            with st.lock:
                n = st.partial_reject
                st.partial_reject = None
                if n is not None:
                    st.partial_rejections += 1
            if n is not None:
                self.reply_json(
                    200,
                    {"partialSuccess": {"rejectedLogRecords": str(n), "errorMessage": "test partial rejection"}},
                )
            else:
                self.reply_json(200, {})
        else:
            self.reply_json(200, {"accepted": len(lines)})

    def decode(self, body):
        """Checks method, path, headers and body; returns (lines, content-encoding or None)."""
        st = self.state
        path = self.path.split("?", 1)[0]
        if self.command != "POST":
            raise BadPayload(405, f"method {self.command} not allowed: POST data")
        if st.kind == "otlp" and path != "/v1/logs":
            raise BadPayload(404, f"OTLP logs go to POST /v1/logs, not {path}")
        encoding = self.headers.get("Content-Encoding")
        enc = (encoding or "identity").strip().lower()
        if enc == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as e:
                raise BadPayload(400, f"Content-Encoding: gzip but the body does not gunzip: {e}")
        elif enc != "identity":
            raise BadPayload(415, f"unsupported Content-Encoding {encoding!r}")
        if st.kind == "otlp":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise BadPayload(415, f"expected Content-Type: application/json, got {ctype!r}")
            lines = parse_otlp(body)
        else:
            lines = parse_ndjson(body)
        return lines, encoding


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)  # to stderr


def watch_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["ndjson", "otlp"], required=True)
    ap.add_argument("--out", required=True, help="accepted lines are appended here (created at start)")
    ap.add_argument("--errors", help="malformed-payload descriptions are appended here (created at start)")
    ap.add_argument("--log", action="store_true", help="log requests to stderr")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; --tls-key its key)")
    ap.add_argument("--tls-key", help="the key of --tls-cert (PEM)")
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA (PEM): mutual TLS")
    args = ap.parse_args()

    if args.kind == "otlp":
        otlp_modules()  # fail fast (before the listening line) if the packages are missing
    Handler.state = State(args.kind, args.out, args.errors)
    Handler.log_enabled = args.log
    server = Server(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        # A failed handshake (an unknown CA, no client certificate) fails that connection only.
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    host, port = server.server_address[:2]
    sys.stdout.write(f"listening {host}:{port}\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr  # nothing else may reach stdout
    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
