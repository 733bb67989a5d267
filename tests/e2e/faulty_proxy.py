"""A small HTTP proxy that stands in for a faulty Kubernetes API server.

It forwards every request to a real `trainyard server` and, when a test asks, answers as an
API server under stress or restarting does: 429 with Retry-After, a 5xx, 410 Gone on a watch
(the resourceVersion left the history), an ERROR event with code 410 inside a watch, a BOOKMARK,
a watch connection dropped mid-stream, or 401 to a token that has expired. Faults are queued: `watch_faults` are taken one per
watch request, in order; `request_faults` one per matching non-watch request.
"""
import http.client
import http.server
import json
import socket
import ssl
import threading
import urllib.parse


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FaultyProxy:
    def __init__(self, upstream_url, tls=None):
        """tls: (certificate file, key file, CA file of the client certificates it requires)
        to serve HTTPS as an API server does; None: plain HTTP."""
        u = urllib.parse.urlparse(upstream_url)
        self.upstream = (u.hostname, u.port)
        self.lock = threading.Lock()
        self.watch_faults = []      # dicts, one per watch request (see _watch)
        self.request_faults = []    # (method, path prefix, status, headers)
        self.log = []               # (method, path) of every request seen
        self.bookmarks = []         # resourceVersions of the bookmarks sent
        self.require_token = None   # when set, other bearer tokens get 401 (an expired token)
        self.auth_seen = []         # the Authorization headers seen
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(tls[2])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.server.handle_error = lambda *a: None  # refused handshakes are the tests' point
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def watch_requests(self):
        with self.lock:
            return [p for m, p in self.log if "watch=1" in p or "watch=true" in p]

    # ---- plumbing ----

    def _upstream(self, h, body, path=None):
        conn = http.client.HTTPConnection(*self.upstream, timeout=600)
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("host", "connection", "content-length")}
        conn.request(h.command, path or h.path, body=body, headers=headers)
        return conn, conn.getresponse()

    def _reply(self, h, code, obj, headers=()):
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else None
        q = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        is_watch = q.get("watch", [""])[0] in ("1", "true")
        with self.lock:
            self.log.append((h.command, h.path))
            self.auth_seen.append(h.headers.get("Authorization"))
            if self.require_token and \
                    h.headers.get("Authorization") != f"Bearer {self.require_token}":
                self._reply(h, 401, status_body(401, "Unauthorized", "Unauthorized"))
                return
            fault = None
            if is_watch:
                fault = self.watch_faults.pop(0) if self.watch_faults else None
            else:
                for i, (m, prefix, status, headers) in enumerate(self.request_faults):
                    if m == h.command and h.path.startswith(prefix):
                        fault = self.request_faults.pop(i)
                        break
        if fault is not None and not is_watch:
            _, _, status, headers = fault
            self._reply(h, status, status_body(status, "TooManyRequests" if status == 429
                                               else "InternalError", f"injected {status}"),
                        headers)
            return
        if is_watch:
            self._watch(h, body, q, fault or {})
            return
        conn, resp = self._upstream(h, body)
        data = resp.read()
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        conn.close()

    def _drop(self, h):
        """Ends the connection mid-stream: no terminating chunk, as a crashed server or a cut
        network would."""
        h.wfile.flush()
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        h.close_connection = True

    def _chunk(self, h, data):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    def _watch(self, h, body, q, fault):
        """fault keys: hold (a threading.Event: the request waits until the test sets it, so
        the test can change things while the client has no watch), status (answer it with this HTTP
        status; retry_after: its header), gone (HTTP 410), bookmark_then_drop (an honest
        bookmark at the collection's current resourceVersion when nothing newer of the
        selection exists, then a drop), drop_after (forward N events, then drop),
        error_410_after (forward N events, then an ERROR event with code 410)."""
        if fault.get("hold"):
            fault["holding"] = True
            fault["hold"].wait(30)
        if fault.get("status"):
            hdr = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            self._reply(h, fault["status"], status_body(fault["status"], "InternalError",
                                                        "injected"), hdr)
            return
        if fault.get("gone"):
            self._reply(h, 410, status_body(410, "Expired", "too old resource version: injected"))
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if fault.get("bookmark_then_drop"):
            want = int(q.get("resourceVersion", ["0"])[0] or 0)
            list_path = urllib.parse.urlparse(h.path).path
            conn = http.client.HTTPConnection(*self.upstream, timeout=30)
            conn.request("GET", list_path)
            lst = json.loads(conn.getresponse().read())
            conn.close()
            newest = max([int(i["metadata"]["resourceVersion"]) for i in lst["items"]] + [0])
            if newest <= want:
                rv = lst["metadata"]["resourceVersion"]
                with self.lock:
                    self.bookmarks.append(rv)
                ev = {"type": "BOOKMARK", "object": {"kind": "Event", "apiVersion": "v1",
                                                     "metadata": {"resourceVersion": rv}}}
                self._chunk(h, json.dumps(ev).encode() + b"\n")
            self._drop(h)
            return
        conn, resp = self._upstream(h, body)
        forwarded = 0
        limit = fault.get("drop_after", fault.get("error_410_after"))
        try:
            while True:
                line = resp.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                self._chunk(h, line)
                if json.loads(line).get("type") != "BOOKMARK":
                    forwarded += 1
                if limit is not None and forwarded >= limit:
                    if "error_410_after" in fault:
                        ev = {"type": "ERROR", "object": status_body(
                            410, "Expired", "The resourceVersion for the provided watch is too "
                            "old: injected")}
                        self._chunk(h, json.dumps(ev).encode() + b"\n")
                        h.wfile.write(b"0\r\n\r\n")
                        h.wfile.flush()
                    else:
                        self._drop(h)
                    return
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True
        finally:
            conn.close()
