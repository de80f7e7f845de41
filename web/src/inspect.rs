//! `zeroapp inspect`: invocations and journals of a data folder no server is using.

use zeroapp_engine::http::format_time;
use zeroapp_engine::{
    Engine, InvocationFilter, InvocationId, InvocationStatus, JournalEntryInfo, TerminalError,
};

use crate::cli::InspectArgs;

/// Prints the invocation list, or one invocation with its journal.
pub async fn run(args: InspectArgs) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::inspect(&args.data_dir).await.map_err(|e| {
        format!(
            "cannot inspect {}: {e} (is a server still using it?)",
            args.data_dir.display()
        )
    })?;
    match &args.invocation {
        Some(id) => show(&engine, id.parse()?)?,
        None => list(&engine, &args)?,
    }
    Ok(())
}

fn list(engine: &Engine, args: &InspectArgs) -> Result<(), Box<dyn std::error::Error>> {
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
    let found = engine.list_invocations(&filter)?;
    println!(
        "{:<21}  {:<11}  {:>8}  {:<24}  target",
        "id", "status", "attempts", "created"
    );
    for info in &found {
        println!(
            "{:<21}  {:<11}  {:>8}  {:<24}  {}",
            info.id.to_string(),
            info.status.as_str(),
            info.failed_attempts,
            format_time(info.created_at),
            info.target
        );
    }
    println!("{} invocation(s)", found.len());
    Ok(())
}

fn show(engine: &Engine, id: InvocationId) -> Result<(), Box<dyn std::error::Error>> {
    let info = engine
        .client()
        .status(id)?
        .ok_or_else(|| format!("no invocation {id} in this data folder"))?;
    println!("invocation   {}", info.id);
    println!("target       {}", info.target);
    println!("status       {}", info.status.as_str());
    println!("cancellation {}", info.cancellation.as_str());
    println!("attempts     {} failed", info.failed_attempts);
    if let Some(error) = &info.last_error {
        println!("last error   {error}");
    }
    println!("created      {}", format_time(info.created_at));
    println!("modified     {}", format_time(info.modified_at));
    if let Some(outcome) = &info.outcome {
        println!("outcome      {}", result(Some(outcome)));
    }
    println!("journal:");
    for entry in engine.journal(id)?.unwrap_or_default() {
        print_entry(&entry);
    }
    Ok(())
}

fn print_entry(entry: &JournalEntryInfo) {
    println!(
        "  {:>4}  {:<14} {:<28} attempt {:<3} {}",
        entry.index,
        entry.kind,
        entry.name.as_deref().unwrap_or("-"),
        entry.attempt,
        result(entry.result.as_ref())
    );
}

fn result(result: Option<&Result<Vec<u8>, TerminalError>>) -> String {
    match result {
        None => "(pending)".to_owned(),
        Some(Ok(bytes)) if bytes.is_empty() => "ok".to_owned(),
        Some(Ok(bytes)) => format!("= {}", String::from_utf8_lossy(bytes)),
        Some(Err(error)) => format!("failed {}: {}", error.code(), error.message()),
    }
}
