//! Form parameters of an OAuth request, parsed once with the rules of RFC 6749 §3.1 and §3.2:
//! a parameter without a value is treated as omitted, and one sent more than once is an error
//! (except those defined as repeatable, such as RFC 8707 `resource`).

use crate::error::OAuthError;

/// Largest request body the OAuth endpoints read, in bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Decoded `application/x-www-form-urlencoded` parameters.
#[derive(Debug, Clone, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    /// Parameters from a raw form body.
    pub fn parse(body: &[u8]) -> Self {
        FormParams(form_urlencoded::parse(body).into_owned().collect())
    }

    /// Parameters from already-decoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        FormParams(pairs)
    }

    /// The value of a parameter that may appear once. Empty values count as absent.
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.0.iter().filter(|(k, v)| k == name && !v.is_empty());
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "the `{name}` parameter must not be repeated"
            )));
        }
        Ok(first)
    }

    /// The value of a parameter that must be present once.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.single(name)?.ok_or_else(|| {
            OAuthError::invalid_request(format!("the `{name}` parameter is missing"))
        })
    }

    /// Every parameter, in the order sent.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let p = FormParams::parse(b"a=1+2&b=%41%zz&c=&d");
        assert_eq!(p.single("a").unwrap(), Some("1 2"));
        assert_eq!(p.single("b").unwrap(), Some("A%zz"));
        assert_eq!(p.single("c").unwrap(), None, "empty counts as omitted");
        assert_eq!(p.single("d").unwrap(), None);
        assert_eq!(FormParams::parse(b"x=%4").single("x").unwrap(), Some("%4"));
        assert_eq!(FormParams::parse(b"x=%").single("x").unwrap(), Some("%"));
    }

    #[test]
    fn repeated_parameters_are_refused_but_repeatable_ones_collected() {
        let p = FormParams::parse(b"scope=a&scope=b&resource=x&resource=y");
        let e = p.single("scope").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        assert_eq!(p.all("resource"), vec!["x", "y"]);
        assert!(p.required("grant_type").is_err());
    }
}
