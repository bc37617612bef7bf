//! A JSON writer for the `--json` outputs: objects of strings, numbers, booleans and arrays,
//! written by hand (no serde: the outputs are flat and the binary goes onto firmware).

use std::fmt::Write;

/// Builds one JSON object, field by field.
#[derive(Debug, Default)]
pub struct Object {
    out: String,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object {
            out: String::from("{"),
        }
    }

    fn key(&mut self, k: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        string_into(&mut self.out, k);
        self.out.push(':');
    }

    /// A string field.
    pub fn str(mut self, k: &str, v: &str) -> Object {
        self.key(k);
        string_into(&mut self.out, v);
        self
    }

    /// A number field.
    pub fn num(mut self, k: &str, v: impl Into<i128>) -> Object {
        self.key(k);
        let _ = write!(self.out, "{}", v.into());
        self
    }

    /// A decimal number field (latencies in ms).
    pub fn float(mut self, k: &str, v: f64) -> Object {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.out, "{v}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    /// A field holding already-written JSON (an object or an array).
    pub fn raw(mut self, k: &str, json: &str) -> Object {
        self.key(k);
        self.out.push_str(json);
        self
    }

    /// The finished object.
    pub fn end(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Joins finished JSON values into an array.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string (quotes, escapes; control characters as `\u00XX`).
pub fn string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_escapes() {
        let o = Object::new()
            .str("name", "a\"b\\c\n\u{1}")
            .num("pid", 42)
            .num("big", u64::MAX)
            .float("ms", 0.25)
            .raw("list", &array(["1".to_string(), "2".to_string()]))
            .end();
        assert_eq!(
            o,
            r#"{"name":"a\"b\\c\n\u0001","pid":42,"big":18446744073709551615,"ms":0.25,"list":[1,2]}"#
        );
        assert_eq!(Object::new().end(), "{}");
    }
}
