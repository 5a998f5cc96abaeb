/// Text from outside the box (a camera's reply, a hold reason, a device name) made safe to print: control
/// characters (Unicode general category Cc: U+0000–U+001F, DEL, U+0080–U+009F — escape sequences, newlines)
/// shown as `\u{…}`, and at most `limit` characters kept (a longer text ends with `…`).
public func printable(_ text: String, limit: Int = .max) -> String {
    let escaped = text.unicodeScalars.map {
        isControlCharacter($0) ? "\\u{\(String($0.value, radix: 16))}" : String($0)
    }.joined()
    return escaped.count > limit ? String(escaped.prefix(limit)) + "…" : escaped
}

/// A control character (Unicode general category Cc).
public func isControlCharacter(_ u: Unicode.Scalar) -> Bool { u.properties.generalCategory == .control }
