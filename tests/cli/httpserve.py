#!/usr/bin/env python3
"""A small HTTP server for nook's pull tests, on 127.0.0.1 only.

Serves files from a directory with Range support (and an ETag, a hash of
the file's bytes, that If-Range must match for a range to be sent), logs
each request's path and Range header (and If-Range, when there is one)
to a file, and can cut the first transfer of a file short to simulate an
interrupted download; a file NAME.redirect sends the client (302) to the
URL it holds when NAME is asked for; NAME.weak makes NAME's ETag weak
(W/"...") and adds its Last-Modified; NAME.status (a number) answers a
request for NAME with no Range with that status:
    httpserve.py DIR LOG [--drop-after BYTES]
Prints the port it listens on, then serves until killed.
"""
import email.utils
import hashlib
import http.server
import os
import sys

root, log = sys.argv[1], sys.argv[2]
drop_after = int(sys.argv[4]) if len(sys.argv) > 4 else None
dropped = set()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        with open(log, "a") as f:
            f.write(f"{self.path} {rng or '-'}"
                    + (f" if-range={if_range}" if if_range else "") + "\n")
        if os.path.isfile(path + ".redirect"):
            self.send_response(302)
            self.send_header("Location",
                             open(path + ".redirect").read().strip())
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not os.path.isfile(path):
            self.send_error(404)
            return
        if os.path.isfile(path + ".status") and not rng:
            self.send_error(int(open(path + ".status").read()))
            return
        data = open(path, "rb").read()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        weak = os.path.isfile(path + ".weak")
        if weak:
            etag = "W/" + etag
        start = 0
        if if_range is not None and if_range != etag:
            rng = None  # the file changed: all of it, not a range
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if rng and rng.startswith("bytes="):
            self.send_response(206)
            self.send_header("Content-Range",
                             f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("ETag", etag)
        if weak:
            self.send_header("Last-Modified", email.utils.formatdate(
                os.path.getmtime(path), usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drop_after is not None and self.path not in dropped and not rng:
            dropped.add(self.path)
            self.wfile.write(body[:drop_after])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
