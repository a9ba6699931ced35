//! Server-rendered pages of the example server, working with JavaScript off: the login
//! form (`GET /login`, `POST /login` as a form) and the account page (`GET /account`,
//! `POST /account/profile`, a logout button posting to `/session/logout`).
//!
//! Forms carry the session's CSRF token in a hidden `csrf_token` field (the layer reads
//! it, see `SessionLayer::with_forms`). The login form has no session to protect yet, so
//! it demands positive proof that it was posted from this site (`Origin` or
//! `Sec-Fetch-Site: same-origin`): no proof, no session (login CSRF).

use axum::extract::{FromRequest as _, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jwt_session::{Login, SessionContext, Update, safe_next};
use serde::Deserialize;

use super::{App, Session, UserData};

/// Whether a request carries an HTML form body.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Text for HTML (element content and quoted attribute values).
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

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — jwt-session</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1d2330; }}
  h1 {{ font-size: 1.4rem; }}
  form {{ display: grid; gap: .6rem; margin: 1.2rem 0; padding: 1rem; border: 1px solid #d5dae3; border-radius: 8px; }}
  label {{ display: grid; gap: .2rem; }}
  input[type=text], input[type=password] {{ padding: .45rem .6rem; border: 1px solid #b9c1cf; border-radius: 6px; font: inherit; }}
  button {{ justify-self: start; padding: .45rem 1rem; border: 0; border-radius: 6px; background: #2f5bd3; color: white; font: inherit; cursor: pointer; }}
  .error {{ color: #b3261e; background: #fdecea; padding: .5rem .75rem; border-radius: 6px; }}
  .muted {{ color: #5b6475; }}
  .check {{ display: flex; gap: .4rem; align-items: center; }}
</style>
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title),
    )
}

fn login_html(next: &str, csrf_input: Option<&str>, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" id="login-error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in</h1>
{error}
<form method="post" action="/login" id="login-form">
  <label>User name <input type="text" name="username" id="username" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
  <label class="check"><input type="checkbox" name="remember" value="true" id="remember"> Remember me on this device</label>
  <input type="hidden" name="next" value="{next}">
  {csrf}
  <button type="submit" id="login-submit">Sign in</button>
</form>
<p class="muted">Demo users: alice / wonderland, bob / builder. The <a href="/">single-page app</a> uses the same sessions.</p>"#,
        next = escape(next),
        csrf = csrf_input.unwrap_or_default(),
    );
    page("Sign in", &body)
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// `GET /login`: the HTML login form. Over a live session it carries that session's CSRF
/// token, since a login then ends that session (an unsafe request of the session).
pub(crate) async fn login_page(
    session: Option<Session>,
    Query(query): Query<NextQuery>,
) -> Html<String> {
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("/account");
    let csrf = session.as_ref().map(Session::csrf_input);
    Html(login_html(next, csrf.as_deref(), None))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    remember: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login` as a form: same-origin proof, then the credentials; `303` to `next`
/// (a path of this site) or `/account`; else the form again with an error and no session.
pub(crate) async fn login_form(
    app: App,
    ctx: SessionContext<UserData>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let same_origin = jwt_session::proves_same_origin(
        &parts.headers,
        parts.uri.authority().map(|a| a.as_str()),
        ctx.config().origins(),
    );
    let request = Request::from_parts(parts, body);
    let form = match axum::Form::<LoginForm>::from_request(request, &()).await {
        Ok(axum::Form(form)) => form,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(login_html(
                    "/account",
                    None,
                    Some("The form could not be read."),
                )),
            )
                .into_response();
        }
    };
    let next = form
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("/account")
        .to_owned();
    if !same_origin {
        return (
            StatusCode::FORBIDDEN,
            Html(login_html(
                &next,
                None,
                Some("This sign-in form must be sent from this site."),
            )),
        )
            .into_response();
    }
    if !app.check(&form.username, &form.password) {
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_html(
                &next,
                None,
                Some("Wrong user name or password."),
            )),
        )
            .into_response();
    }
    let remember = form.remember.as_deref().is_some_and(|v| !v.is_empty());
    match Login::new(form.username, UserData::default()) {
        Ok(login) => (login.remember(remember), Redirect::to(&next)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(login_html(
                &next,
                None,
                Some("The session could not be started."),
            )),
        )
            .into_response(),
    }
}

/// `GET /account`: who is signed in, until when, a profile form and a logout button.
pub(crate) async fn account(session: Session) -> Html<String> {
    let user = session.subject();
    let name = session.data().display_name.as_deref().unwrap_or("");
    let csrf = session.csrf_input();
    let body = format!(
        r#"<h1>Your account</h1>
<p>Signed in as <strong id="account-user">{user}</strong>{shown}.</p>
<p class="muted" id="account-deadline">This session ends after {left} seconds without activity{remembered}.</p>
<form method="post" action="/account/profile" id="profile-form">
  <label>Display name <input type="text" name="display_name" id="display-name" value="{name}" maxlength="64" required></label>
  {csrf}
  <button type="submit" id="profile-submit">Save</button>
</form>
<form method="post" action="/session/logout" id="logout-form">
  {csrf}
  <button type="submit" id="logout-submit">Sign out</button>
</form>"#,
        user = escape(user),
        shown = if name.is_empty() {
            String::new()
        } else {
            format!(r#" (<span id="account-name">{}</span>)"#, escape(name))
        },
        left = session.seconds_left(),
        remembered = if session.remembered() {
            " (remembered on this device)"
        } else {
            ""
        },
        name = escape(name),
    );
    Html(page("Your account", &body))
}

#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    display_name: String,
}

/// `POST /account/profile` (form): change the display name in the session in place, then
/// back to the page.
pub(crate) async fn account_profile(
    State(_app): State<App>,
    session: Session,
    axum::Form(form): axum::Form<ProfileForm>,
) -> Response {
    let name = form.display_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(page(
                "Your account",
                r#"<p class="error">A display name has 1 to 64 characters.</p><p><a href="/account">Back</a></p>"#,
            )),
        )
            .into_response();
    }
    let mut data = session.data().clone();
    data.display_name = Some(name.to_owned());
    (Update::new(data), Redirect::to("/account")).into_response()
}
