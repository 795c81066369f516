//! `GET /`: the operators' page, read-only. Counts per state as tabs, one
//! page of the chosen state's ids with their epoch and fence, a link to
//! the next page, and a refresh every [`REFRESH_SECS`]. Plain HTML, no
//! script: it is built from the same backend calls as the JSON routes.

use crate::backend::{Counts, Page, Payment};
use crate::input::state_name;
use async_tasks_recorder::TaskState;
use std::fmt::Write;

/// Seconds between the page's refreshes.
pub const REFRESH_SECS: u32 = 2;
/// Ids in one page of the HTML page.
pub const PAGE_LIMIT: usize = 25;

/// What the page shows.
pub struct View<'a> {
    /// `memory` or `postgres`.
    pub backend: &'a str,
    /// Ids per state.
    pub counts: Counts,
    /// The state whose ids are listed.
    pub state: TaskState,
    /// The cursor this page starts after.
    pub after: &'a str,
    /// The ids listed, read one by one for their epoch and fence.
    pub payments: &'a [Payment],
    /// The listing the payments came from (for the next page's cursor).
    pub page: &'a Page,
    /// Ids per page.
    pub limit: usize,
}

/// `text` with the five HTML specials escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:DejaVu Sans,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}nav a{display:inline-block;padding:.4em .9em;margin-right:.4em;
border:1px solid #bbb;border-radius:4px;text-decoration:none;color:#222}
nav a.on{background:#224;color:#fff}table{border-collapse:collapse;margin-top:1em}
td,th{border-bottom:1px solid #ddd;padding:.3em 1.2em;text-align:left}
.working{color:#b60}.success{color:#070}.failed{color:#b00}p.note{color:#666}";

/// The page.
pub fn render(view: &View<'_>) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>Payments</title><style>{STYLE}</style></head><body>\
         <h1>Payments <small>({})</small></h1><nav>",
        escape(view.backend)
    );
    for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
        let name = state_name(state);
        let on = if state == view.state { " on" } else { "" };
        let _ = write!(
            html,
            "<a class=\"{name}{on}\" href=\"/?state={name}&amp;limit={}\">{name}: {}</a>",
            view.limit,
            view.counts.get(state)
        );
    }
    let name = state_name(view.state);
    let _ = write!(
        html,
        "</nav><table><tr><th>id</th><th>state</th><th>epoch</th><th>fence</th></tr>"
    );
    for payment in view.payments {
        let fence = payment.fence.map_or("–".to_string(), |f| f.to_string());
        let state = state_name(payment.state);
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{fence}</td></tr>",
            escape(&payment.id),
            payment.epoch
        );
    }
    html.push_str("</table><p>");
    if view.payments.is_empty() {
        let _ = write!(html, "No {name} payments here. ");
    }
    if !view.after.is_empty() {
        let _ = write!(
            html,
            "<a href=\"/?state={name}&amp;limit={}\">first page</a> ",
            view.limit
        );
    }
    if let Some(next) = &view.page.next {
        let _ = write!(
            html,
            "<a href=\"/?state={name}&amp;after={}&amp;limit={}\">next page</a>",
            escape(next),
            view.limit
        );
    }
    let _ = write!(
        html,
        "</p><p class=\"note\">Read-only; refreshes every {REFRESH_SECS} s. \
         JSON: <code>GET /payments?state={name}</code>, <code>GET /metrics</code>.</p>\
         </body></html>"
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_lists_and_links_the_next_page() {
        let payments = vec![Payment {
            id: "<b>&".into(),
            state: TaskState::Failed,
            epoch: 2,
            fence: Some(7),
        }];
        let page = Page {
            ids: vec!["<b>&".into()],
            next: Some("<b>&".into()),
        };
        let html = render(&View {
            backend: "memory",
            counts: Counts {
                working: 0,
                success: 4,
                failed: 1,
            },
            state: TaskState::Failed,
            after: "",
            payments: &payments,
            page: &page,
            limit: 1,
        });
        assert!(html.contains("&lt;b&gt;&amp;</td>"), "{html}");
        assert!(!html.contains("<b>&"), "{html}");
        assert!(html.contains("success: 4</a>"), "{html}");
        assert!(
            html.contains("after=&lt;b&gt;&amp;&amp;limit=1\">next page"),
            "{html}"
        );
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");
        assert!(!html.contains("first page"), "{html}");
    }
}
