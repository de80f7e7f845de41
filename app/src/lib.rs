//! The order-fulfillment domain: services, objects and workflows registered with the engine.
//!
//! The domain arrives with its own issue; for now this crate only names what the storefront
//! registers, so that the binary and the workspace layout are in place.

use zeroapp_engine::EngineBuilder;

/// Registers the domain's services with an engine builder.
pub fn register(builder: EngineBuilder) -> EngineBuilder {
    builder
}
