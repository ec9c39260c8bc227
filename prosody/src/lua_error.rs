//! Lua errors as the log shows them.

/// The first line of a Lua error: the message without mlua's traceback.
pub fn summary(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or("").to_owned()
}
