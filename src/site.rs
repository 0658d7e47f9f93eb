//! The operator's own words on the public pages: who runs the tip line, what happens to
//! reports, how long a reply may take, how reviewers will (and will never) contact a source,
//! and where to turn in an emergency.
//!
//! The `[site]` section of the configuration gives each text once; per-language Fluent files
//! that the operator keeps next to the configuration (`<texts_dir>/<lang>.ftl`, for example
//! `site/zh-Hans.ftl`, with the ids `site-name`, `site-organisation`, …) say it in each language.
//! A page shows the text in its own language if there is one, else the `[site]` text, else
//! nothing (the name: `tipbox`). Everything is read and checked once at start: a file that does
//! not parse, or names an id that does not exist, refuses the start (a typo would otherwise
//! silently show the wrong text to sources).
//!
//! Each public request runs with the site in a task-local (`Site::scope`), so that every page
//! — including refusals rendered far from any state — shows it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use fluent_templates::fluent_bundle::{FluentBundle, FluentResource};
use serde::{Deserialize, Serialize};

use crate::i18n::Lang;

/// The name shown when the operator sets none.
pub const DEFAULT_NAME: &str = "tipbox";

/// `[site]`: the texts in the operator's main language (any language; per-language files
/// override them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// The tip line's name, in every page's header and title.
    pub name: Option<String>,
    /// Who runs it.
    pub organisation: Option<String>,
    /// What happens to a report.
    pub reports: Option<String>,
    /// How long a reply may take.
    pub reply_time: Option<String>,
    /// How reviewers contact a source (and that they never ask for the receipt elsewhere).
    pub contact: Option<String>,
    /// Where to turn in an emergency (detention, forced return).
    pub emergency: Option<String>,
    /// How to check this is the genuine address.
    pub verify_address: Option<String>,
    /// The directory of per-language files (`<tag>.ftl`); relative paths are relative to the
    /// directory tipbox is started in. A missing directory means no per-language texts.
    pub texts_dir: std::path::PathBuf,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: None,
            organisation: None,
            reports: None,
            reply_time: None,
            contact: None,
            emergency: None,
            verify_address: None,
            texts_dir: "site".into(),
        }
    }
}

/// One of the operator's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Text {
    Name,
    Organisation,
    Reports,
    ReplyTime,
    Contact,
    Emergency,
    VerifyAddress,
}

impl Text {
    pub const ALL: [Text; 7] = [
        Text::Name,
        Text::Organisation,
        Text::Reports,
        Text::ReplyTime,
        Text::Contact,
        Text::Emergency,
        Text::VerifyAddress,
    ];

    /// The id in the per-language files.
    pub fn id(self) -> &'static str {
        match self {
            Text::Name => "site-name",
            Text::Organisation => "site-organisation",
            Text::Reports => "site-reports",
            Text::ReplyTime => "site-reply-time",
            Text::Contact => "site-contact",
            Text::Emergency => "site-emergency",
            Text::VerifyAddress => "site-verify-address",
        }
    }

    fn configured(self, config: &SiteConfig) -> Option<&String> {
        match self {
            Text::Name => config.name.as_ref(),
            Text::Organisation => config.organisation.as_ref(),
            Text::Reports => config.reports.as_ref(),
            Text::ReplyTime => config.reply_time.as_ref(),
            Text::Contact => config.contact.as_ref(),
            Text::Emergency => config.emergency.as_ref(),
            Text::VerifyAddress => config.verify_address.as_ref(),
        }
    }
}

/// The operator's texts, resolved per language at start.
#[derive(Debug, Default)]
pub struct Site {
    texts: HashMap<(Lang, Text), String>,
    fallback: HashMap<Text, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("site text file {path}: {problem}")]
    File { path: String, problem: String },
    #[error("site.{key}: {problem}")]
    Value { key: &'static str, problem: String },
}

/// Longest text, in characters: these are sentences on a page, not documents.
const MAX_TEXT_CHARS: usize = 2000;

tokio::task_local! {
    static CURRENT: Arc<Site>;
}

impl Site {
    /// Reads `[site]` and the per-language files.
    pub fn load(config: &SiteConfig) -> Result<Site, SiteError> {
        let mut site = Site::default();
        for text in Text::ALL {
            if let Some(value) = text.configured(config) {
                let value = checked(value).map_err(|problem| SiteError::Value {
                    key: &text.id()["site-".len()..],
                    problem,
                })?;
                if !value.is_empty() {
                    site.fallback.insert(text, value);
                }
            }
        }
        let dir = &config.texts_dir;
        if dir.as_os_str().is_empty() || !dir.is_dir() {
            return Ok(site);
        }
        for lang in Lang::ALL {
            let path = dir.join(format!("{}.ftl", lang.tag()));
            if path.exists() {
                site.load_file(lang, &path)?;
            }
        }
        // A file for a language tipbox does not have is a mistake worth saying.
        let entries = std::fs::read_dir(dir).map_err(|e| SiteError::File {
            path: dir.display().to_string(),
            problem: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(tag) = name.strip_suffix(".ftl")
                && Lang::from_tag(tag).is_none_or(|l| l.tag() != tag)
            {
                return Err(SiteError::File {
                    path: entry.path().display().to_string(),
                    problem: format!(
                        "no such language: the files are named after {}",
                        Lang::ALL.map(|l| format!("{}.ftl", l.tag())).join(", ")
                    ),
                });
            }
        }
        Ok(site)
    }

    fn load_file(&mut self, lang: Lang, path: &Path) -> Result<(), SiteError> {
        let fail = |problem: String| SiteError::File {
            path: path.display().to_string(),
            problem,
        };
        let source = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let resource = FluentResource::try_new(source).map_err(|(_, errors)| {
            fail(
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let known: Vec<&str> = Text::ALL.iter().map(|t| t.id()).collect();
        for entry in resource.entries() {
            if let fluent_syntax::ast::Entry::Message(message) = entry
                && !known.contains(&message.id.name)
            {
                return Err(fail(format!(
                    "unknown id `{}` (the ids are {})",
                    message.id.name,
                    known.join(", ")
                )));
            }
        }
        let mut bundle = FluentBundle::new(vec![lang.tag().parse().expect("static tags parse")]);
        bundle.set_use_isolating(false);
        bundle
            .add_resource(&resource)
            .map_err(|errors| fail(format!("{errors:?}")))?;
        for text in Text::ALL {
            let Some(pattern) = bundle.get_message(text.id()).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let value = bundle.format_pattern(pattern, None, &mut errors);
            if !errors.is_empty() {
                return Err(fail(format!("{}: {errors:?}", text.id())));
            }
            let value =
                checked(&value).map_err(|problem| fail(format!("{}: {problem}", text.id())))?;
            if !value.is_empty() {
                self.texts.insert((lang, text), value);
            }
        }
        Ok(())
    }

    /// The text in `lang`, else the `[site]` text, else none.
    pub fn text(&self, text: Text, lang: Lang) -> Option<&str> {
        self.texts
            .get(&(lang, text))
            .or_else(|| self.fallback.get(&text))
            .map(String::as_str)
    }

    /// The tip line's name in `lang`.
    pub fn name(&self, lang: Lang) -> &str {
        self.text(Text::Name, lang).unwrap_or(DEFAULT_NAME)
    }

    /// Runs `future` with `site` as the current site (each public request).
    pub async fn scope<F: std::future::Future>(site: Arc<Site>, future: F) -> F::Output {
        CURRENT.scope(site, future).await
    }

    /// The site of the request being answered; outside a request (analyst pages, tests), the
    /// defaults.
    pub fn current() -> Arc<Site> {
        CURRENT
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(Site::default()))
    }
}

/// One text, trimmed: no markup is interpreted (pages escape it), but control characters and
/// overlong texts are refused.
fn checked(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("longer than {MAX_TEXT_CHARS} characters"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err("contains control characters".into());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> SiteConfig {
        SiteConfig {
            name: Some("Exile Voices".into()),
            organisation: Some("Run by Example Rights".into()),
            texts_dir: dir.to_owned(),
            ..SiteConfig::default()
        }
    }

    #[test]
    fn per_language_texts_override_the_section() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("zh-Hans.ftl"),
            "# 注释\nsite-name = 流亡之声\nsite-emergency = 紧急情况请联系……\n",
        )
        .unwrap();
        let site = Site::load(&config(dir.path())).unwrap();
        assert_eq!(site.name(Lang::ZhHans), "流亡之声");
        assert_eq!(site.name(Lang::En), "Exile Voices");
        assert_eq!(
            site.text(Text::Organisation, Lang::ZhHans),
            Some("Run by Example Rights")
        );
        assert_eq!(
            site.text(Text::Emergency, Lang::ZhHans),
            Some("紧急情况请联系……")
        );
        assert_eq!(site.text(Text::Emergency, Lang::En), None);
        assert_eq!(Site::default().name(Lang::En), DEFAULT_NAME);
    }

    #[test]
    fn mistakes_in_the_files_refuse_the_start() {
        for (file, text, expected) in [
            ("en.ftl", "site-nmae = x\n", "unknown id `site-nmae`"),
            ("en.ftl", "site-name = \n  = broken {\n", "en.ftl"),
            ("klingon.ftl", "site-name = x\n", "no such language"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(file), text).unwrap();
            let error = Site::load(&config(dir.path())).unwrap_err().to_string();
            assert!(error.contains(expected), "{file}: {error}");
        }
        let error = Site::load(&SiteConfig {
            name: Some("a\u{7}b".into()),
            ..SiteConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("site.name"), "{error}");
    }

    #[test]
    fn a_missing_directory_means_the_section_alone() {
        let site = Site::load(&config(Path::new("/nonexistent/site"))).unwrap();
        assert_eq!(site.name(Lang::ZhHant), "Exile Voices");
    }
}
