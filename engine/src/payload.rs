//! How handler inputs and outputs travel: JSON for any serde type (the default), or the bytes
//! themselves for [`Binary`].
//!
//! A handler's input and output types say which, when it is registered; the HTTP ingress then
//! takes and answers `application/json` or `application/octet-stream` accordingly, as Restate
//! does for its SDKs' JSON and binary serdes. Calls, sends and the [`Client`](crate::Client)
//! encode with the same traits, so a caller passing a [`Binary`] reaches a binary handler
//! byte for byte.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a payload is written on the wire and in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON text; an empty payload reads as `null`.
    Json,
    /// Bytes, as they are.
    Binary,
}

impl Format {
    /// The HTTP content type of a payload in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Binary => "application/octet-stream",
        }
    }
}

/// A value that can be sent as an input or returned as an output.
pub trait Encode {
    /// How the value is written.
    const FORMAT: Format;
    /// The value's bytes, or why it cannot be written.
    fn encode(&self) -> Result<Vec<u8>, String>;
}

/// A value that can be received as an input or read as an output.
pub trait Decode: Sized {
    /// How the value is read.
    const FORMAT: Format;
    /// The value from its bytes, or why they are not one.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

impl<T: Serialize + ?Sized> Encode for T {
    const FORMAT: Format = Format::Json;

    fn encode(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| e.to_string())
    }
}

impl<T: DeserializeOwned> Decode for T {
    const FORMAT: Format = Format::Json;

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        // Nothing is `null`: a handler with no output answers no bytes, as Restate does.
        let bytes = if bytes.is_empty() { b"null" } else { bytes };
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Raw bytes as a handler's input or output: taken and answered as they are
/// (`application/octet-stream` over HTTP), not as JSON.
///
/// ```
/// use zeroapp_engine::prelude::*;
/// use zeroapp_engine::Binary;
///
/// // Reverses whatever bytes it is sent.
/// async fn reverse(_: Context, input: Binary) -> Result<Binary, HandlerError> {
///     let mut bytes = input.0;
///     bytes.reverse();
///     Ok(Binary(bytes))
/// }
/// let service = Service::new("Bytes").handler("reverse", reverse);
/// # drop(service);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Vec<u8>);

impl Encode for Binary {
    const FORMAT: Format = Format::Binary;

    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(self.0.clone())
    }
}

impl Decode for Binary {
    const FORMAT: Format = Format::Binary;

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        Ok(Binary(bytes.to_vec()))
    }
}

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        Binary(bytes)
    }
}

impl From<Binary> for Vec<u8> {
    fn from(binary: Binary) -> Self {
        binary.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_types_are_json_and_binary_is_itself() {
        assert_eq!(<u32 as Encode>::FORMAT, Format::Json);
        assert_eq!(7u32.encode().as_deref(), Ok(&b"7"[..]));
        assert_eq!(<Option<u32> as Decode>::decode(b""), Ok(None));
        assert!(<u32 as Decode>::decode(b"\xff").is_err());
        let bytes = Binary(vec![0, 159, 146, 150]);
        assert_eq!(<Binary as Encode>::FORMAT, Format::Binary);
        assert_eq!(bytes.encode().as_deref(), Ok(&[0u8, 159, 146, 150][..]));
        assert_eq!(Binary::decode(&[0, 255]), Ok(Binary(vec![0, 255])));
        assert_eq!(Binary::decode(b""), Ok(Binary(Vec::new())));
    }
}
