"""Safe on localhost (lumara_web/web/security.py): the attacks a web page can make on a local
app — DNS rebinding, cross-site requests, cross-site websocket hijacking — are refused; the
app's own page, scripts without an Origin and, off the loopback, holders of the token pass."""

from __future__ import annotations

import http.client
import json
import stat

import pytest
from simple_websocket import Client
from simple_websocket import ConnectionError as HandshakeRefused

from lumara_web import create_app
from lumara_web.errors import ConfigError
from lumara_web.server import print_access_address
from lumara_web.web import security

from .fakes import FakeEmbedder, FakeEngine
from .helpers import WAIT, LiveServer, close, error_code, receive_until, send

EVIL = "http://evil.example"
CSP_PARTS = ("default-src 'self'", "script-src 'self'", "style-src 'self'",
             "img-src 'self' data:", "connect-src 'self' ws://localhost",
             "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
             "object-src 'none'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin"}


def start_app(tmp_path, name="data", **settings):
    """The app as it starts on tmp_path/name (these tests are about what start-up does)."""
    return create_app({"data_dir": str(tmp_path / name), "embedder": FakeEmbedder(),
                       "engine": FakeEngine(), **settings})


@pytest.fixture
def token_app(make_app):
    """Listening on every interface: the token is required."""
    return make_app(host="0.0.0.0")


def token_of(app) -> str:
    return app.extensions["lumara"].access.token


def add_memory(client, content="My sister Ana lives in Lisbon.", **headers) -> int:
    response = client.post("/api/memories", json={"content": content}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["memory"]["id"]


# -- the app's own page and headers -----------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/metrics", "/health", "/api/memories",
                                  "/static/app.js", "/static/app.css", "/no-such-page"])
def test_every_response_carries_the_security_headers(client, path):
    with client.get(path) as response:  # closed: a static file's handle with it
        check_headers(response, path)


def check_headers(response, path):
    assert response.status_code == (404 if path == "/no-such-page" else 200)
    policy = response.headers["Content-Security-Policy"]
    for part in CSP_PARTS:
        assert part in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    for name, value in HEADERS.items():
        assert response.headers[name] == value


def test_refusals_carry_the_headers_too(client):
    response = client.post("/api/memories", json={"content": "x"}, headers={"Origin": EVIL})
    assert response.status_code == 403
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_pages_have_no_inline_script_or_style(client):
    for path in ("/", "/metrics"):
        html = client.get(path).get_data(as_text=True)
        assert "<style" not in html and " style=" not in html
        assert all("src=" in tag for tag in html.split("<script")[1:])
        assert " onclick=" not in html and " onload=" not in html


def test_health_reports_the_checks(client):
    health = client.get("/health").get_json()
    assert health["offline"] is True
    assert health["security"] == {"host_check": True, "origin_check": True,
                                  "token_required": False}


# -- Host: DNS rebinding ----------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "localhost.evil.example",
                                  "127.0.0.1.nip.io:5000", "192.168.1.20:5000",
                                  "evil.example@localhost", ""])
@pytest.mark.parametrize("path", ["/", "/api/memories", "/health", "/static/app.js"])
def test_a_foreign_host_name_is_refused(client, host, path):
    response = client.get(path, headers={"Host": host})
    assert response.status_code == 421
    assert error_code(response) == "host_not_allowed"
    assert "--allowed-hosts" in response.get_json()["error"]["message"]


def test_a_rebound_name_cannot_change_data(app, client):
    response = client.post("/api/memories", json={"content": "Planted by evil.example."},
                           headers={"Host": "evil.example:5000"})
    assert response.status_code == 421
    assert client.get("/api/memories").get_json()["items"] == []


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "LocalHost:8080",
                                  "127.0.0.1:5000", "127.0.0.1", "[::1]:5000", "[::1]"])
def test_the_loopback_names_are_answered_on_any_port(client, host):
    # The port is not what DNS rebinding changes, and an SSH tunnel or port forward may.
    assert client.get("/health", headers={"Host": host}).status_code == 200


def test_extra_names_can_be_allowed(make_app):
    client = make_app(allowed_hosts="mybox.local, [FD00::5]").test_client()
    assert client.get("/health", headers={"Host": "mybox.local:5000"}).status_code == 200
    assert client.get("/health", headers={"Host": "[fd00::5]:5000"}).status_code == 200
    assert client.get("/health", headers={"Host": "otherbox.local"}).status_code == 421


def test_the_configured_host_is_answered(make_app):
    app = make_app(host="192.168.1.20")
    auth = {"Authorization": f"Bearer {token_of(app)}"}
    client = app.test_client()
    assert client.get("/health", headers={"Host": "192.168.1.20:5000", **auth}).status_code == 200
    assert client.get("/health", headers={"Host": "192.168.1.21:5000", **auth}).status_code == 421


def test_on_every_interface_ip_addresses_are_answered_but_names_are_not(token_app):
    # An IP address cannot be rebound to another machine; a name can.
    client = token_app.test_client()
    auth = {"Authorization": f"Bearer {token_of(token_app)}"}
    assert client.get("/health", headers={"Host": "192.168.1.20:5000", **auth}).status_code == 200
    assert client.get("/health", headers={"Host": "[fd00::5]:5000", **auth}).status_code == 200
    assert client.get("/health", headers={"Host": "evil.example:5000", **auth}).status_code == 421


# -- Origin: CSRF and cross-site websocket hijacking ------------------------------------
CROSS_ORIGINS = [EVIL, "null", "http://localhost:3000", "https://localhost",
                 "http://127.0.0.1", "http://localhost.evil.example"]


@pytest.mark.parametrize("origin", CROSS_ORIGINS)
def test_a_cross_origin_post_is_refused_and_adds_nothing(client, origin):
    response = client.post("/api/memories", json={"content": "Planted by another site."},
                           headers={"Origin": origin})
    assert response.status_code == 403
    assert error_code(response) == "cross_origin_request"
    assert origin in response.get_json()["error"]["message"]
    assert client.get("/api/memories").get_json()["items"] == []


@pytest.mark.parametrize("origin", [EVIL, "null"])
def test_cross_origin_patch_and_delete_are_refused(client, origin):
    memory_id = add_memory(client)
    path = f"/api/memories/{memory_id}"
    patched = client.patch(path, json={"content": "Changed by another site."},
                           headers={"Origin": origin})
    deleted = client.delete(path, headers={"Origin": origin})
    put = client.put(path, json={}, headers={"Origin": origin})
    assert (patched.status_code, deleted.status_code, put.status_code) == (403, 403, 403)
    memory = client.get(path).get_json()
    assert memory["memory"]["content"] == "My sister Ana lives in Lisbon."


def test_a_cross_origin_form_post_is_refused(client):
    # The classic CSRF: an HTML form needs no preflight and sends text/plain or form data.
    response = client.post("/api/metrics/page-load", data="ms=1",
                           content_type="application/x-www-form-urlencoded",
                           headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_the_browser_saying_cross_site_is_refused_even_without_origin(client, site):
    response = client.post("/api/memories", json={"content": "Planted."},
                           headers={"Sec-Fetch-Site": site})
    assert response.status_code == 403
    assert error_code(response) == "cross_site_request"


def test_a_cross_origin_websocket_handshake_is_refused_before_the_socket_opens(client):
    response = client.get("/ws/chat", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                               "Origin": EVIL})
    assert response.status_code == 403


def test_the_own_page_may_post(client):
    add_memory(client, Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"})
    response = client.post("/api/memories", json={"content": "My dog is called Rex."},
                           headers={"Host": "127.0.0.1:5000", "Origin": "http://127.0.0.1:5000"})
    assert response.status_code == 201


def test_scripts_without_an_origin_may_post(client):
    add_memory(client)


def test_cross_origin_reads_are_left_to_the_browser(client):
    # A GET changes nothing and the browser withholds the body (no CORS headers).
    response = client.get("/api/memories", headers={"Origin": EVIL})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


# -- the access token, off the loopback -------------------------------------------------
def test_loopback_binding_needs_no_token(tmp_path):
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        app = start_app(tmp_path, name=host, host=host)
        assert app.extensions["lumara"].access.token_required is False
        assert not (tmp_path / host / security.TOKEN_FILE).exists()


@pytest.mark.parametrize("path", ["/", "/health", "/api/memories", "/static/app.js"])
def test_without_the_token_everything_is_refused(token_app, path):
    response = token_app.test_client().get(path)
    assert response.status_code == 401
    assert error_code(response) == "token_required"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="Lumara"'
    assert "Authorization: Bearer" in response.get_json()["error"]["message"]


def test_the_bearer_token_opens_everything(token_app):
    client = token_app.test_client()
    auth = {"Authorization": f"Bearer {token_of(token_app)}"}
    assert client.get("/", headers=auth).status_code == 200
    health = client.get("/health", headers=auth).get_json()
    assert health["security"]["token_required"] is True
    add_memory(client, **auth)


@pytest.mark.parametrize("presented", ["wrong", "", "é" * 43, "Basic abc"])
def test_a_wrong_token_is_refused(token_app, presented):
    client = token_app.test_client()
    wrong = token_of(token_app)[:-1] + ("A" if token_of(token_app)[-1] != "A" else "B")
    for value in (wrong, presented):
        header = value if value.startswith("Basic") else f"Bearer {value}"
        response = client.get("/health", headers={"Authorization": header})
        assert response.status_code == 401
    response = client.get("/", query_string={"token": presented or wrong})
    assert response.status_code == 401 and error_code(response) == "invalid_token"
    client.set_cookie(security.TOKEN_COOKIE, wrong)
    assert client.get("/health").status_code == 401


def test_the_token_in_the_address_becomes_a_cookie(token_app):
    client = token_app.test_client()
    response = client.get("/metrics", query_string={"format": "json", "token": token_of(token_app)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/metrics?format=json"  # the token is gone
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{security.TOKEN_COOKIE}={token_of(token_app)};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    # The test client keeps the cookie, as a browser does; each visit renews its 30 days.
    renewed = client.get("/metrics?format=json")
    assert renewed.status_code == 200 and "Max-Age=2592000" in renewed.headers["Set-Cookie"]
    add_memory(client)


def test_behind_a_proxy_that_ends_tls_the_token_cookie_is_secure(token_app):
    response = token_app.test_client().get(
        "/", query_string={"token": token_of(token_app)},
        headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


def test_the_token_in_the_address_does_not_authorize_a_post(token_app):
    response = token_app.test_client().post(
        "/api/memories", query_string={"token": token_of(token_app)}, json={"content": "x"})
    assert response.status_code == 401


def test_the_token_file_is_private_and_reused(tmp_path):
    first = start_app(tmp_path, host="0.0.0.0").extensions["lumara"].access
    path = tmp_path / "data" / security.TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.token and len(first.token) >= 43
    assert first.token_is_new
    again = start_app(tmp_path, host="0.0.0.0").extensions["lumara"].access
    assert (again.token, again.token_is_new) == (first.token, False)


def test_a_token_file_without_a_usable_token_stops_start_up(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / security.TOKEN_FILE).write_text("short\n")
    with pytest.raises(ConfigError, match="delete it"):
        start_app(tmp_path, host="0.0.0.0")


def test_the_token_is_printed_on_the_first_start_only(tmp_path, capsys):
    def start_and_print(**settings) -> str:
        app = start_app(tmp_path, host="0.0.0.0", **settings)
        print_access_address(app.extensions["lumara"].access,
                             app.extensions["lumara"].settings)
        return capsys.readouterr().out

    first = start_and_print()
    token = (tmp_path / "data" / security.TOKEN_FILE).read_text().strip()
    assert f"open http://127.0.0.1:5000/?token={token}" in first
    second = start_and_print()
    assert token not in second and security.TOKEN_FILE in second
    assert f"?token={token}" in start_and_print(show_token=True)


def test_loopback_prints_no_token(client, capsys):
    print_access_address(client.application.extensions["lumara"].access,
                         client.application.extensions["lumara"].settings)
    assert capsys.readouterr().out == ""


# -- over a real socket -----------------------------------------------------------------
def handshake(server: LiveServer, **headers) -> int:
    """The status of a websocket handshake with exactly these headers (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        connection.request("GET", "/ws/chat", headers={
            "Host": f"127.0.0.1:{server.port}", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            **{name.replace("_", "-"): value for name, value in headers.items()}})
        return connection.getresponse().status
    finally:
        connection.close()


class RefusableClient(Client):
    """simple_websocket's Client, closing its socket when the server refuses the handshake
    (simple-websocket 1.1 leaves it open)."""

    def handshake(self):
        try:
            super().handshake()
        except HandshakeRefused:
            self.sock.close()
            raise


def connect(server: LiveServer, headers: dict | None = None) -> Client:
    client = RefusableClient.connect(f"ws://127.0.0.1:{server.port}/ws/chat", headers=headers)
    server.clients.append(client)
    return client


def test_the_own_page_opens_the_chat_socket(serve):
    server = serve()
    assert handshake(server, Origin=f"http://127.0.0.1:{server.port}",
                     Sec_Fetch_Site="same-origin") == 101


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000"])
def test_a_websocket_to_a_foreign_host_name_is_refused(serve, host):
    assert handshake(serve(), Host=host) == 421


@pytest.mark.parametrize("origin", [EVIL, "null", "http://localhost:3000"])
def test_a_cross_origin_websocket_is_refused(serve, origin):
    server = serve()
    with pytest.raises(HandshakeRefused) as refused:
        connect(server, {"Origin": origin})
    assert refused.value.status_code == 403
    assert handshake(server, Origin=origin) == 403


def test_a_websocket_without_origin_chats(serve):
    client = connect(serve())
    send(client, type="chat", content="Hello!")
    assert receive_until(client, "done")[-1]["status"] == "complete"
    close(client)


def test_the_websocket_needs_the_token_off_the_loopback(serve):
    server = serve(host="0.0.0.0")
    token = token_of(server.app)
    with pytest.raises(HandshakeRefused) as refused:
        connect(server)
    assert refused.value.status_code == 401
    with pytest.raises(HandshakeRefused):
        connect(server, {"Authorization": "Bearer wrong"})
    # The page's own socket carries the cookie; scripts send the header.
    assert handshake(server, Cookie=f"{security.TOKEN_COOKIE}={token}") == 101
    client = connect(server, {"Authorization": f"Bearer {token}"})
    send(client, type="chat", content="Hello!")
    events = receive_until(client, "done")
    assert events[-1]["status"] == "complete"
    assert json.dumps(events)  # plain JSON events, as without a token
