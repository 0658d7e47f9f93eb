//! Languages of the public pages: Fluent bundles (`locales/*/main.ftl`) and negotiation.
//!
//! A page's language is chosen by an explicit `?lang=` switch first (Tor Browser sends the
//! same `Accept-Language` for everyone, so the switch is what most sources will use), then
//! by `Accept-Language`, then English.
//!
//! Numbers are written as each language writes them in running text (`Lang::number`): Persian
//! with Persian digits, the others with Western digits (see `locales/README.md` for why).

use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    pub static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Unicode isolation marks around placeables would show up as stray characters in
        // some fonts and break copy-paste of numbers. The values we pass are numbers, sizes,
        // dates and receipt words, which the bidi algorithm places right inside right-to-left
        // sentences too (checked in screenshots of the Persian and Uyghur pages).
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    ZhHans,
    ZhHant,
    /// Uyghur, in its Arabic script (right to left).
    Ug,
    /// Tibetan.
    Bo,
    Ru,
    /// Persian (right to left).
    Fa,
}

impl Lang {
    /// Every language, in the order of the language switch.
    pub const ALL: [Lang; 7] = [
        Lang::En,
        Lang::ZhHans,
        Lang::ZhHant,
        Lang::Ug,
        Lang::Bo,
        Lang::Ru,
        Lang::Fa,
    ];

    /// The BCP 47 tag, as used in `?lang=` and in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
            Lang::ZhHant => "zh-Hant",
            Lang::Ug => "ug",
            Lang::Bo => "bo",
            Lang::Ru => "ru",
            Lang::Fa => "fa",
        }
    }

    /// The direction the language is written in, for `<html dir>`.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Ug | Lang::Fa => "rtl",
            Lang::En | Lang::ZhHans | Lang::ZhHant | Lang::Bo | Lang::Ru => "ltr",
        }
    }

    /// The language whose BIP39 word list spells this language's receipts. BIP39 has lists
    /// for English and both Chinese scripts only, and we never invent one: the other languages
    /// get the English list, whose Latin letters every phone and computer keyboard can type.
    pub fn receipt_words(self) -> Lang {
        match self {
            Lang::En | Lang::Ug | Lang::Bo | Lang::Ru | Lang::Fa => Lang::En,
            Lang::ZhHans => Lang::ZhHans,
            Lang::ZhHant => Lang::ZhHant,
        }
    }

    /// The language's own name, for the switch (never translated).
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhHans => "简体中文",
            Lang::ZhHant => "繁體中文",
            Lang::Ug => "ئۇيغۇرچە",
            Lang::Bo => "བོད་ཡིག",
            Lang::Ru => "Русский",
            Lang::Fa => "فارسی",
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

    /// Maps one `Accept-Language` tag to a supported language by its primary subtag. For
    /// Chinese, script subtags win, then the regions that write Traditional Chinese, then
    /// Simplified Chinese for any other `zh`.
    fn from_accept_tag(tag: &str) -> Option<Lang> {
        let lower = tag.to_ascii_lowercase();
        let mut parts = lower.split(['-', '_']);
        match parts.next()? {
            "en" => Some(Lang::En),
            "ug" => Some(Lang::Ug),
            "bo" => Some(Lang::Bo),
            "ru" => Some(Lang::Ru),
            // Dari (Afghanistan) is written in the same script and reads Persian pages.
            "fa" | "prs" => Some(Lang::Fa),
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
    /// know the units (MB, not MiB), in the page's language ("bytes", 字节, 位元組), with the
    /// language's digits and decimal mark ("1,5 МБ", "۱٫۵ مگابایت").
    pub fn size(self, bytes: u64) -> String {
        const UNITS: [&str; 4] = ["unit-bytes", "unit-kb", "unit-mb", "unit-gb"];
        let mut value = bytes as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        let name = self.t(UNITS[unit]);
        let number = if unit == 0 || value.fract() == 0.0 {
            (value as u64).to_string()
        } else {
            format!("{value:.1}").replace('.', self.decimal_mark())
        };
        format!("{} {name}", self.digits(&number))
    }

    /// A whole number (a count, minutes, a word's place) as this language writes it.
    pub fn number(self, n: impl Into<u64>) -> String {
        self.digits(&n.into().to_string())
    }

    /// `text` with its ASCII digits in this language's digits: Persian digits (۰۱۲…۹) for
    /// Persian, unchanged for the others. For numbers and dates the server writes, never for
    /// what a person typed.
    pub fn digits(self, text: &str) -> String {
        match self {
            Lang::Fa => text
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
                    _ => c,
                })
                .collect(),
            Lang::En | Lang::ZhHans | Lang::ZhHant | Lang::Ug | Lang::Bo | Lang::Ru => {
                text.to_owned()
            }
        }
    }

    /// A day as the server writes it (`YYYY-MM-DD`) as this language writes dates: in its
    /// digits, and with slashes in right-to-left languages (`۲۰۲۶/۰۳/۲۱`, the customary Persian
    /// form). After Arabic letters the bidi algorithm would show hyphen-joined parts in reverse
    /// order (`07-12-2026`); slashes keep the date one left-to-right unit.
    pub fn day(self, iso_day: &str) -> String {
        if self.dir() == "rtl" {
            self.digits(&iso_day.replace('-', "/"))
        } else {
            self.digits(iso_day)
        }
    }

    /// What separates a number's whole part from its fraction.
    fn decimal_mark(self) -> &'static str {
        match self {
            Lang::Ru => ",",
            // U+066B ARABIC DECIMAL SEPARATOR, the Persian momayyez.
            Lang::Fa => "\u{66B}",
            Lang::En | Lang::ZhHans | Lang::ZhHant | Lang::Ug | Lang::Bo => ".",
        }
    }

    /// What separates the items of a short list ("a, b, c") in a sentence.
    pub fn list_separator(self) -> &'static str {
        match self {
            Lang::ZhHans | Lang::ZhHant => "、",
            // U+060C ARABIC COMMA.
            Lang::Ug | Lang::Fa => "\u{60C} ",
            Lang::En | Lang::Bo | Lang::Ru => ", ",
        }
    }

    /// What separates two sentences: nothing after Chinese full stops, a space elsewhere.
    pub fn sentence_gap(self) -> &'static str {
        match self {
            Lang::ZhHans | Lang::ZhHant => "",
            Lang::En | Lang::Ug | Lang::Bo | Lang::Ru | Lang::Fa => " ",
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

    #[test]
    fn accept_language_picks_the_exile_languages() {
        assert_eq!(Lang::negotiate("ug-CN,ug;q=0.9,zh-CN;q=0.8"), Lang::Ug);
        assert_eq!(Lang::negotiate("ug-Arab"), Lang::Ug);
        assert_eq!(Lang::negotiate("bo-CN,bo;q=0.9,zh;q=0.5"), Lang::Bo);
        assert_eq!(Lang::negotiate("bo-IN"), Lang::Bo);
        assert_eq!(Lang::negotiate("ru-RU,ru;q=0.9,en-US;q=0.8"), Lang::Ru);
        assert_eq!(Lang::negotiate("RU"), Lang::Ru);
        assert_eq!(Lang::negotiate("fa-IR,fa;q=0.9,en;q=0.8"), Lang::Fa);
        assert_eq!(Lang::negotiate("fa_IR"), Lang::Fa);
        assert_eq!(Lang::negotiate("prs-AF"), Lang::Fa);
        // Quality values still rank them against the others.
        assert_eq!(Lang::negotiate("zh-CN;q=0.5,ug;q=0.9"), Lang::Ug);
        assert_eq!(Lang::negotiate("ru;q=0.3,en;q=0.7"), Lang::En);
        assert_eq!(Lang::negotiate("de-DE,fa;q=0.4"), Lang::Fa);
        // Only whole primary subtags: "rue" (Rusyn) and "bos" (Bosnian) are not ru or bo.
        assert_eq!(Lang::negotiate("rue,bos"), Lang::En);
    }

    #[test]
    fn tags_name_and_direction() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
            assert_eq!(Lang::negotiate(lang.tag()), lang);
        }
        assert_eq!(Lang::from_tag("FA"), Some(Lang::Fa));
        let rtl: Vec<&str> = Lang::ALL
            .into_iter()
            .filter(|l| l.dir() == "rtl")
            .map(Lang::tag)
            .collect();
        assert_eq!(rtl, ["ug", "fa"]);
        assert_eq!(Lang::Bo.dir(), "ltr");
        assert_eq!(Lang::Ug.native_name(), "ئۇيغۇرچە");
        assert_eq!(Lang::Bo.native_name(), "བོད་ཡིག");
        assert_eq!(Lang::Ru.native_name(), "Русский");
        assert_eq!(Lang::Fa.native_name(), "فارسی");
    }

    #[test]
    fn receipts_use_a_standard_word_list() {
        assert_eq!(Lang::ZhHans.receipt_words(), Lang::ZhHans);
        assert_eq!(Lang::ZhHant.receipt_words(), Lang::ZhHant);
        for lang in [Lang::En, Lang::Ug, Lang::Bo, Lang::Ru, Lang::Fa] {
            assert_eq!(lang.receipt_words(), Lang::En, "{}", lang.tag());
        }
    }

    #[test]
    fn persian_numbers_use_persian_digits() {
        assert_eq!(Lang::Fa.number(1234567890u64), "۱۲۳۴۵۶۷۸۹۰");
        assert_eq!(Lang::Fa.number(12u8), "۱۲");
        assert_eq!(Lang::Fa.digits("2026-03-21"), "۲۰۲۶-۰۳-۲۱");
        assert_eq!(Lang::Fa.day("2026-03-21"), "۲۰۲۶/۰۳/۲۱");
        assert_eq!(Lang::Ug.day("2026-03-21"), "2026/03/21");
        assert_eq!(Lang::Ru.day("2026-03-21"), "2026-03-21");
        assert_eq!(Lang::Bo.day("2026-03-21"), "2026-03-21");
        assert_eq!(Lang::Fa.size(256 * 1024 * 1024), "۲۵۶ مگابایت");
        assert_eq!(Lang::Fa.size(1536), "۱٫۵ کیلوبایت");
        assert_eq!(Lang::Fa.size(100), "۱۰۰ بایت");
        // Nothing but ASCII digits changes; digits of other scripts are left alone.
        assert_eq!(Lang::Fa.digits("a1 ٣ ༣"), "a۱ ٣ ༣");
        for lang in [
            Lang::En,
            Lang::ZhHans,
            Lang::ZhHant,
            Lang::Ug,
            Lang::Bo,
            Lang::Ru,
        ] {
            assert_eq!(lang.number(1234567890u64), "1234567890", "{}", lang.tag());
            assert_eq!(lang.digits("2026-03-21"), "2026-03-21", "{}", lang.tag());
        }
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
        assert_eq!(Lang::Ru.size(1536), "1,5 КБ");
        assert_eq!(Lang::Ru.size(256 * 1024 * 1024), "256 МБ");
        assert_eq!(Lang::Ug.size(256 * 1024 * 1024), "256 مېگابايت");
        assert_eq!(Lang::Bo.size(2 * 1024 * 1024 * 1024), "2 GB");
    }

    /// The numbers in the pages' sentences come out in the language's digits.
    #[test]
    fn numbers_inside_messages_are_localized() {
        let text = Lang::Fa.t_args(
            "submit-attachments-help",
            &[
                ("count", Lang::Fa.number(10u8)),
                ("size", Lang::Fa.size(256 * 1024 * 1024)),
                ("total", Lang::Fa.size(1024 * 1024 * 1024)),
            ],
        );
        assert!(text.contains("۱۰") && text.contains("۲۵۶"), "{text}");
        assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
    }
}
