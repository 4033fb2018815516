"""Safe on localhost: a local web app is reachable by every page the browser opens, so every
request passes three checks before a view runs, and every response carries headers that
keep other sites' pages out.

1. Host (DNS rebinding): a page on evil.example whose name later resolves to 127.0.0.1 is
   same-origin with itself, not with Lumara, but its requests reach us with
   `Host: evil.example`. Only Lumara's own names are answered (421 otherwise).
2. Origin (CSRF, cross-site websocket hijacking): a browser names the page that sent a POST,
   PUT, PATCH, DELETE or websocket handshake in `Origin`; any origin but Lumara's own is
   refused (403). Requests without one (curl, scripts) come from no web page and pass.
3. Access token: when Lumara listens beyond the loopback, other machines can reach it, so
   every request must carry the token from `<data_dir>/access-token` (401 otherwise).
"""

from __future__ import annotations

import logging
import urllib.parse

from flask import Flask, Response, g, jsonify, redirect, request

from ..access import TOKEN_FILE, AccessPolicy
from .context import current_services

log = logging.getLogger(__name__)

TOKEN_COOKIE = "lumara_token"
# 30 days from the last visit (each answer renews it): a browser left unused for a month
# asks for the token's address again; the token itself never expires.
TOKEN_COOKIE_MAX_AGE = 30 * 24 * 3600
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values that mean "not sent by another site's page": "none" is the user
# typing the address or opening a bookmark.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    # Chromium's 'self' covers the same-origin websocket (CSP Level 3); the explicit ws://
    # source is for browsers that predate that rule.
    "connect-src 'self'{websocket}; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # also keeps a ?token= address out of Referer
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Other sites may not even embed our responses (<img>, <script>) to probe them.
    "Cross-Origin-Resource-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    app.before_request(check_request)
    app.after_request(add_security_headers)


def policy() -> AccessPolicy:
    return current_services().access


def status() -> dict:
    """The checks in force, for /health."""
    return {"host_check": True, "origin_check": True, "token_required": policy().token_required}


# -- the checks -------------------------------------------------------------------------
def check_request() -> Response | None:
    """Refuse the request (a response) or let it through (None): host, origin, token."""
    return _check_host() or _check_origin() or _check_token()


def _check_host() -> Response | None:
    if "HTTP_HOST" not in request.environ:  # else werkzeug answers with the server's address
        return refuse(400, "host_required", "Send a Host header: every HTTP/1.1 client "
                                            "does.")
    # request.host is "" when the Host header has characters no host name has.
    if policy().allows_host(host_name(request.host)):
        return None
    shown = request.headers.get("Host", "")[:100]
    port = request.server[1] if request.server else "<port>"
    return refuse(421, "host_not_allowed",
                  f"Lumara does not answer to the host name {shown!r}: open it as "
                  f"http://127.0.0.1:{port}. If you reach it by another name on purpose, add "
                  f"the name with --allowed-hosts.")


def _check_origin() -> Response | None:
    if request.method not in STATE_CHANGING_METHODS and not is_websocket_handshake():
        return None
    what = "websocket handshake" if is_websocket_handshake() else request.method
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    # "Origin: null" (sandboxed frames, file: pages, some redirects) is never our own origin.
    if origin is not None and origin.lower() != own.lower():
        return refuse(403, "cross_origin_request",
                      f"Refused a {what} from the page at {origin[:100]!r}: only "
                      f"Lumara's own page ({own}) may change data or open the chat socket.")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in OWN_FETCH_SITES:
        return refuse(403, "cross_site_request",
                      f"Refused a {what} that the browser says came from another "
                      f"site (Sec-Fetch-Site: {fetch_site[:40]}).")
    return None


def _check_token() -> Response | None:
    rules = policy()
    if not rules.token_required:
        return None
    from_query = request.args.get("token")
    if from_query is not None and request.method in ("GET", "HEAD") \
            and not is_websocket_handshake():
        if not rules.token_matches(from_query):
            return _token_refused("invalid_token", "The token in the address is not this "
                                                   "Lumara's access token.")
        return _remember_token(from_query)
    presented = _bearer_token()
    if presented is None:
        presented = request.cookies.get(TOKEN_COOKIE)
    if presented is None:
        return _token_refused("token_required", "This Lumara listens beyond this machine, so "
                                                "it needs its access token.")
    if not rules.token_matches(presented):
        return _token_refused("invalid_token", "That is not this Lumara's access token.")
    if presented == request.cookies.get(TOKEN_COOKIE):
        g.renew_token_cookie = presented
    return None


def _bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _remember_token(token: str) -> Response:
    """Swap ?token= for a cookie and load the same address without it, so the token leaves
    the address bar and the history."""
    rest = [(key, value) for key, value in request.args.items(multi=True) if key != "token"]
    target = request.path + ("?" + urllib.parse.urlencode(rest) if rest else "")
    return _set_token_cookie(redirect(target, code=303), token)


def _set_token_cookie(response: Response, token: str) -> Response:
    # Secure also behind a proxy that ends TLS and says so: the header can only make the
    # cookie stricter.
    secure = request.is_secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(TOKEN_COOKIE, token, max_age=TOKEN_COOKIE_MAX_AGE, httponly=True,
                        samesite="Strict", secure=secure)
    return response


def _token_refused(code: str, problem: str) -> Response:
    response = refuse(401, code, f"{problem} Open the address Lumara printed at start-up "
                                 f"(…/?token=…), or send 'Authorization: Bearer <token>'; the "
                                 f"token is in the file {TOKEN_FILE} in Lumara's data folder.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="Lumara"'
    return response


def refuse(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


# -- headers ----------------------------------------------------------------------------
def add_security_headers(response: Response) -> Response:
    scheme = "wss" if request.is_secure else "ws"
    # request.host holds only host-name characters (werkzeug checks), so it cannot add a
    # directive; "" (no usable Host) leaves 'self' alone.
    websocket = f" {scheme}://{request.host}" if request.host else ""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(
        websocket=websocket)
    response.headers.update(SECURITY_HEADERS)
    if "renew_token_cookie" in g and not is_websocket_handshake():
        _set_token_cookie(response, g.renew_token_cookie)
    return response


# -- helpers ----------------------------------------------------------------------------
def host_name(host: str) -> str:
    """The name in a `Host` value, without port or brackets: '[::1]:5000' → '::1'."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.partition(":")[0].lower()


def is_websocket_handshake() -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"
