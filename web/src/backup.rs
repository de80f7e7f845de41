//! Backups of a serving data folder: `POST /backup` on the admin listener, and `zeroapp backup
//! DEST`, which asks a running server for one.
//!
//! The engine's file is copied first, between two of its commits, then the app's database with
//! SQLite's `VACUUM INTO`: every step the engine copy has journaled wrote its rows before, so
//! they are in the later database copy, and a step after the engine copy's moment replays on the
//! restored folder as after a crash (steps are idempotent). A server started on the copy
//! recovers exactly as one killed at the engine copy's moment would.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroapp_app::App;
use zeroapp_engine::http::{self, ApiError, Request, Response, Routes};
use zeroapp_engine::{Client, DATA_FILE};

use crate::cli::BackupArgs;

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The folder it wrote.
    pub dest: PathBuf,
    /// The engine file's size.
    pub engine_bytes: u64,
    /// The app database's size.
    pub app_bytes: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
}

/// Copies the serving folder's stores to `dest`, a folder that must not exist yet.
pub async fn take(
    engine: &Client,
    app: &App,
    data_dir: &Path,
    dest: &Path,
) -> Result<Backup, ApiError> {
    if !dest.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "the destination must be an absolute path, not {}",
            dest.display()
        )));
    }
    if dest.exists() {
        return Err(ApiError::new(
            409,
            format!(
                "{} exists already: back up into a new folder",
                dest.display()
            ),
        ));
    }
    std::fs::create_dir_all(dest)
        .map_err(|e| ApiError::new(500, format!("cannot create {}: {e}", dest.display())))?;
    let started = Instant::now();
    let engine_bytes = engine.back_up(dest.join(DATA_FILE)).await?;
    let app_bytes = app
        .back_up_database(&dest.join(zeroapp_app::DATABASE_FILE))
        .await
        .map_err(|e| ApiError::new(500, format!("cannot copy the app's database: {e}")))?;
    let key = zeroapp_app::payment_signature::SECRET_FILE;
    std::fs::copy(data_dir.join(key), dest.join(key))
        .map_err(|e| ApiError::new(500, format!("cannot copy {key}: {e}")))?;
    Ok(Backup {
        dest: dest.to_owned(),
        engine_bytes,
        app_bytes,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// The admin API's routes with `POST /backup {"dest": "/absolute/new/folder"}` added.
pub fn with_backup_route(admin: Routes, engine: Client, app: App, data_dir: PathBuf) -> Routes {
    std::sync::Arc::new(move |request: Request| {
        if request.uri().path() != "/backup" {
            return admin(request);
        }
        let (engine, app, data_dir) = (engine.clone(), app.clone(), data_dir.clone());
        Box::pin(async move {
            answer(&engine, &app, &data_dir, request)
                .await
                .unwrap_or_else(ApiError::into_response)
        })
    })
}

async fn answer(
    engine: &Client,
    app: &App,
    data_dir: &Path,
    request: Request,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        dest: PathBuf,
    }
    if request.method() != Method::POST {
        return Err(ApiError::new(
            405,
            "use POST /backup {\"dest\": \"/absolute/path\"}",
        ));
    }
    let body = http::read_body(request, 64 * 1024).await?;
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"dest\": \"/absolute/path\"}}: {e}"))
    })?;
    let backup = take(engine, app, data_dir, &body.dest).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "dest": backup.dest,
            "engineBytes": backup.engine_bytes,
            "appBytes": backup.app_bytes,
            "tookMs": backup.took_ms,
        }),
    ))
}

/// `zeroapp backup DEST`: asks the server whose admin API is at `--admin-addr` for a backup.
pub async fn run(args: BackupArgs) -> Result<(), Box<dyn std::error::Error>> {
    let dest = std::path::absolute(&args.dest)?;
    let body = json!({ "dest": dest }).to_string();
    let admin = crate::remote::Server::admin(&args.admin)?;
    let (status, answer) = admin
        .ask(Method::POST, "/backup", body.into_bytes())
        .await?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = answer["message"].as_str().unwrap_or("no message");
        return Err(format!("the server refused the backup ({status}): {message}").into());
    }
    println!(
        "backed up into {}: engine.redb {} bytes, app.sqlite {} bytes, in {} ms",
        dest.display(),
        answer["engineBytes"],
        answer["appBytes"],
        answer["tookMs"]
    );
    Ok(())
}
