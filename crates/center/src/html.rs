//! The interactive graph page: a static HTML shell, the graph JSON as an inert data block,
//! and `static/graph.js` (written for this project, compiled into the binary, served at
//! `/static/graph.js` or inlined for an exported file). Nothing is fetched from elsewhere;
//! a Content-Security-Policy allows only that script (by origin, or by its SHA-256 when
//! inlined) and the page's own style.
//!
//! Escaping: the incident id goes through [`escape_html`]; the graph JSON through
//! [`json_for_script`], which turns `<`, `>`, `&` and the JavaScript line separators into
//! `\uXXXX` escapes so no reporter-chosen name can close the data block; the script builds
//! every node with `textContent`/`setAttribute`.

use base64::Engine;

use crate::views::Script;

/// The graph renderer.
pub const GRAPH_JS: &str = include_str!("../static/graph.js");

const STYLE: &str = "body{font:14px sans-serif;margin:1em;color:#222}\
form{display:flex;gap:1em;flex-wrap:wrap;align-items:end;margin-bottom:.5em}\
label{display:flex;flex-direction:column;font-size:12px}\
#wrap{display:flex;gap:1em;align-items:flex-start}\
svg{border:1px solid #ccc;width:820px;flex:none}\
.edge{stroke:#999;stroke-width:1.2}.edge.bot-server{stroke:#c55}.edge:hover{stroke-width:4}\
.node{cursor:move}.node circle{fill:#58a}.node.port circle{fill:#e93}.node.server rect{fill:#c33}\
.node.rank-1 rect{fill:#900;stroke:#000;stroke-width:3}.node text{font-size:11px}\
#evidence{max-width:28em;font-size:12px}#evidence dt{font-weight:bold}\
#evidence dd{margin:0 0 .3em 1em;word-break:break-all}\
table{border-collapse:collapse;margin-top:1em;font-size:12px}\
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}";

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// JSON that is safe inside a `<script>` element: still the same JSON value.
pub fn json_for_script(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn csp_hash(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

/// The page for one incident's graph.
pub fn page(incident: &str, graph: &serde_json::Value, script: Script) -> String {
    let (script_src, script_tag) = match script {
        Script::Served => (
            "'self'".to_string(),
            "<script src=\"/static/graph.js\"></script>".to_string(),
        ),
        Script::Inline => (csp_hash(GRAPH_JS), format!("<script>{GRAPH_JS}</script>")),
    };
    let id = escape_html(incident);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src {script_src}; style-src {style}\">\n\
<title>ashiato: bots and servers of {id}</title>\n<style>{STYLE}</style></head>\n<body>\n\
<h1>Attack {id}: attacked ports &#8594; bots &#8594; C&amp;C and download servers</h1>\n\
<form id=\"filters\">\
<label>from (RFC 3339)<input name=\"from\" placeholder=\"2026-01-01T10:00:00Z\"></label>\
<label>to (RFC 3339)<input name=\"to\"></label>\
<label>server port<input name=\"port\" type=\"number\" min=\"0\" max=\"65535\"></label>\
<label>feature<select name=\"feature\"><option value=\"\">any</option></select></label>\
<label>minimum bots<input name=\"min_bots\" type=\"number\" min=\"1\" value=\"1\"></label>\
</form>\n<p id=\"status\">This page needs JavaScript to draw the graph.</p>\n\
<div id=\"wrap\"><svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"></svg>\
<div id=\"evidence\"><p>Hover over a node or an edge for its evidence; click to pin it.</p></div></div>\n\
<table id=\"ranking\"></table>\n\
<script id=\"graph-data\" type=\"application/json\">{data}</script>\n{script_tag}\n</body></html>\n",
        style = csp_hash(STYLE),
        data = json_for_script(graph),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporter_text_cannot_leave_its_place() {
        let evil = "</script><script>alert(1)</script>&\u{2028}";
        let g = serde_json::json!({ "servers": [{"fqdns": [evil]}] });
        let p = page("c1<b>", &g, Script::Inline);
        assert!(!p.contains("<script>alert(1)"));
        assert!(p.contains("c1&lt;b&gt;"));
        let start = p.find("type=\"application/json\">").unwrap() + 24;
        let end = start + p[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&p[start..end]).unwrap();
        assert_eq!(back, g, "the data block is the same JSON");
        assert!(p.contains(&csp_hash(GRAPH_JS)));
        assert!(!p.contains("src=\"http"), "no external fetch");
    }
}
