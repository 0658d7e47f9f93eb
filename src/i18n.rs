//! Languages of the public pages: Fluent bundles (`locales/*/main.ftl`) and negotiation.
//!
//! A page's language is chosen by an explicit `?lang=` switch first (Tor Browser sends the
//! same `Accept-Language` for everyone, so the switch is what most sources will use), then
//! by `Accept-Language`, then English.

use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    pub static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Unicode isolation marks around placeables would show up as stray characters in
        // some fonts and break copy-paste of numbers; our values are never right-to-left.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    ZhHans,
    ZhHant,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::ZhHans, Lang::ZhHant];

    /// The BCP 47 tag, as used in `?lang=` and in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
            Lang::ZhHant => "zh-Hant",
        }
    }

    /// The language's own name, for the switch (never translated).
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhHans => "简体中文",
            Lang::ZhHant => "繁體中文",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag))
    }

    fn identifier(self) -> LanguageIdentifier {
        self.tag().parse().expect("static language tags parse")
    }

    /// Picks the best supported language for an `Accept-Language` header value.
    pub fn negotiate(accept_language: &str) -> Lang {
        let mut ranked: Vec<(f32, usize, &str)> = accept_language
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.trim().split(';');
                let tag = pieces.next()?.trim();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
            .into_iter()
            .find_map(|(_, _, tag)| Lang::from_accept_tag(tag))
            .unwrap_or(Lang::En)
    }

    /// Maps one `Accept-Language` tag to a supported language: script subtags win, then the
    /// regions that write Traditional Chinese, then Simplified Chinese for any other `zh`.
    fn from_accept_tag(tag: &str) -> Option<Lang> {
        let lower = tag.to_ascii_lowercase();
        let mut parts = lower.split(['-', '_']);
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                if rest.contains(&"hant") {
                    Some(Lang::ZhHant)
                } else if rest.contains(&"hans") {
                    Some(Lang::ZhHans)
                } else if rest.iter().any(|r| matches!(*r, "tw" | "hk" | "mo")) {
                    Some(Lang::ZhHant)
                } else {
                    Some(Lang::ZhHans)
                }
            }
            _ => None,
        }
    }

    /// The localized string for `key`.
    pub fn t(self, key: &str) -> String {
        LOCALES.lookup(&self.identifier(), key)
    }

    /// The localized string for `key` with Fluent arguments.
    pub fn t_args(self, key: &str, args: &[(&'static str, String)]) -> String {
        let args: HashMap<std::borrow::Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), FluentValue::from(v.clone())))
            .collect();
        LOCALES.lookup_with_args(&self.identifier(), key, &args)
    }

    /// Whether `key` is translated in this very language (no fallback).
    pub fn has(self, key: &str) -> bool {
        // Placeholder arguments, so that messages with variables resolve too.
        let args: HashMap<&str, FluentValue<'_>> = [
            "count", "size", "total", "minutes", "date", "position", "words", "name",
        ]
        .into_iter()
        .map(|k| (k, FluentValue::from("1")))
        .collect();
        LOCALES
            .lookup_single_language(&self.identifier(), key, Some(&args))
            .is_ok()
    }

    /// A byte count in words people read ("256 MB"). Counted in 1024s, named as most people
    /// know the units (MB, not MiB), in the page's language ("bytes", 字节, 位元組).
    pub fn size(self, bytes: u64) -> String {
        const UNITS: [&str; 4] = ["unit-bytes", "unit-kb", "unit-mb", "unit-gb"];
        let mut value = bytes as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        let name = self.t(UNITS[unit]);
        if unit == 0 || value.fract() == 0.0 {
            format!("{} {name}", value as u64)
        } else {
            format!("{value:.1} {name}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_right_chinese() {
        assert_eq!(Lang::negotiate("zh-TW,zh;q=0.9,en;q=0.8"), Lang::ZhHant);
        assert_eq!(Lang::negotiate("zh-HK"), Lang::ZhHant);
        assert_eq!(Lang::negotiate("zh-Hant-US"), Lang::ZhHant);
        assert_eq!(Lang::negotiate("zh-CN,en;q=0.5"), Lang::ZhHans);
        assert_eq!(Lang::negotiate("zh"), Lang::ZhHans);
        assert_eq!(Lang::negotiate("zh-Hans-HK"), Lang::ZhHans);
        assert_eq!(Lang::negotiate("en-US,en;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("fr-FR,zh-TW;q=0.3"), Lang::ZhHant);
        assert_eq!(Lang::negotiate("en;q=0.2,zh-CN;q=0.9"), Lang::ZhHans);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    /// Every string exists in every language, with the same Fluent variables.
    #[test]
    fn every_language_has_every_string() {
        let english = std::fs::read_to_string("locales/en/main.ftl").unwrap();
        let keys: Vec<&str> = english
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
            .filter(|k| !k.starts_with('#'))
            .collect();
        assert!(keys.len() > 40);
        for lang in Lang::ALL {
            for key in &keys {
                assert!(lang.has(key), "{} lacks {key}", lang.tag());
            }
            let own = std::fs::read_to_string(format!("locales/{}/main.ftl", lang.tag())).unwrap();
            let own_keys = own
                .lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
                .filter(|k| !k.starts_with('#'))
                .count();
            assert_eq!(own_keys, keys.len(), "{} has extra keys", lang.tag());
        }
        let args = [
            ("count", "3".to_string()),
            ("size", "1 MiB".to_string()),
            ("total", "2 MiB".to_string()),
        ];
        for lang in Lang::ALL {
            let text = lang.t_args("submit-attachments-help", &args);
            for (_, v) in &args {
                assert!(text.contains(v.as_str()), "{}: {text}", lang.tag());
            }
        }
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(Lang::En.size(512), "512 bytes");
        assert_eq!(Lang::En.size(256 * 1024 * 1024), "256 MB");
        assert_eq!(Lang::En.size(1536), "1.5 KB");
        assert_eq!(Lang::ZhHans.size(100), "100 字节");
        assert_eq!(Lang::ZhHant.size(100), "100 位元組");
    }
}
