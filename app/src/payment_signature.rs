//! Signatures of the payment gateway's callbacks: HMAC-SHA256 of the request body under a
//! secret the server keeps in its data folder, written as lowercase hex.
//!
//! The gateway signs the exact bytes of a callback's body with [`sign`]; the server checks them
//! with [`verify`] before acting on it, so a request that did not come from the gateway, or whose
//! body was changed on the way, is refused. [`load_or_create_secret`] gives both sides the
//! secret: 32 random bytes made once, kept in [`SECRET_FILE`], readable by the owner only.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! use zeroapp_app::payment_signature;
//!
//! let secret = payment_signature::load_or_create_secret("./data".as_ref())?;
//! let body = br#"{"order_id":"o-1","paid":true}"#;
//! let signature = payment_signature::sign(&secret, body);
//! assert!(payment_signature::verify(&secret, body, &signature));
//! # Ok(()) }
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::Sha256;

/// The file of the data folder that holds the secret.
pub const SECRET_FILE: &str = "payment-callback.key";

/// How many bytes the secret has.
pub const SECRET_LEN: usize = 32;

/// The HMAC-SHA256 of `body` under `secret`, as 64 lowercase hex digits.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Whether `signature_hex` is the HMAC-SHA256 of `body` under `secret` (64 hex digits, either
/// case). The digests are compared in constant time, so how long a refusal takes tells nothing
/// about how close a forged signature came.
pub fn verify(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    // `verify_slice` refuses a tag of the wrong length and compares the rest in constant time.
    mac(secret, body).verify_slice(&signature).is_ok()
}

/// An HMAC-SHA256 of `body` under `secret`, not yet finalized.
fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length: a long one is hashed, a short one padded.
        Err(_) => unreachable!("HMAC-SHA256 refused a key"),
    };
    mac.update(body);
    mac
}

/// The secret kept in `data_dir`/[`SECRET_FILE`], made (and the folder with it) on the first
/// call: [`SECRET_LEN`] bytes from the operating system's random number generator, in a file
/// only its owner may read or write (mode 0600 on Unix). Later calls, in this process or the
/// next, return the same bytes.
///
/// The file appears whole or not at all: the secret is written and fsynced under a temporary
/// name, then linked to its own name, which fails if another process got there first (its
/// secret wins and is returned). A kill at any moment leaves at worst a stray temporary file,
/// never a short secret. A file that exists with looser permissions is tightened to 0600.
///
/// Fails with [`io::ErrorKind::InvalidData`] if the file does not hold exactly [`SECRET_LEN`]
/// bytes, and with the I/O error if the folder cannot be read or written.
pub fn load_or_create_secret(data_dir: &Path) -> io::Result<Vec<u8>> {
    let data_dir = if data_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        data_dir
    };
    let path = data_dir.join(SECRET_FILE);
    match read_secret(&path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        found => return found,
    }
    fs::create_dir_all(data_dir)?;
    let mut secret = vec![0_u8; SECRET_LEN];
    let mut suffix = [0_u8; 8];
    for bytes in [&mut secret[..], &mut suffix[..]] {
        SysRng.try_fill_bytes(bytes).map_err(|e| {
            io::Error::other(format!(
                "the operating system's random number generator failed: {e}"
            ))
        })?;
    }
    let temporary = data_dir.join(format!(
        ".{SECRET_FILE}.{}.{}.tmp",
        std::process::id(),
        hex::encode(suffix)
    ));
    let linked = write_private(&temporary, &secret).and_then(|()| fs::hard_link(&temporary, &path));
    // Whatever happened, the temporary name is not needed any more.
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            // Make the new name durable too, not only the file's bytes.
            File::open(data_dir)?.sync_all()?;
            Ok(secret)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read_secret(&path),
        Err(error) => Err(error),
    }
}

/// Reads the secret at `path`, checking its length and tightening its permissions.
fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let secret = fs::read(path)?;
    if secret.len() != SECRET_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {} bytes, not the {SECRET_LEN} of a payment-callback secret; \
                 remove it to make a new secret",
                path.display(),
                secret.len()
            ),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = fs::metadata(path)?.permissions();
        if permissions.mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(secret)
}

/// Creates `path` (which must not exist) readable and writable by its owner only, writes
/// `bytes` to it and fsyncs it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
