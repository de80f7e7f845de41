//! The engine explorer (admins only): invocations filtered by status, one invocation's journal,
//! and Cancel.

use std::time::{SystemTime, UNIX_EPOCH};

use maud::html;
use zeroapp_engine::http::{self, ApiError};
use zeroapp_engine::{InvocationFilter, InvocationId, InvocationInfo, InvocationStatus};

use super::layout::{self, badge};
use super::{Page, Reply, Tab, View, encode};
use crate::identity::Identity;
use crate::shared::Shared;

/// How many invocations the table shows (the newest).
const SHOWN: usize = 100;

/// How many bytes of a journal entry's result are shown.
const RESULT_PREVIEW: usize = 160;

fn ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The explorer's filter and selection, as its URL's query says them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only invocations with this status.
    pub status: Option<String>,
    /// Only this service, object or workflow.
    pub service: Option<String>,
    /// Only this key (an object's or a workflow's: a user, an order id).
    pub key: Option<String>,
    /// Only invocations whose id, target or last error contain this text.
    pub text: Option<String>,
    /// The invocation whose journal is shown.
    pub id: Option<String>,
}

impl Query {
    /// The query of a URL (`status=…&service=…&key=…&q=…&id=…`); empty values are no filter.
    pub fn parse(query: &str) -> Self {
        let mut parsed = Query::default();
        for (key, value) in http::query_pairs(query) {
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match key.as_str() {
                "status" => parsed.status = value,
                "service" => parsed.service = value,
                "key" => parsed.key = value,
                "q" => parsed.text = value,
                "id" => parsed.id = value,
                _ => {}
            }
        }
        parsed
    }

    /// The same filter with `id` selected.
    pub fn selecting(&self, id: Option<&str>) -> Self {
        Query {
            id: id.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The same selection with another status.
    fn with_status(&self, status: Option<&str>) -> Self {
        Query {
            status: status.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The explorer's URL for this query.
    pub fn href(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("service", &self.service),
            ("key", &self.key),
            ("q", &self.text),
            ("id", &self.id),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={}", encode(v))))
            .collect();
        if query.is_empty() {
            "/admin/engine".into()
        } else {
            format!("/admin/engine?{}", query.join("&"))
        }
    }

    fn matches(&self, info: &InvocationInfo) -> bool {
        let text = self.text.as_deref().map(str::to_lowercase);
        self.service
            .as_deref()
            .is_none_or(|s| info.target.service == s)
            && self
                .key
                .as_deref()
                .is_none_or(|k| info.target.key.as_deref() == Some(k))
            && text.is_none_or(|text| {
                [
                    info.id.to_string(),
                    info.target.to_string(),
                    info.last_error.clone().unwrap_or_default(),
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&text))
            })
    }
}

/// `/admin/engine?status=…&service=…&key=…&q=…&id=…`: the filters and the invocations on
/// Input, the selected invocation's journal on Output (where the page opens when one is
/// selected).
pub async fn view(shared: &Shared, who: &Identity, query: &Query) -> Result<View, ApiError> {
    who.require_admin()?;
    let (status, selected) = (query.status.as_deref(), query.id.as_deref());
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
            aside: None,
            tab: Tab::Input,
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

    let mut services: Vec<&str> = all.iter().map(|i| i.target.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let matching: Vec<&InvocationInfo> = all.iter().filter(|i| query.matches(i)).collect();
    let count = |s: InvocationStatus| matching.iter().filter(|i| i.status == s).count();
    let shown: Vec<&InvocationInfo> = matching
        .iter()
        .rev()
        .filter(|i| wanted.is_none_or(|w| i.status == w))
        .take(SHOWN)
        .copied()
        .collect();
    let field = |value: &Option<String>| value.clone().unwrap_or_default();
    let filters = html! {
        div #filters {
            form #filter-form .row method="get" action="/admin/engine" {
                @if let Some(status) = status { input type="hidden" name="status" value=(status); }
                select #filter-service name="service" aria-label="Service" {
                    option value="" { "Every service" }
                    @for service in &services {
                        option value=(service) selected[query.service.as_deref() == Some(*service)] { (service) }
                    }
                }
                input #filter-key name="key" placeholder="Key (user, order id)" aria-label="Key" value=(field(&query.key));
                input #filter-text name="q" placeholder="Text in id, target, error" aria-label="Text" value=(field(&query.text));
                button #filter-apply type="submit" { "Filter" }
                a .button .secondary #filter-clear href="/admin/engine" { "Clear" }
            }
            div .row style="margin-top:.6rem" {
                a .button .secondary[status.is_some()] id="filter-all" href=(query.with_status(None).href()) { "All " (matching.len()) }
                @for s in InvocationStatus::ALL {
                    a .button .secondary[status != Some(s.as_str())] id=(format!("filter-{}", s.as_str()))
                        href=(query.with_status(Some(s.as_str())).href()) { (s.as_str()) " " (count(s)) }
                }
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
                                td .nowrap { a href=(query.selecting(Some(&id)).href()) { code { (id) } } }
                                td { (info.target.to_string()) }
                                td { (badge(info.status.as_str())) }
                                td .num title=(info.last_error.as_deref().unwrap_or("")) { (info.failed_attempts) }
                                td .nowrap { (layout::when(ms(info.modified_at))) }
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
                                        td { (layout::when(ms(entry.at))) }
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
        aside: None,
        tab: if selected.is_some() {
            Tab::Output
        } else {
            Tab::Input
        },
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
pub async fn cancel(shared: &Shared, who: &Identity, id: &str) -> Result<Reply, ApiError> {
    who.require_admin()?;
    if id.parse::<InvocationId>().is_err() && shared.client.embedded().is_some() {
        return Err(ApiError::bad_request(format!("bad invocation id: {id:?}")));
    }
    shared.client.cancel(id).await?;
    Ok(Reply::default())
}

/// The explorer with no filter.
pub fn page() -> Page {
    Page::Engine(Query::default())
}
