//! Scoped signing key templates: a user signed by a scoped key gets the
//! key's permissions, with `{{name()}}`, `{{subject()}}`,
//! `{{account-name()}}`, `{{account-subject()}}`, `{{tag(key)}}` and
//! `{{account-tag(key)}}` expanded for that user. A tag template expands to
//! one subject per matching tag, and to none when the user lacks the tag
//! (nats-server drops that entry and still admits the user).

use super::jwt::{PermissionClaim, UserPermissionClaims};

/// What a template is expanded with.
#[derive(Clone, Copy, Debug)]
pub struct TemplateContext<'a> {
    /// The user JWT's `name`.
    pub name: &'a str,
    /// The user's public key.
    pub subject: &'a str,
    /// The account JWT's `name`.
    pub account_name: &'a str,
    /// The account's public key.
    pub account_subject: &'a str,
    /// The user's `key:value` tags.
    pub tags: &'a [String],
    /// The account's `key:value` tags.
    pub account_tags: &'a [String],
}

/// Why a template could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{…}}` names no known function, or is not closed.
    #[error("unknown template {0:?}")]
    Unknown(String),
    /// The template stands for more than [`EXPANDED_SUBJECTS_MAX`] subjects.
    #[error("template {0:?} expands to too many subjects")]
    TooMany(String),
}

/// Expands every subject of `p` for `ctx`.
pub fn expand(
    p: &UserPermissionClaims,
    ctx: &TemplateContext<'_>,
) -> Result<UserPermissionClaims, TemplateError> {
    Ok(UserPermissionClaims {
        publish: expand_claim(&p.publish, ctx)?,
        subscribe: expand_claim(&p.subscribe, ctx)?,
        resp: p.resp.clone(),
    })
}

fn expand_claim(
    c: &PermissionClaim,
    ctx: &TemplateContext<'_>,
) -> Result<PermissionClaim, TemplateError> {
    let list = |l: &Option<Vec<String>>| -> Result<Option<Vec<String>>, TemplateError> {
        let Some(l) = l else { return Ok(None) };
        let mut out = Vec::new();
        for s in l {
            out.extend(expand_subject(s, ctx)?);
            if out.len() > EXPANDED_SUBJECTS_MAX {
                return Err(TemplateError::TooMany(s.clone()));
            }
        }
        Ok(Some(out))
    };
    let mut allow = list(&c.allow)?;
    let mut deny = list(&c.deny)?;
    if allow.as_ref().is_some_and(Vec::is_empty) && c.allow.as_ref().is_some_and(|l| !l.is_empty())
    {
        // Every allowed subject dropped out: allow nothing rather than everything.
        allow = None;
        deny.get_or_insert_with(Vec::new).push(">".to_owned());
    }
    Ok(PermissionClaim { allow, deny })
}

/// The most subjects one permission list may expand to. Tag templates
/// multiply: `{{tag(a)}}.{{tag(a)}}.{{tag(a)}}` with 100 tags is a million
/// subjects, built at every login; past this bound the user is refused.
pub const EXPANDED_SUBJECTS_MAX: usize = 65_536;

/// One subject with templates → every subject it stands for. Each
/// `{{…}}` of `s` is replaced by each of its values; the values themselves
/// are never read as templates (a user named `{{name()}}` stays that).
pub fn expand_subject(s: &str, ctx: &TemplateContext<'_>) -> Result<Vec<String>, TemplateError> {
    let mut out = vec![String::new()];
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e)
            .ok_or_else(|| TemplateError::Unknown(s.to_owned()))?;
        let values = values_of(rest[start + 2..end].trim(), ctx)?;
        let literal = &rest[..start];
        if out.len().saturating_mul(values.len()) > EXPANDED_SUBJECTS_MAX {
            return Err(TemplateError::TooMany(s.to_owned()));
        }
        out = out
            .iter()
            .flat_map(|head| values.iter().map(move |v| format!("{head}{literal}{v}")))
            .collect();
        rest = &rest[end + 2..];
    }
    for subject in &mut out {
        subject.push_str(rest);
    }
    Ok(out)
}

fn values_of(func: &str, ctx: &TemplateContext<'_>) -> Result<Vec<String>, TemplateError> {
    let one = |v: &str| Ok(vec![v.to_owned()]);
    match func {
        "name()" => one(ctx.name),
        "subject()" => one(ctx.subject),
        "account-name()" => one(ctx.account_name),
        "account-subject()" => one(ctx.account_subject),
        _ => {
            if let Some(key) = func.strip_prefix("tag(").and_then(|r| r.strip_suffix(')')) {
                tag_values(ctx.tags, key)
            } else if let Some(key) = func
                .strip_prefix("account-tag(")
                .and_then(|r| r.strip_suffix(')'))
            {
                tag_values(ctx.account_tags, key)
            } else {
                Err(TemplateError::Unknown(func.to_owned()))
            }
        }
    }
}

fn tag_values(tags: &[String], key: &str) -> Result<Vec<String>, TemplateError> {
    let key = key.trim();
    Ok(tags
        .iter()
        .filter_map(|t| t.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_function() {
        let tags = vec!["dept:eng".to_owned(), "dept:ops".to_owned()];
        let ctx = TemplateContext {
            name: "bob",
            subject: "UBOB",
            account_name: "acme",
            account_subject: "AACME",
            tags: &tags,
            account_tags: &[],
        };
        assert_eq!(
            expand_subject("{{account-name()}}.{{name()}}.>", &ctx).unwrap(),
            ["acme.bob.>"]
        );
        assert_eq!(
            expand_subject("{{ subject() }}.{{account-subject()}}", &ctx).unwrap(),
            ["UBOB.AACME"]
        );
        assert_eq!(
            expand_subject("d.{{tag(dept)}}", &ctx).unwrap(),
            ["d.eng", "d.ops"]
        );
        assert_eq!(expand_subject("plain.>", &ctx).unwrap(), ["plain.>"]);
        assert_eq!(expand_subject("x.{{tag(team)}}", &ctx), Ok(vec![]));
        let only_tag = PermissionClaim {
            allow: Some(vec!["x.{{tag(team)}}".into()]),
            deny: None,
        };
        let expanded = expand_claim(&only_tag, &ctx).unwrap();
        assert_eq!(expanded.allow, None);
        assert_eq!(
            expanded.deny,
            Some(vec![">".to_owned()]),
            "an emptied allow list allows nothing"
        );
        assert!(matches!(
            expand_subject("{{nope()}}", &ctx),
            Err(TemplateError::Unknown(_))
        ));
        assert!(matches!(
            expand_subject("{{name()", &ctx),
            Err(TemplateError::Unknown(_))
        ));
    }
}
