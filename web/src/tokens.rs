//! The bearer tokens of the engine's listeners: from a flag (or its environment variable), else
//! from a file in the data folder; and the rule that a listener other machines can reach needs
//! one.

use std::net::SocketAddr;
use std::path::Path;

use zeroapp_engine::http::BearerToken;

/// A listener's token and where it comes from.
pub struct Source<'a> {
    /// The listener, as messages name it: `ingress`, `admin API`.
    pub listener: &'static str,
    /// The flag that sets it: `--ingress-token`.
    pub flag: &'static str,
    /// The file in the data folder read when the flag is not given: `ingress.token`.
    pub file: &'static str,
    /// The flag's value, if given.
    pub given: Option<&'a str>,
}

impl<'a> Source<'a> {
    /// The ingress's token: `--ingress-token` (given here if set), else `ingress.token`.
    pub fn ingress(given: Option<&'a str>) -> Self {
        Self {
            listener: "ingress",
            flag: "--ingress-token",
            file: "ingress.token",
            given,
        }
    }

    /// The admin API's token: `--admin-token` (given here if set), else `admin.token`.
    pub fn admin(given: Option<&'a str>) -> Self {
        Self {
            listener: "admin API",
            flag: "--admin-token",
            file: "admin.token",
            given,
        }
    }
}

/// The token of `source`: the flag's value, else the file's content in `data_dir`, else none.
/// A token that is too short or not visible ASCII, or a file that cannot be read, is an error
/// that says which.
pub fn load(source: &Source<'_>, data_dir: &Path) -> Result<Option<BearerToken>, String> {
    if let Some(given) = source.given {
        return BearerToken::new(given)
            .map(Some)
            .map_err(|e| format!("{} {e}", source.flag));
    }
    let path = data_dir.join(source.file);
    match std::fs::read_to_string(&path) {
        Ok(text) => BearerToken::new(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Refuses a listener that other machines can reach (not a loopback address) without a token.
pub fn check_exposure(
    source: &Source<'_>,
    addr: SocketAddr,
    token: Option<&BearerToken>,
) -> Result<(), String> {
    if token.is_some() || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "the {} would listen on {addr}, which other machines can reach, without a token: anyone \
         there could call every handler. Give it a token ({} or a file {} in the data folder), \
         or listen on 127.0.0.1",
        source.listener, source.flag, source.file
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_flag_wins_then_the_file_then_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&Source::ingress(None), dir.path()).unwrap().is_none());
        std::fs::write(
            dir.path().join("ingress.token"),
            "from-the-file-0123456789\n",
        )
        .unwrap();
        assert!(load(&Source::ingress(None), dir.path()).unwrap().is_some());
        assert!(
            load(
                &Source::ingress(Some("from-the-flag-0123456789")),
                dir.path()
            )
            .unwrap()
            .is_some()
        );
        let short = load(&Source::ingress(Some("short")), dir.path()).unwrap_err();
        assert!(
            short.contains("--ingress-token") && short.contains("16"),
            "{short}"
        );
        std::fs::write(dir.path().join("ingress.token"), "tiny").unwrap();
        let bad = load(&Source::ingress(None), dir.path()).unwrap_err();
        assert!(bad.contains("ingress.token"), "{bad}");
    }

    #[test]
    fn only_a_loopback_listener_may_go_without_a_token() {
        let token = BearerToken::new("a-token-0123456789").unwrap();
        let outside: SocketAddr = "0.0.0.0:9080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9080".parse().unwrap();
        let v6: SocketAddr = "[::1]:9080".parse().unwrap();
        assert!(check_exposure(&Source::ingress(None), local, None).is_ok());
        assert!(check_exposure(&Source::ingress(None), v6, None).is_ok());
        assert!(check_exposure(&Source::ingress(None), outside, Some(&token)).is_ok());
        let refused = check_exposure(&Source::ingress(None), outside, None).unwrap_err();
        assert!(
            refused.contains("0.0.0.0:9080") && refused.contains("--ingress-token"),
            "{refused}"
        );
    }
}
