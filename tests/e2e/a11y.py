"""axe-core (npm, pinned in tests/e2e/package.json) injected into the page: no critical or serious
violation allowed. `make browser` installs it; a missing install fails the test with how to fix it."""
from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"critical", "serious"}


def axe_violations(page) -> list[dict]:
    assert AXE.exists(), f"{AXE} is missing: run `make browser` (npm ci in tests/e2e)"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    # An open modal dialog makes the rest of the page inert: check what the person can reach.
    result = page.evaluate("""async () => {
        const open = document.querySelector('dialog[open]');
        const r = await axe.run(open || document, { resultTypes: ['violations'] });
        return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' + n.failureSummary) }));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]


def assert_accessible(page, where: str) -> None:
    bad = axe_violations(page)
    assert not bad, f"axe: critical/serious violations on {where}: {bad}"
