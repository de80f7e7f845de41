{
// A call, a promise or an awakeable, given an hour: a terminal error (408) after that.
let (id, payment) = ctx.awakeable::<String>();
let receipt = match ctx.timeout(payment, Duration::from_secs(3600)).await {
    Ok(receipt) => receipt,
    Err(timed_out) if timed_out.code() == TerminalError::TIMED_OUT => "no payment".to_owned(),
    Err(other) => return Err(other.into()),
};
}
