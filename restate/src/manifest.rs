//! The discovery manifest Restate reads from a deployment, built at run time from the engine's
//! definitions: one service per definition, one handler per handler, JSON in and out unless the
//! handler takes or answers bytes (`Binary`).

use restate_sdk::discovery::{
    Handler, HandlerName, HandlerType, InputPayload, OutputPayload, RetryPolicyOnMaxAttempts,
    Service, ServiceName, ServiceType,
};
use zeroapp_engine::{Definition, Format, Formats, HandlerKind, RetryPolicy, ServiceKind};

use crate::{DeploymentError, Retention};

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The engine's invocation retry policy (forever, backing off to 10 s), set on every service:
/// left unset, Restate's default pauses an invocation after 70 attempts. Restate counts
/// attempts, so "forever" is the largest count it takes (at 10 s apart, ~1,300 years).
struct InvocationRetry {
    initial_interval: u64,
    max_interval: u64,
    factor: f64,
    max_attempts: u64,
}

fn invocation_retry() -> InvocationRetry {
    let policy = RetryPolicy::default();
    InvocationRetry {
        initial_interval: millis(policy.initial_delay),
        max_interval: millis(policy.max_delay),
        factor: policy.factor,
        max_attempts: u64::from(u32::MAX),
    }
}

/// What the handler takes: JSON, or any bytes whatever their content type (as Restate's SDKs
/// declare a binary input). A missing body is an empty input either way.
fn input(format: Format) -> InputPayload {
    let content_type = match format {
        Format::Json => format.content_type(),
        Format::Binary => "*/*",
    };
    InputPayload {
        content_type: Some(content_type.to_owned()),
        json_schema: None,
        required: Some(false),
    }
}

fn output(format: Format) -> OutputPayload {
    OutputPayload {
        content_type: Some(format.content_type().to_owned()),
        json_schema: None,
        set_content_type_if_empty: Some(false),
    }
}

/// The manifest entry of one definition.
pub(crate) fn service(
    definition: &Definition,
    retention: &Retention,
) -> Result<Service, DeploymentError> {
    let name = ServiceName::try_from(definition.name().to_owned()).map_err(|e| {
        DeploymentError::InvalidName {
            name: definition.name().to_owned(),
            reason: e.to_string(),
        }
    })?;
    let ty = match definition.kind() {
        ServiceKind::Service => ServiceType::Service,
        ServiceKind::VirtualObject => ServiceType::VirtualObject,
        ServiceKind::Workflow => ServiceType::Workflow,
    };
    let handlers = definition
        .handlers()
        .into_iter()
        .map(|(handler, kind)| {
            let private = definition.is_ingress_private(handler);
            let formats = definition.formats(handler).unwrap_or(Formats {
                input: Format::Json,
                output: Format::Json,
            });
            self::handler(
                definition.name(),
                handler,
                kind,
                private,
                formats,
                retention,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let retry = invocation_retry();
    let is_workflow = definition.kind() == ServiceKind::Workflow;
    Ok(Service {
        name,
        ty,
        handlers,
        documentation: None,
        metadata: Default::default(),
        inactivity_timeout: None,
        abort_timeout: None,
        journal_retention: Some(millis(retention.journal)),
        // On a workflow, this applies to its shared handlers only.
        idempotency_retention: (!is_workflow).then(|| millis(retention.idempotency)),
        enable_lazy_state: None,
        ingress_private: None,
        retry_policy_initial_interval: Some(retry.initial_interval),
        retry_policy_max_interval: Some(retry.max_interval),
        retry_policy_max_attempts: Some(retry.max_attempts),
        retry_policy_exponentiation_factor: Some(retry.factor),
        retry_policy_on_max_attempts: Some(RetryPolicyOnMaxAttempts::Pause),
    })
}

fn handler(
    service: &str,
    name: &str,
    kind: HandlerKind,
    ingress_private: bool,
    formats: Formats,
    retention: &Retention,
) -> Result<Handler, DeploymentError> {
    let handler_name = HandlerName::try_from(name).map_err(|e| DeploymentError::InvalidName {
        name: format!("{service}/{name}"),
        reason: e.to_string(),
    })?;
    let ty = match kind {
        HandlerKind::Stateless => None,
        HandlerKind::Exclusive => Some(HandlerType::Exclusive),
        HandlerKind::Shared => Some(HandlerType::Shared),
        HandlerKind::WorkflowRun => Some(HandlerType::Workflow),
    };
    let is_run = kind == HandlerKind::WorkflowRun;
    Ok(Handler {
        name: handler_name,
        ty,
        input: Some(input(formats.input)),
        output: Some(output(formats.output)),
        documentation: None,
        metadata: Default::default(),
        inactivity_timeout: None,
        abort_timeout: None,
        journal_retention: None,
        idempotency_retention: None,
        workflow_completion_retention: is_run.then(|| millis(retention.workflow)),
        enable_lazy_state: None,
        // The same visibility as on the embedded ingress: Restate's ingress refuses it too.
        ingress_private: ingress_private.then_some(true),
        retry_policy_initial_interval: None,
        retry_policy_max_interval: None,
        retry_policy_max_attempts: None,
        retry_policy_exponentiation_factor: None,
        retry_policy_on_max_attempts: None,
    })
}
