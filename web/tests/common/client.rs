//! Requests that may fail: the crash tests kill the server while requests are in flight, so a
//! request answers `Err` instead of panicking when the connection breaks or nothing comes back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Reply;

/// One request over a fresh connection, with a deadline for connecting and for each read.
/// `Err` when there was no complete answer: the server may or may not have acted on it.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Reply> {
    let target = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete answer: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

/// A whole HTTP/1.1 answer (`connection: close`, so the body runs to the end, and its
/// `content-length`, when given, must match); `None` if it was cut short.
fn parse(raw: &[u8]) -> Option<Reply> {
    let raw = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let announced = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n != body.len()) {
        return None;
    }
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Sends `raw` bytes as they are (a hand-made request: no header added) and reads the answer;
/// `Err` if there was no complete one.
pub fn raw_request(addr: &str, raw: &[u8], timeout: Duration) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(raw)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    parse(&answer).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete answer: {:?}", String::from_utf8_lossy(&answer)),
        )
    })
}
