"""The dashboard's HTML: one shell per page; `static/d3.js` fills it from the page's JSON.

A page names its kind (which renderer draws it), its JSON read model and its refresh
interval in `<body data-*>`; everything it loads is served by the same server (no asset
from the internet), so a dashboard works on an air-gapped validator.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

Nav = Sequence[tuple[str, str]]  # (label, path)


def page(
    kind: str,
    title: str,
    api: str,
    nav: Nav,
    here: str,
    refresh_s: float,
    intro: str = "",
) -> str:
    links = "".join(
        f'<a href="{escape(path)}"{" class=here" if path == here else ""}>{escape(label)}</a>'
        for label, path in nav
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · D3</title>
<link rel="stylesheet" href="/static/vendor/uPlot.min.css">
<link rel="stylesheet" href="/static/d3.css">
</head>
<body data-page="{escape(kind)}" data-api="{escape(api)}" data-refresh="{refresh_s:g}">
<header><span class="brand">D3</span><nav>{links}</nav></header>
<main id="content">
<h1 id="title">{escape(title)}</h1>
<div id="status">loading…</div>
{f'<p class="note">{escape(intro)}</p>' if intro else ""}
<noscript><p>This page draws itself with JavaScript; its data is at
<a href="{escape(api)}">{escape(api)}</a>.</p></noscript>
</main>
<script src="/static/vendor/uPlot.iife.min.js"></script>
<script src="/static/d3.js"></script>
</body>
</html>
"""
