"""The shop page's ES modules under content-hashed URLs (sneakerd.web.routes.pages.Site).

A page names `app.js?v=<hash>` and may cache it for a year; app.js imports its sibling modules,
so their URLs must carry hashes too, and a change deep down must change every URL above it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sneakerd.web.routes.pages import STATIC_DIR, Site

PAGE = '<script type="module" src="/static/app.js"></script>'


def site(tmp_path: Path, files: dict[str, str]) -> Site:
    for name in ("index.html", "drop.html", "admin.html"):
        (tmp_path / name).write_text(PAGE, "utf-8")
    for name, text in files.items():
        (tmp_path / name).write_text(text, "utf-8")
    return Site.load(tmp_path)


def pinned(body: bytes, name: str) -> str:
    found = re.search(rf'"\./{re.escape(name)}\?v=([0-9a-f]{{16}})"', body.decode())
    assert found, body
    return found[1]


MODULES = {
    "app.js": 'import { a } from "./a.js";\nimport "./b.js";\nexport { c } from "./c.js";\n',
    "a.js": 'import { c } from "./c.js";\nexport const a = c + 1;\n',
    "b.js": "console.log('b');\n",
    "c.js": "export const c = 1;\n",
}


def test_every_import_names_the_imported_modules_current_hash(tmp_path: Path) -> None:
    loaded = site(tmp_path, MODULES)
    app = loaded.assets["app.js"].body
    for name in ("a.js", "b.js", "c.js"):
        assert pinned(app, name) == loaded.assets[name].etag
    assert pinned(loaded.assets["a.js"].body, "c.js") == loaded.assets["c.js"].etag
    assert (
        f'src="/static/app.js?v={loaded.assets["app.js"].etag}"'
        in loaded.pages["index"].body.decode()
    )


def test_a_change_in_a_deep_module_changes_every_url_above_it(tmp_path: Path) -> None:
    before = site(tmp_path, MODULES)
    after = site(tmp_path, {**MODULES, "c.js": "export const c = 2;\n"})
    for name in ("c.js", "a.js", "app.js"):
        assert after.assets[name].etag != before.assets[name].etag, name
    assert after.assets["b.js"].etag == before.assets["b.js"].etag
    assert after.pages["index"].etag != before.pages["index"].etag


def test_a_missing_module_or_an_import_cycle_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("a.js imports a missing static file: gone.js")):
        site(tmp_path, {"app.js": 'import "./a.js";\n', "a.js": 'import "./gone.js";\n'})
    for path in tmp_path.iterdir():
        path.unlink()
    with pytest.raises(ValueError, match=re.escape("import in a cycle: a.js -> app.js -> a.js")):
        site(tmp_path, {"app.js": 'import "./a.js";\n', "a.js": 'import "./app.js";\n'})


def test_the_shipped_modules_load_with_every_sibling_import_pinned() -> None:
    """The real static folder: no module imports a sibling by an unhashed URL."""
    loaded = Site.load(STATIC_DIR)
    modules = {name: asset for name, asset in loaded.assets.items() if name.endswith(".js")}
    assert len(modules) > 1
    for name, asset in modules.items():
        text = asset.body.decode()
        assert not re.search(r'from\s*"\./[^"?]+"|import\s*"\./[^"?]+"', text), name
