{
return Err(TerminalError::with_code(404, "no such product").into());
}
