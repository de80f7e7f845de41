//! The engine explorer (admins only): invocations filtered by status, one invocation's journal,
//! and Cancel.

use std::time::{SystemTime, UNIX_EPOCH};

use maud::{Markup, html};
use zeroapp_engine::http::ApiError;
use zeroapp_engine::{InvocationFilter, InvocationId, InvocationInfo, InvocationStatus};

use super::layout::{self, badge};
use super::{Page, View, encode};
use crate::identity::Identity;
use crate::server::Shared;

/// How many invocations the table shows (the newest).
const SHOWN: usize = 100;

/// How many bytes of a journal entry's result are shown.
const RESULT_PREVIEW: usize = 160;

fn ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The explorer's URL with this filter and selection.
pub fn href(status: Option<&str>, id: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(status) = status {
        query.push(format!("status={}", encode(status)));
    }
    if let Some(id) = id {
        query.push(format!("id={}", encode(id)));
    }
    if query.is_empty() {
        "/admin/engine".into()
    } else {
        format!("/admin/engine?{}", query.join("&"))
    }
}

/// `/admin/engine?status=…&id=…`.
pub async fn view(
    shared: &Shared,
    who: &Identity,
    status: Option<&str>,
    selected: Option<&str>,
) -> Result<View, ApiError> {
    who.require_admin()?;
    let wanted = match status {
        None => None,
        Some(name) => Some(
            InvocationStatus::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| ApiError::bad_request(format!("unknown status {name:?}")))?,
        ),
    };
    let selected_id: Option<InvocationId> = match selected {
        None => None,
        Some(id) => Some(
            id.parse()
                .map_err(|e| ApiError::bad_request(format!("bad invocation id: {e}")))?,
        ),
    };
    let Some(client) = shared.client.embedded().cloned() else {
        // On a Restate cluster the invocations are the cluster's: its own tools show them.
        let notice = html! { div .card {
            h2 { "Engine explorer" }
            p { "This storefront runs its handlers on a Restate cluster: list its invocations and \
                 journals with the cluster's admin API (SQL introspection) or Restate's UI." }
        } };
        return Ok(View {
            input: notice.clone(),
            output: notice,
            fragments: Vec::new(),
            signals: None,
        });
    };
    let (all, journal) = tokio::task::spawn_blocking(move || {
        let all = client.list_invocations(&InvocationFilter::default())?;
        let journal = match selected_id {
            Some(id) => Some((client.status(id)?, client.journal(id)?)),
            None => None,
        };
        Ok::<_, zeroapp_engine::StoreError>((all, journal))
    })
    .await
    .map_err(|e| ApiError::new(500, format!("introspection failed: {e}")))??;

    let count = |s: InvocationStatus| all.iter().filter(|i| i.status == s).count();
    let shown: Vec<&InvocationInfo> = all
        .iter()
        .rev()
        .filter(|i| wanted.is_none_or(|w| i.status == w))
        .take(SHOWN)
        .collect();
    let filters = html! {
        div #filters .row {
            a .button .secondary[status.is_some()] id="filter-all" href=(href(None, selected)) { "All " (all.len()) }
            @for s in InvocationStatus::ALL {
                a .button .secondary[status != Some(s.as_str())] id=(format!("filter-{}", s.as_str()))
                    href=(href(Some(s.as_str()), selected)) { (s.as_str()) " " (count(s)) }
            }
        }
    };
    let table = html! {
        div #invocations .table-wrap {
            @if shown.is_empty() { p .muted { "No invocation." } } @else {
                table {
                    thead { tr { th { "Invocation" } th { "Target" } th { "Status" } th .num { "Retries" } th { "Modified" } th {} } }
                    tbody {
                        @for info in &shown {
                            @let id = info.id.to_string();
                            tr id=(format!("inv-{id}")) {
                                td .nowrap { a href=(href(status, Some(&id))) { code { (id) } } }
                                td { (info.target.to_string()) }
                                td { (badge(info.status.as_str())) }
                                td .num title=(info.last_error.as_deref().unwrap_or("")) { (info.failed_attempts) }
                                td .nowrap { (layout::time(ms(info.modified_at))) }
                                td .num {
                                    @if !info.status.is_finished() {
                                        button .danger type="button" id=(format!("cancel-{id}"))
                                            data-on:click=(format!("@post('/admin/engine/{}/cancel')", encode(&id)))
                                            data-indicator:busy data-attr:disabled="$busy" { "Cancel" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let journal = html! {
        div #journal {
            @match (&journal, selected) {
                (Some((Some(info), entries)), Some(id)) => {
                    div .card {
                        h2 { "Invocation " code { (id) } }
                        dl .facts {
                            dt { "Target" } dd { (info.target.to_string()) }
                            dt { "Status" } dd { (badge(info.status.as_str())) }
                            dt { "Created" } dd { (layout::time(ms(info.created_at))) }
                            dt { "Cancellation" } dd { (info.cancellation.as_str()) }
                        }
                    }
                    div .card .table-wrap {
                        h2 { "Journal" }
                        table {
                            thead { tr { th .num { "#" } th { "Kind" } th { "Name" } th { "At" } th .num { "Attempt" } th { "Result" } } }
                            tbody {
                                @for entry in entries.iter().flatten() {
                                    tr {
                                        td .num { (entry.index) }
                                        td { (entry.kind) }
                                        td { (entry.name.as_deref().unwrap_or("")) }
                                        td { (layout::time(ms(entry.at))) }
                                        td .num { (entry.attempt) }
                                        td { code { (preview(entry.result.as_ref())) } }
                                    }
                                }
                            }
                        }
                    }
                }
                (_, Some(id)) => { div .card { p { "No invocation " code { (id) } "." } } }
                _ => { div .card { p .muted { "Pick an invocation to see its journal." } } }
            }
        }
    };
    Ok(View {
        input: html! { div .card { (filters) } div .card { h2 { "Invocations (newest first)" } (table) } },
        output: journal.clone(),
        fragments: vec![filters, table, journal],
        signals: None,
    })
}

fn preview(result: Option<&Result<Vec<u8>, zeroapp_engine::TerminalError>>) -> String {
    match result {
        None => "—".into(),
        Some(Ok(bytes)) => {
            let text = String::from_utf8_lossy(bytes);
            match text.char_indices().nth(RESULT_PREVIEW) {
                Some((at, _)) => format!("{}…", &text[..at]),
                None => text.into_owned(),
            }
        }
        Some(Err(error)) => format!("error {}: {}", error.code(), error.message()),
    }
}

/// `POST /admin/engine/{id}/cancel`.
pub async fn cancel(shared: &Shared, who: &Identity, id: &str) -> Result<Option<Markup>, ApiError> {
    who.require_admin()?;
    if id.parse::<InvocationId>().is_err() && shared.client.embedded().is_some() {
        return Err(ApiError::bad_request(format!("bad invocation id: {id:?}")));
    }
    shared.client.cancel(id).await?;
    Ok(None)
}

/// The page, for [`Page::path`].
pub fn page(status: Option<String>, id: Option<String>) -> Page {
    Page::Engine { status, id }
}
