//! Escaping of keys and values for line-oriented output (`kv scan`), so that every entry
//! stays on one line and binary data survives: valid UTF-8 text is printed as is, except
//! backslash, tab, newline, carriage return and other control characters; bytes that are
//! not UTF-8 become `\xNN`.

/// `bytes` as one line of text, reversibly escaped.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape_bytes(b"bench/key-1"), "bench/key-1");
        assert_eq!(escape_bytes("zürich".as_bytes()), "zürich");
        assert_eq!(escape_bytes(b""), "");
    }

    #[test]
    fn separators_and_backslashes_are_escaped() {
        assert_eq!(escape_bytes(b"a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(escape_bytes(b"\x00\x1b"), "\\u{0}\\u{1b}");
    }

    #[test]
    fn invalid_utf8_becomes_hex() {
        assert_eq!(escape_bytes(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(escape_bytes(&[0xe2, 0x82]), "\\xe2\\x82");
    }
}
