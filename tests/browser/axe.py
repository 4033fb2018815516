"""axe-core in the browser tests: the npm package's axe.min.js, fetched once with `npm pack`
into .cache/axe (gitignored) and injected into a page whose context bypasses the CSP — the
served Content-Security-Policy stays strict; only the test context ignores it."""

from __future__ import annotations

import functools
import subprocess
import tarfile
from pathlib import Path

# Pinned: a new axe release can add rules, and a test should not fail because of a download.
AXE_VERSION = "4.14.1"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "axe"


@functools.cache
def axe_source() -> str:
    tarball = CACHE / f"axe-core-{AXE_VERSION}.tgz"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", f"axe-core@{AXE_VERSION}",
                        "--pack-destination", str(CACHE)], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
    with tarfile.open(tarball) as archive:
        return archive.extractfile("package/axe.min.js").read().decode("utf-8")


def violations(page) -> list[dict]:
    """Every axe violation on the page as it is now, of any impact: [{id, impact, nodes}]."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_source())
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map((v) => ({
            id: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => n.target.join(" ") + " — " + n.failureSummary
                                      .replace(/\\s+/g, " ").slice(0, 240))}));
    }""")
    return found


def describe(found: list[dict]) -> str:
    return "\n".join(f"{v['impact']} {v['id']}: " + "; ".join(v["nodes"][:4]) for v in found)
