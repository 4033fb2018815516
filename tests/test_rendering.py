"""Model output rendered as Markdown must never run script, inject markup or load anything."""

from html.parser import HTMLParser

import pytest

from lumara_web.chat.rendering import ALLOWED_TAGS, render_markdown


class Elements(HTMLParser):
    """The tags and attributes a browser would build from the HTML (text is ignored)."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

ATTACKS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](https://tracker.example/p.png)",
    "<a href='https://example.com' onclick='alert(1)'>x</a>",
    "<iframe src='https://example.com'></iframe>",
    "<div style='background:url(https://tracker.example/x)'>x</div>",
    "| a |\n|:-:|\n| b |",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_nothing_executable_or_loading_survives(text):
    for tag, attributes in Elements(render_markdown(text)).found:
        assert tag in ALLOWED_TAGS
        assert set(attributes) <= {"href", "title", "rel", "class"}
        if "href" in attributes:
            assert attributes["href"].startswith(("http://", "https://", "mailto:"))


def test_markdown_formatting_and_code_blocks_render():
    html = render_markdown("**Bold** and `code`\n\n```python\nprint('hi')\n```")
    assert "<strong>Bold</strong>" in html
    assert "<code>code</code>" in html
    assert '<pre><code class="language-python">' in html
    assert "print(&#x27;hi&#x27;)" in html or "print('hi')" in html


def test_safe_links_keep_their_target_and_open_nothing_else():
    html = render_markdown("[docs](https://example.com/a)")
    assert 'href="https://example.com/a"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
