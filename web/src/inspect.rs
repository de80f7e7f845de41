//! `zeroapp inspect`: invocations and journals of a data folder no server is using; and the
//! tables both it and `zeroapp invocations` (a running server's) print, from the admin API's
//! JSON shapes.

use serde_json::Value;
use zeroapp_engine::http::{invocation_detail_json, invocation_json};
use zeroapp_engine::{Engine, InvocationFilter, InvocationId, InvocationStatus};

use crate::cli::InspectArgs;

/// Prints the invocation list, or one invocation with its journal.
pub async fn run(args: InspectArgs) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::inspect(&args.data_dir).await.map_err(|e| {
        format!(
            "cannot inspect {}: {e} (is a server still using it?)",
            args.data_dir.display()
        )
    })?;
    let answer = match &args.invocation {
        Some(id) => show(&engine, id.parse()?)?,
        None => list(&engine, &args)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else if args.invocation.is_some() {
        print_invocation(&answer);
    } else {
        print_list(answer["invocations"].as_array().map_or(&[], Vec::as_slice));
    }
    Ok(())
}

fn list(engine: &Engine, args: &InspectArgs) -> Result<Value, Box<dyn std::error::Error>> {
    let filter = InvocationFilter {
        status: args
            .status
            .as_deref()
            .map(str::parse::<InvocationStatus>)
            .transpose()?,
        service: args.service.clone(),
        key: None,
        limit: Some(args.limit),
    };
    let found: Vec<Value> = engine
        .list_invocations(&filter)?
        .iter()
        .map(invocation_json)
        .collect();
    Ok(serde_json::json!({ "invocations": found }))
}

fn show(engine: &Engine, id: InvocationId) -> Result<Value, Box<dyn std::error::Error>> {
    let info = engine
        .client()
        .status(id)?
        .ok_or_else(|| format!("no invocation {id} in this data folder"))?;
    let journal = engine.journal(id)?.unwrap_or_default();
    Ok(invocation_detail_json(&info, &journal))
}

/// A table of invocations, as the admin API lists them.
pub fn print_list(invocations: &[Value]) {
    println!(
        "{:<21}  {:<11}  {:>8}  {:<24}  target",
        "id", "status", "attempts", "created"
    );
    for info in invocations {
        println!(
            "{:<21}  {:<11}  {:>8}  {:<24}  {}",
            text(&info["id"]),
            text(&info["status"]),
            text(&info["failedAttempts"]),
            text(&info["createdAt"]),
            text(&info["target"])
        );
    }
    println!("{} invocation(s)", invocations.len());
}

/// One invocation with its journal, as the admin API shows it.
pub fn print_invocation(info: &Value) {
    println!("invocation   {}", text(&info["id"]));
    println!("target       {}", text(&info["target"]));
    println!("status       {}", text(&info["status"]));
    println!("cancellation {}", text(&info["cancellation"]));
    println!("attempts     {} failed", info["failedAttempts"]);
    if let Some(error) = info["lastError"].as_str() {
        println!("last error   {error}");
    }
    println!("created      {}", text(&info["createdAt"]));
    println!("modified     {}", text(&info["modifiedAt"]));
    if !info["outcome"].is_null() {
        println!("outcome      {}", result(&info["outcome"]));
    }
    println!("journal:");
    for entry in info["journal"].as_array().map_or(&[][..], Vec::as_slice) {
        println!(
            "  {:>4}  {:<14} {:<28} attempt {:<3} {}",
            text(&entry["index"]),
            text(&entry["kind"]),
            entry["name"].as_str().unwrap_or("-"),
            text(&entry["attempt"]),
            result(&entry["result"])
        );
    }
}

/// A string field as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// `null` (pending), `{"value": …}` or `{"failure": {"code", "message"}}`, for a person.
fn result(result: &Value) -> String {
    if result.is_null() {
        "(pending)".to_owned()
    } else if let Some(failure) = result.get("failure") {
        format!("failed {}: {}", failure["code"], text(&failure["message"]))
    } else if result["value"].is_null() {
        "ok".to_owned()
    } else if let Some(time) = result["time"].as_str() {
        format!("= {time}")
    } else {
        format!("= {}", result["value"])
    }
}
