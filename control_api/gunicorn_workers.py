"""gunicorn's workers, answering what gunicorn refuses by itself in the API's shape.

gunicorn reads the request line and the headers before the app sees anything, and
refuses some requests on its own: a request line over `limit_request_line` (414),
more than `limit_request_fields` headers or one over `limit_request_field_size`
(431), malformed HTTP (400), and an error before the app answered (500). Its own
answer is an HTML page without the security headers; these workers send the API's
JSON {"title", "description"} with the headers every other answer carries.
"""

from __future__ import annotations

import http
import json
import ssl

from gunicorn import glogging, util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from control_api.clock import SecretTokens
from control_api.middleware import SECURITY_HEADERS

# (exception, status, title, description), most specific first, with the statuses
# gunicorn's own Worker.handle_error gives them.
_REFUSALS = (
    ((errors.InvalidResponseHeader, errors.InvalidResponseHeaderName), 500, "Internal error",
     "the server could not answer the request"),
    (errors.LimitRequestLine, 414, "URI too long",
     "the request line (method, path and query) must be at most {line} bytes"),
    (errors.LimitRequestHeaders, 431, "Request headers too large",
     "send at most {fields} header fields, each at most {field_size} bytes"),
    (errors.ExpectationFailed, 417, "Expectation failed", "the only expectation served is 100-continue"),
    (errors.UnsupportedTransferCoding, 501, "Transfer coding not implemented",
     "send the body with Content-Length or Transfer-Encoding: chunked"),
    ((errors.ForbiddenProxyRequest, ssl.SSLError), 403, "Forbidden", "the connection is not allowed"),
    (errors.ConfigurationProblem, 500, "Internal error", "the server could not answer the request"),
    (errors.ParseException, 400, "Malformed request", "the request is not valid HTTP/1.1"),
)


def refusal(exc: BaseException, limits: dict) -> tuple[int, str, str]:
    """The status, title and description gunicorn's failure `exc` gets."""
    for kinds, status, title, description in _REFUSALS:
        if isinstance(exc, kinds):
            return status, title, description.format(**limits)
    return 500, "Internal error", "the server could not answer the request"


def error_response(status: int, title: str, description: str, request_id: str) -> bytes:
    body = json.dumps({"title": title, "description": description}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)),
               "Connection": "close", **SECURITY_HEADERS, "X-Request-Id": request_id}
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1") + body


class _JsonErrors:
    """Replaces gunicorn's Worker.handle_error, which it calls only before any byte of
    an answer was sent."""

    def handle_error(self, req, client, addr, exc) -> None:
        limits = {"line": self.cfg.limit_request_line, "fields": self.cfg.limit_request_fields,
                  "field_size": self.cfg.limit_request_field_size}
        status, title, description = refusal(exc, limits)
        request_id = SecretTokens().request_id()
        if status >= 500:
            self.log.exception("error handling request (request id %s)", request_id)
            description = f"{description} (request id {request_id})"
        else:
            ip = addr[0] if addr else ""
            self.log.warning("invalid request from ip=%s (request id %s): %s", ip, request_id, exc)
        try:
            util.write_nonblock(client, error_response(status, title, description, request_id))
        except Exception:  # the client may be gone already
            self.log.debug("failed to send the error response")


class SyncJsonWorker(_JsonErrors, SyncWorker):
    pass


class ThreadJsonWorker(_JsonErrors, ThreadWorker):
    pass


def worker_class(threads: int) -> type:
    """gunicorn picks its threaded worker for threads > 1 only when named by string;
    given a class, it takes it as it is, so choose here."""
    return ThreadJsonWorker if threads > 1 else SyncJsonWorker


class Logger(glogging.Logger):
    """gunicorn's logger without its access log. Our middleware writes the access line
    (with the request id and the user); gunicorn, seeing a logging configuration, would
    format its own access atoms on every request only for the line to be dropped."""

    def access(self, resp, req, environ, request_time) -> None:
        return None
