//! The frame every page shares: navigation, the centre with Input and Output tabs, the live
//! notifications; the style sheet; small formatting helpers.

use std::time::{Duration, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, PreEscaped, html};
use zeroapp_app::db::notifications::Notification;
use zeroapp_engine::http::ApiError;

use super::{Page, View};
use crate::assets::DATASTAR_JS_PATH;
use crate::identity::Identity;
use crate::shared::{Shared, db_failure};

/// How many notifications the right pane shows.
const SHOWN_NOTIFICATIONS: u32 = 20;

/// The style sheet, inline in every page (small, and no second request before first paint).
const CSS: &str = r#"
:root{--bg:#f5f6f8;--pane:#fff;--ink:#1d2330;--muted:#667085;--line:#e4e7ec;--accent:#4f46e5;
--accent-ink:#fff;--ok:#067647;--ok-bg:#ecfdf3;--warn:#b54708;--warn-bg:#fffaeb;--bad:#b42318;
--bad-bg:#fef3f2;--info:#175cd3;--info-bg:#eff8ff;--radius:10px}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:1.35rem;margin:0;overflow-wrap:anywhere}.card>h2:first-child{margin-top:0}h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
.shell{display:grid;grid-template-columns:210px minmax(0,1fr) 290px;min-height:100vh}
.nav{background:#111827;color:#e5e7eb;padding:1rem .75rem;display:flex;flex-direction:column;gap:.25rem}
.brand{font-weight:700;font-size:1.15rem;color:#fff;padding:.25rem .6rem .9rem}
.nav a{color:#d1d5db;padding:.45rem .6rem;border-radius:8px;display:block}
.nav a:hover{background:#1f2937;text-decoration:none}.nav a.here{background:var(--accent);color:#fff}
.nav .who{margin-top:auto;font-size:.85rem;color:#9ca3af;padding:.6rem}
.nav form{padding:0 .6rem}
.centre{padding:1.25rem 1.5rem;min-width:0}
.head{display:flex;align-items:center;gap:1rem;flex-wrap:wrap;margin-bottom:1rem}
.icon{width:1.1em;height:1.1em;vertical-align:-.18em;flex:none}
.steps li.done .icon{color:var(--ok)}.steps li.active .icon{color:var(--warn)}
.steps li.pending .icon{color:#98a2b3}.steps li.failed .icon{color:var(--bad)}
.tabs{display:flex;gap:.25rem;background:var(--line);padding:3px;border-radius:9px;margin-left:auto}
.tabs button{background:transparent;color:#475467;border:0;padding:.35rem .9rem}
.tabs button.active{background:var(--pane);color:var(--ink);box-shadow:0 1px 2px #0002}
.card{background:var(--pane);border:1px solid var(--line);border-radius:var(--radius);padding:1rem 1.1rem;margin-bottom:1rem}
.aside{background:var(--pane);border-left:1px solid var(--line);padding:1.25rem 1rem;min-width:0}
.aside h2{margin-top:0}
.notes{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:.5rem}
.notes li{border:1px solid var(--line);border-radius:8px;padding:.5rem .65rem;font-size:.9rem;overflow-wrap:anywhere}
.notes small{color:var(--muted);display:block}
.notes li.passing{background:var(--ok-bg);border-color:#abefc6}
.count{display:inline-block;min-width:1.5em;padding:0 .45em;margin-left:.3rem;border-radius:999px;background:#fff;color:#111827;font-size:.75rem;font-weight:700;text-align:center;line-height:1.5}
.meta dl.facts{margin:0}.aside .meta{margin-bottom:1.25rem}
#journal td,#invocations td{overflow-wrap:anywhere}#journal td:last-child{min-width:10rem}
.id{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{text-align:left;padding:.5rem .55rem;border-bottom:1px solid var(--line);vertical-align:middle}
th{color:var(--muted);font-weight:600;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right}tfoot td{font-weight:600;border-bottom:0}
.table-wrap{overflow-x:auto}.nowrap{white-space:nowrap}
code{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace}
button,.button{font:inherit;cursor:pointer;border-radius:8px;border:1px solid var(--accent);background:var(--accent);
color:var(--accent-ink);padding:.4rem .85rem}
button:disabled{opacity:.55;cursor:progress}
.button{display:inline-block}.button:hover{text-decoration:none;filter:brightness(1.08)}
button.secondary,.button.secondary{background:var(--pane);color:var(--ink);border-color:var(--line)}
button.danger{background:var(--bad);border-color:var(--bad)}
input,select{font:inherit;padding:.4rem .55rem;border:1px solid #cfd4dc;border-radius:8px;background:#fff;color:var(--ink)}
input:focus,select:focus{outline:2px solid #c7d2fe;border-color:var(--accent)}
label{display:block;font-size:.85rem;color:var(--muted);margin:.6rem 0 .2rem}
.row{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.actions{display:flex;gap:.5rem;justify-content:flex-end;flex-wrap:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1rem}
.grid .card,.stats .card{margin:0}.product{display:flex;flex-direction:column}.product .buy{margin-top:auto;padding-top:.75rem}
.product h3{margin:.1rem 0 .25rem;font-size:1rem}.product p{color:var(--muted);margin:.25rem 0 .75rem;font-size:.9rem}
.price{font-weight:700}.muted{color:var(--muted)}
.qty{width:4.5rem}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:1rem}
.stat b{display:block;font-size:1.5rem}
.badge{display:inline-block;white-space:nowrap;padding:.1rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600;background:var(--info-bg);color:var(--info)}
.badge.delivered,.badge.paid,.badge.approved{background:var(--ok-bg);color:var(--ok)}
.badge.awaiting_payment,.badge.awaiting_approval{background:var(--warn-bg);color:var(--warn)}
.badge.failed,.badge.rejected,.badge.payment_declined,.badge.declined{background:var(--bad-bg);color:var(--bad)}
.steps{list-style:none;padding:0;margin:0;display:flex;flex-direction:column;gap:.35rem}
.steps li{display:flex;gap:.6rem;align-items:center;padding:.4rem .5rem;border-radius:8px}
.steps li.active{background:var(--warn-bg)}.steps li.failed{background:var(--bad-bg)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:.75rem 0 0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
.error{background:var(--bad-bg);color:var(--bad);border:1px solid #fecdca;border-radius:8px;padding:.55rem .75rem;margin-bottom:1rem;display:flex;gap:.5rem;align-items:center}
.error button{margin-left:auto;background:transparent;border:0;color:var(--bad);padding:0 .3rem}
#flash{position:sticky;top:.5rem;z-index:5}
.flash{background:var(--ok-bg);color:var(--ok);border:1px solid #abefc6;border-radius:8px;padding:.55rem .75rem;margin-bottom:1rem}
.busy{display:inline-flex;gap:.4rem;align-items:center;color:var(--muted);font-size:.85rem}
.spinner{width:14px;height:14px;border:2px solid var(--line);border-top-color:var(--accent);border-radius:50%;animation:spin .7s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}
.switch{display:flex;gap:.5rem;align-items:center;color:var(--ink);font-size:.95rem;margin:0}
.login{max-width:360px;margin:12vh auto;padding:0 1rem}
.login input{width:100%}.login button{width:100%;margin-top:1rem}
@media (max-width:1000px){.shell{grid-template-columns:180px minmax(0,1fr)}.aside{grid-column:1/-1;border-left:0;border-top:1px solid var(--line)}}
@media (max-width:640px){.shell{display:flex;flex-direction:column}.nav{order:-2;flex-direction:row;flex-wrap:wrap;padding:.5rem}.brand{padding:.3rem .6rem;width:100%}
.nav .who{margin:0;width:100%}.centre{padding:1rem}.tabs{margin-left:0}
.aside{order:-1;border-top:0;border-bottom:1px solid var(--line);padding:.75rem 1rem;max-height:12rem;overflow-y:auto}
.aside .meta{margin-bottom:.75rem}}
"#;

/// The document around a body: head, style sheet, the Datastar client.
fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ZeroApp" }
                link rel="icon" type="image/svg+xml" href=(crate::assets::FAVICON_PATH);
                style { (PreEscaped(CSS)) }
                script type="module" src=(DATASTAR_JS_PATH) {}
            }
            (body)
        }
    }
}

/// The icons of the pages, inline SVG drawn in the text's colour: they show on any system,
/// with or without an emoji font. Each is the inside of a 24×24 `<svg>` (strokes only).
pub mod icons {
    /// The dashboard: a house.
    pub const HOME: &str =
        r#"<path d="M3 11l9-7 9 7"/><path d="M5 10v10h14V10"/><path d="M10 20v-6h4v6"/>"#;
    /// Products: a bag.
    pub const BAG: &str = r#"<path d="M5 8h14l-1 12H6z"/><path d="M9 8V6a3 3 0 016 0v2"/>"#;
    /// The cart.
    pub const CART: &str = r#"<path d="M3 4h2l2.4 11h10.2L20 8H6.2"/><circle cx="9" cy="19" r="1.5"/><circle cx="17" cy="19" r="1.5"/>"#;
    /// Orders: a parcel.
    pub const BOX: &str =
        r#"<path d="M3 7l9-4 9 4v10l-9 4-9-4z"/><path d="M3 7l9 4 9-4"/><path d="M12 11v10"/>"#;
    /// The payment gateway: a card.
    pub const CARD: &str = r#"<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 10h18"/><path d="M7 15h4"/>"#;
    /// Admin: a shield.
    pub const SHIELD: &str = r#"<path d="M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z"/>"#;
    /// The engine explorer: a cog.
    pub const COG: &str = r#"<circle cx="12" cy="12" r="3.2"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1"/>"#;
    /// Notifications: a bell.
    pub const BELL: &str =
        r#"<path d="M6 16V11a6 6 0 0112 0v5l2 2H4z"/><path d="M10 20a2 2 0 004 0"/>"#;
    /// A step done: a check in a circle.
    pub const DONE: &str = r#"<circle cx="12" cy="12" r="9"/><path d="M8 12.5l2.8 2.8L16.5 9.5"/>"#;
    /// A step under way: a clock.
    pub const ACTIVE: &str = r#"<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>"#;
    /// A step to come: an empty circle.
    pub const PENDING: &str = r#"<circle cx="12" cy="12" r="9"/>"#;
    /// A step that failed: a cross in a circle.
    pub const FAILED: &str = r#"<circle cx="12" cy="12" r="9"/><path d="M9 9l6 6M15 9l-6 6"/>"#;
}

/// An icon from [`icons`], at the text's size and colour, hidden from screen readers (its text
/// says the same).
pub fn icon(paths: &'static str) -> Markup {
    PreEscaped(format!(
        r#"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{paths}</svg>"#
    ))
}

/// The cart's item count in the navigation, kept live by every page's stream.
pub fn cart_count(items: u32) -> Markup {
    html! {
        span #cart-count .count hidden[items == 0] aria-label=(format!("{items} in the cart")) { (items) }
    }
}

/// The navigation pane; `cart` is the cart's item count.
fn nav(who: Option<&Identity>, here: Option<&Page>, cart: u32) -> Markup {
    let admin = who.is_some_and(|w| w.user.is_admin);
    let mut links = vec![
        (Page::Dashboard, "/", icons::HOME, "Dashboard"),
        (Page::Products, "/products", icons::BAG, "Products"),
        (Page::Cart, "/cart", icons::CART, "Cart"),
        (Page::Orders, "/orders", icons::BOX, "Orders"),
    ];
    if admin {
        links.push((Page::Gateway, "/gateway", icons::CARD, "Payment gateway"));
        links.push((Page::Admin, "/admin", icons::SHIELD, "Admin"));
        links.push((
            super::explorer::page(),
            "/admin/engine",
            icons::COG,
            "Engine",
        ));
    }
    let current = here.map(|p| match p {
        Page::Order(_) => Page::Orders,
        Page::Engine(_) => super::explorer::page(),
        other => other.clone(),
    });
    html! {
        nav #nav .nav {
            a .brand href="/" { "ZeroApp" }
            @for (page, href, glyph, label) in &links {
                @let id = format!("nav-{}", href.trim_start_matches('/').replace('/', "-"));
                a id=(if *href == "/" { "nav-dashboard".to_owned() } else { id })
                    href=(href) class=(if current.as_ref() == Some(page) { "here" } else { "" }) {
                    (icon(glyph)) " " (label)
                    @if *page == Page::Cart { " " (cart_count(cart)) }
                }
            }
            @if let Some(who) = who {
                div .who { "Signed in as " b { (who.user.name) } @if who.user.is_admin { " (admin)" } }
                form method="post" action="/logout" {
                    button #logout .secondary type="submit" { "Log out" }
                }
            }
        }
    }
}

/// A whole page: the three panes, the page's stream, its tabs; `cart` is the cart's item count.
pub fn page(who: &Identity, page: &Page, view: View, notes: Markup, cart: u32) -> Markup {
    let stream = format!("@get('{}')", page.stream_path());
    // The session's CSRF token rides along with every command (Datastar posts the signals).
    let signals = format!(
        "{{tab: '{}', busy: false, csrf: '{}'}}",
        view.tab.as_str(),
        who.csrf_token.as_deref().unwrap_or_default()
    );
    // The tab the user picked on this page (path and query) comes back with the page: it is
    // kept in the browser's session storage.
    let remember = "sessionStorage.setItem('tab:' + location.pathname + location.search, $tab)";
    let recall =
        "$tab = sessionStorage.getItem('tab:' + location.pathname + location.search) || $tab";
    let pick = |tab: &str| format!("$tab = '{tab}'; {remember}");
    let opens_on_output = view.tab == super::Tab::Output;
    let body = html! {
        body data-signals=(signals) {
            div #stream hidden data-init=(format!("{recall}; {stream}")) {}
            div .shell {
                (nav(Some(who), Some(page), cart))
                main #main .centre {
                    div .head {
                        h1 #title { (page.title()) }
                        span #busy .busy data-show="$busy" style="display:none" {
                            span .spinner {} "Working…"
                        }
                        div .tabs role="tablist" aria-label="View" {
                            button #tab-input .active[!opens_on_output] type="button" role="tab"
                                aria-controls="input" aria-selected=(!opens_on_output)
                                data-on:click=(pick("input"))
                                data-attr:aria-selected="$tab == 'input' ? 'true' : 'false'"
                                data-class:active="$tab == 'input'" { "Input" }
                            button #tab-output .active[opens_on_output] type="button" role="tab"
                                aria-controls="output" aria-selected=(opens_on_output)
                                data-on:click=(pick("output"))
                                data-attr:aria-selected="$tab == 'output' ? 'true' : 'false'"
                                data-class:active="$tab == 'output'" { "Output" }
                        }
                    }
                    (error_box(""))
                    div #flash {}
                    section #input role="tabpanel" aria-labelledby="tab-input"
                        data-show="$tab == 'input'" style=[opens_on_output.then_some("display:none")] { (view.input) }
                    section #output role="tabpanel" aria-labelledby="tab-output"
                        data-show="$tab == 'output'" style=[(!opens_on_output).then_some("display:none")] { (view.output) }
                }
                aside #aside .aside {
                    @if let Some(aside) = view.aside { (aside) }
                    h2 { (icon(icons::BELL)) " Notifications" }
                    (notes)
                }
            }
        }
    };
    document(&page.title(), body)
}

/// The error box, empty (hidden) or with a message; commands patch it with their failure.
pub fn error_box(message: &str) -> Markup {
    html! {
        div #error .error role="alert" hidden[message.is_empty()] {
            span #error-message { (message) }
            button type="button" title="Dismiss" data-on:click="el.parentElement.hidden = true" { "×" }
        }
    }
}

/// A line at the top of the notifications that is not stored (what the user just did).
pub fn passing_note(line: &str) -> Markup {
    html! { li .note .passing data-kind="item_added" { (line) small { "just now" } } }
}

/// A success message in `#flash`.
pub fn flash(content: Markup) -> Markup {
    html! { div #flash .flash role="status" { (content) } }
}

/// A page for an error (403, 404 …), with the navigation when someone is logged in.
pub fn problem(who: Option<&Identity>, status: u16, message: &str) -> Markup {
    let title = match status {
        403 => "Forbidden",
        404 => "Not found",
        _ => "Something went wrong",
    };
    let body = html! {
        body {
            div .shell {
                (nav(who, None, 0))
                main #main .centre {
                    div .head { h1 #title { (status) " · " (title) } }
                    div #problem .card { p { (message) } p { a href="/" { "Back to the dashboard" } } }
                }
                aside .aside {}
            }
        }
    };
    document(title, body)
}

/// The standalone login page (nobody to show panes for yet); after a failed attempt, its error
/// and the user name that was typed (the password is never sent back).
pub fn login(error: Option<&str>, user: &str) -> Markup {
    let body = html! {
        body {
            main .login {
                h1 { "ZeroApp" }
                p .muted { "Sign in to the storefront." }
                @if let Some(error) = error {
                    div #error .error role="alert" { span #error-message { (error) } }
                }
                form #login-form .card method="post" action="/login" {
                    label for="user" { "User" }
                    input #user name="user" autocomplete="username" required
                        autofocus[user.is_empty()] value=(user);
                    label for="password" { "Password" }
                    input #password name="password" type="password"
                        autocomplete="current-password" required autofocus[!user.is_empty()];
                    button #login type="submit" { "Log in" }
                }
                p .muted { "Demo users: alice, bob, carol (password: name-password); admin." }
            }
        }
    };
    document("Log in", body)
}

/// The right pane's list: the viewer's newest notifications (an admin's: the admins').
pub async fn notifications(shared: &Shared, who: &Identity) -> Result<Markup, ApiError> {
    let list: Vec<Notification> = shared
        .app
        .notifications_for(&who.user, SHOWN_NOTIFICATIONS)
        .await
        .map_err(db_failure)?;
    Ok(html! {
        ul #notifications .notes aria-live="polite" {
            @for note in &list {
                li .note data-kind=(note.kind) {
                    (note.message)
                    small { (when(note.at_ms)) " · " a href=(super::Page::Order(note.order_id.clone()).path()) { "View order" } }
                }
            }
            @if list.is_empty() { li .muted { "Nothing yet." } }
        }
    })
}

/// Cents as dollars.
pub fn money(cents: i64) -> String {
    zeroapp_app::session::money(cents)
}

/// A timestamp (ms since the epoch) as UTC, to the second.
pub fn time(at_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// A timestamp (ms since the epoch) in a table or a note: the date and time to the second, UTC,
/// without the year; the whole timestamp on hover.
pub fn when(at_ms: i64) -> Markup {
    let full = time(at_ms);
    // `2026-12-07 21:58:15 UTC` → `12-07 21:58:15`.
    let short = full.get(5..19).unwrap_or(&full).to_owned();
    html! { time .nowrap title=(full) { (short) } }
}

/// An id as its first 16 characters (a generated order id is 14), the whole on hover.
pub fn short_id(id: &str) -> Markup {
    match id.char_indices().nth(16) {
        Some((cut, _)) => html! { span .id title=(id) { (&id[..cut]) "…" } },
        None => html! { span .id { (id) } },
    }
}

/// A duration in ms, for a person: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn elapsed(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A status as a coloured badge.
pub fn badge(status: &str) -> Markup {
    html! { span .badge .(status) { (status.replace('_', " ")) } }
}
