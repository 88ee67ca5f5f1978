"""verify's report as one self-contained HTML file (``multihome verify --html FILE``): the lab's
name, time and machine, the picture (inline SVG, failed checks drawn on what they concern),
then every check with its status, evidence and likely cause, filtered by status, check family
and object. No network request: no CDN, no font, no image; a Content-Security-Policy forbids
any, so a browser fetches nothing even if something slipped in.
"""

from __future__ import annotations

import html
import platform
import re
import time
from collections.abc import Mapping
from typing import Any

from multihome.plan import Plan
from multihome.verify.report import Report

from . import render_bytes
from .model import Failures, picture

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

STYLE = """
body{font-family:"DejaVu Sans",sans-serif;margin:1.2em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}
.meta{color:#555;margin-bottom:.8em}
.verdict{font-weight:bold;padding:.1em .5em;border-radius:3px;color:#fff}
.ok{background:#2ca02c}.bad{background:#d62728}
.picture{overflow:auto;border:1px solid #ccc;max-height:75vh;margin:.8em 0}
.picture svg{width:100%;height:auto;cursor:zoom-in}
.picture.full svg{max-width:none;cursor:zoom-out}
.filters{margin:.6em 0;display:flex;gap:1em;flex-wrap:wrap;align-items:center}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.status{font-weight:bold;white-space:nowrap}
tr.pass td.status{color:#2ca02c}tr.fail td.status{color:#d62728}tr.skip td.status{color:#b8860b}
tr.fail{background:#fff5f5}
pre{margin:.2em 0;white-space:pre-wrap;font-size:.85em}
.cause{margin-top:.2em}
"""

SCRIPT = """
(function(){
  var rows=[].slice.call(document.querySelectorAll('#checks tbody tr'));
  var st=document.getElementById('f-status'),fa=document.getElementById('f-family'),
      ob=document.getElementById('f-object'),shown=document.getElementById('shown');
  function apply(){
    var s=st.value,f=fa.value,o=ob.value.toLowerCase(),n=0;
    rows.forEach(function(r){
      var ok=(!s||r.dataset.status===s)&&(!f||r.dataset.family===f)&&
             (!o||r.dataset.object.toLowerCase().indexOf(o)>=0);
      r.hidden=!ok; if(ok)n++;
    });
    shown.textContent=n+' of '+rows.length+' checks shown';
  }
  [st,fa].forEach(function(e){e.addEventListener('change',apply)});
  // a link may carry filters: report.html#status=fail&family=interfaces&object=net-tools
  new URLSearchParams(location.hash.slice(1)).forEach(function(v,k){
    var e={status:st,family:fa,object:ob}[k]; if(e)e.value=v;
  });
  ob.addEventListener('input',apply);
  var pic=document.getElementById('picture');
  var svg=document.getElementById('topology');
  pic.addEventListener('click',function(){
    var full=pic.classList.toggle('full');
    svg.style.width=full?svg.getAttribute('width'):'';
  });
  apply();
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline_svg(svg: bytes) -> str:
    """Graphviz's SVG without its XML prolog and doctype, to sit inside HTML."""
    text = svg.decode()
    text = text[text.index("<svg") :]
    return text.replace("<svg", '<svg id="topology"', 1)


def report_html(
    report: Report,
    plan: Plan,
    status: Mapping[str, Any] | None,
    *,
    when: float | None = None,
) -> str:
    """The whole HTML document."""
    failures = Failures.from_checks(report.checks)
    svg = inline_svg(render_bytes(picture(plan, status, failures), "svg"))
    stamp = time.strftime(
        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() if when is None else when)
    )
    uname = platform.uname()
    machine = f"{uname.node} ({uname.system} {uname.release}, {uname.machine})"
    families = sorted({c.id for c in report.checks})
    verdict = "OK" if report.ok else "FAIL"
    rows = []
    for c in report.checks:
        evidence = "".join(f"<pre>{_e(line)}</pre>" for line in c.evidence)
        label = "likely cause" if c.status == "fail" else "skipped"
        cause = f'<div class="cause"><b>{label}:</b> {_e(c.cause)}</div>' if c.cause else ""
        rows.append(
            f'<tr class="{_e(c.status)}" data-status="{_e(c.status)}" '
            f'data-family="{_e(c.id)}" data-object="{_e(c.subject)}">'
            f'<td class="status">{_e(c.status.upper())}</td><td>{_e(c.id)}</td>'
            f"<td>{_e(c.subject)}</td><td>{_e(c.title)}{evidence}{cause}</td></tr>"
        )
    options = "".join(f'<option value="{_e(f)}">{_e(f)}</option>' for f in families)
    counts = (
        f"{report.count('pass')} passed, {report.count('fail')} failed, "
        f"{report.count('skip')} skipped"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>multihome verify {_e(report.lab)}: {verdict}</title>
<style>{STYLE}</style></head>
<body>
<h1>multihome verify <span id="lab">{_e(report.lab)}</span>
 <span class="verdict {"ok" if report.ok else "bad"}" id="verdict">{verdict}</span></h1>
<div class="meta"><span id="when">{_e(stamp)}</span>
 · machine <span id="machine">{_e(machine)}</span>
 · <span id="counts">{_e(counts)}</span> in {report.elapsed:.2f} s</div>
<div class="picture" id="picture">{svg}</div>
<div class="filters">
 <label>status <select id="f-status"><option value="">all</option><option value="fail">fail</option>
 <option value="pass">pass</option><option value="skip">skip</option></select></label>
 <label>check family <select id="f-family"><option value="">all</option>{options}</select></label>
 <label>object <input id="f-object" type="search" placeholder="pod, node, network..."></label>
 <span id="shown"></span>
</div>
<table id="checks"><thead><tr><th>status</th><th>check</th><th>object</th>
<th>what it proves, evidence, likely cause</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<script>{SCRIPT}</script>
</body></html>
"""


def no_external_references(document: str) -> list[str]:
    """The URLs a browser would fetch from ``document`` (tests: must be empty). SVG's
    ``xmlns`` names are identifiers, never fetched."""
    found = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', document)
    found += re.findall(r"url\(\s*['\"]?([^)'\"]+)", document)
    return [u for u in found if not u.startswith(("#", "data:"))]
