"""Local web for the `download --urls` benchmark: one threaded HTTP/1.1 server per port on
127.0.0.1 (each port is one host to datamill), serving an allow-all robots.txt and a 5 kB HTML
page for every /page/N. Usage: bench_fetch_server.py FIRST_PORT COUNT (runs until killed)."""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PARA = ("<p>The committee met on Tuesday to review the annual report on water quality in the "
        "northern district, and agreed that the new filtration plant reduced contamination.</p>")
PAGE = ("<!DOCTYPE html><html><head><title>Report</title></head><body><article>"
        + PARA * 28 + "</article></body></html>").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response and no Nagle delay, so no client waits on delayed ACKs.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/robots.txt":
            body, ctype = b"User-agent: *\nDisallow:\n", "text/plain"
        elif self.path.startswith("/page/"):
            body, ctype = PAGE, "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    first, count = int(sys.argv[1]), int(sys.argv[2])
    servers = [ThreadingHTTPServer(("127.0.0.1", first + i), Handler) for i in range(count)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
