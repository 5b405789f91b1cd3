//! Command-line options of the simulators: `--name value` pairs, flags, and numbers
//! written the way a course writes them (`241`, `0xf1`, `0b11110001`, `16K`, `4M`).
//!
//! [`Args`] remembers which options a model read, so [`Args::finish`] can refuse the
//! ones it did not (a misspelt option is an error, not silently ignored).

use std::collections::BTreeMap;
use std::fmt;

/// A command-line error: what was wrong, in words a student can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns an [`ArgError`] built from a message.
pub fn arg_error(message: impl Into<String>) -> ArgError {
    ArgError(message.into())
}

/// The options after the model name: `--name value` and bare `--flag`s.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    used: std::cell::RefCell<Vec<String>>,
}

/// Option names that never take a value.
const FLAG_NAMES: &[&str] = &["quiz", "no-coalesce", "help", "asid", "flush", "sweep"];

impl Args {
    /// Parses `words` (the options after the model name).
    pub fn parse(words: &[String]) -> Result<Args, ArgError> {
        let mut args = Args::default();
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            let Some(name) = word.strip_prefix("--") else {
                return Err(arg_error(format!(
                    "unexpected argument `{word}` (options start with --)"
                )));
            };
            if let Some((name, value)) = name.split_once('=') {
                args.values.insert(name.to_string(), value.to_string());
            } else if FLAG_NAMES.contains(&name) {
                args.flags.push(name.to_string());
            } else {
                let value = iter
                    .next()
                    .ok_or_else(|| arg_error(format!("--{name} needs a value")))?;
                args.values.insert(name.to_string(), value.clone());
            }
        }
        Ok(args)
    }

    /// Marks option `name` as understood by the model.
    fn mark_used(&self, name: &str) {
        self.used.borrow_mut().push(name.to_string());
    }

    /// Returns true if the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.mark_used(name);
        self.flags.iter().any(|flag| flag == name)
    }

    /// Returns the raw text of `--name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.mark_used(name);
        self.values.get(name).map(String::as_str)
    }

    /// Returns `--name` as a number, if given.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ArgError> {
        self.text(name)
            .map(|text| parse_number(text).map_err(|e| arg_error(format!("--{name}: {e}"))))
            .transpose()
    }

    /// Returns `--name` as a number, or `default`.
    pub fn number_or(&self, name: &str, default: u64) -> Result<u64, ArgError> {
        Ok(self.number(name)?.unwrap_or(default))
    }

    /// Returns `--name` as a comma-separated list of numbers, if given.
    pub fn numbers(&self, name: &str) -> Result<Option<Vec<u64>>, ArgError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        split_list(text)
            .map(|item| parse_number(item).map_err(|e| arg_error(format!("--{name}: {e}"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Fails if an option was given that no model asked about.
    pub fn finish(&self) -> Result<(), ArgError> {
        let used = self.used.borrow();
        let unknown = self
            .values
            .keys()
            .chain(self.flags.iter())
            .find(|name| !used.contains(name));
        match unknown {
            Some(name) => Err(arg_error(format!(
                "this model has no option --{name} (see --help)"
            ))),
            None => Ok(()),
        }
    }
}

/// Splits a comma-separated list, dropping empty items and spaces.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Parses `241`, `0xf1`, `0b11110001`, `16K`, `4M`, `1G` (K = 1024).
pub fn parse_number(text: &str) -> Result<u64, String> {
    let text = text.trim().replace('_', "");
    let (digits, scale) = match text.char_indices().last() {
        Some((at, 'K' | 'k')) => (&text[..at], 1u64 << 10),
        Some((at, 'M' | 'm')) => (&text[..at], 1 << 20),
        Some((at, 'G' | 'g')) => (&text[..at], 1 << 30),
        _ => (text.as_str(), 1),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        u64::from_str_radix(bin, 2)
    } else {
        digits.parse()
    };
    value
        .ok()
        .and_then(|v| v.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a number (write 241, 0xf1, 0b1111, 16K or 4M)"))
}

/// Formats a byte count the way the exercises do: `4 MiB`, `16 KiB`, `772 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "PiB"),
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (unit, name) in UNITS {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {name}", n / unit);
        }
    }
    if n >= 1 << 20 {
        return format!("{:.2} MiB", n as f64 / (1u64 << 20) as f64);
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn numbers_parse_in_every_course_notation() {
        assert_eq!(parse_number("241"), Ok(241));
        assert_eq!(parse_number("0xf1"), Ok(241));
        assert_eq!(parse_number("0b11110001"), Ok(241));
        assert_eq!(parse_number("16K"), Ok(16384));
        assert_eq!(parse_number("4M"), Ok(4 << 20));
        assert!(parse_number("12q").is_err());
        assert!(parse_number("99999999999G").is_err());
    }

    #[test]
    fn unknown_options_are_refused() {
        let args = Args::parse(&words("--seed 3 --colour red")).unwrap();
        assert_eq!(args.number("seed"), Ok(Some(3)));
        assert!(args.finish().unwrap_err().0.contains("--colour"));
        assert!(Args::parse(&words("--seed")).is_err());
        assert!(Args::parse(&words("seed")).is_err());
    }

    #[test]
    fn byte_counts_print_in_the_largest_exact_unit() {
        assert_eq!(bytes(4 << 20), "4 MiB");
        assert_eq!(bytes(16 << 10), "16 KiB");
        assert_eq!(bytes(772), "772 bytes");
    }
}
