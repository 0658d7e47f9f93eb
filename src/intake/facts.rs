//! What a source tells besides the message: the incident's type, country, city and time, and
//! each attachment's original name and size — all sealed in the send's report (with the
//! message, `crate::report`) or facts item, never stored in clear.

use serde::Serialize;
use zeroize::Zeroizing;

pub(super) use crate::commitment::SealedCommitments;

/// The kinds of incident a source can pick; the form and the facts JSON use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    ThreatsToFamily,
    PressureToReturn,
    Surveillance,
    SummonsOrVisit,
    OnlineHarassment,
    DetentionOrForcedReturn,
    PoliceStationSighting,
    Other,
}

impl IncidentType {
    pub const ALL: [IncidentType; 8] = [
        IncidentType::ThreatsToFamily,
        IncidentType::PressureToReturn,
        IncidentType::Surveillance,
        IncidentType::SummonsOrVisit,
        IncidentType::OnlineHarassment,
        IncidentType::DetentionOrForcedReturn,
        IncidentType::PoliceStationSighting,
        IncidentType::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IncidentType::ThreatsToFamily => "threats_to_family",
            IncidentType::PressureToReturn => "pressure_to_return",
            IncidentType::Surveillance => "surveillance",
            IncidentType::SummonsOrVisit => "summons_or_visit",
            IncidentType::OnlineHarassment => "online_harassment",
            IncidentType::DetentionOrForcedReturn => "detention_or_forced_return",
            IncidentType::PoliceStationSighting => "police_station_sighting",
            IncidentType::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The structured, optional facts of a tip (plaintext: cleared from memory when dropped).
#[derive(Default, Serialize)]
pub struct Facts {
    pub incident_type: Option<IncidentType>,
    pub country: Option<Zeroizing<String>>,
    pub city: Option<Zeroizing<String>>,
    pub when: Option<Zeroizing<String>>,
}

/// What a report (or a facts item) holds once decrypted: the facts, plus each attachment's
/// original name, the submission's commitment key with the items it covers
/// (`crate::commitment`) and, in a report, the message. File names and content types are
/// recorded here — sealed — and nowhere else.
#[derive(Serialize)]
pub(super) struct SealedFacts<'a> {
    pub format: &'static str,
    pub form_language: &'static str,
    #[serde(flatten)]
    pub facts: &'a Facts,
    pub attachments: &'a [AttachmentFacts],
    pub item_commitments: &'a SealedCommitments,
    /// Last, so that the facts come first when the JSON is read as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct AttachmentFacts {
    pub item_id: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub size: u64,
}

pub use crate::seal::json_to_seal;

#[cfg(test)]
mod tests {
    use super::*;

    /// Facts far beyond the 64 KiB the buffer used to be pre-sized to are written into a
    /// buffer of exactly their length: it was never grown (and so never left a copy behind).
    #[test]
    fn facts_json_is_written_into_a_buffer_of_its_own_length() {
        let attachments: Vec<AttachmentFacts> = (0..400)
            .map(|n| AttachmentFacts {
                item_id: format!("{n:032x}"),
                file_name: format!("{}\u{1}", "名".repeat(80)),
                content_type: Some("application/octet-stream".into()),
                size: n,
            })
            .collect();
        let facts = Facts::default();
        let key = crate::commitment::CommitmentKey::generate();
        let covered = SealedCommitments::new(&key, vec!["0".repeat(32)]);
        let sealed = SealedFacts {
            format: "tipbox-facts/1",
            form_language: "en",
            facts: &facts,
            attachments: &attachments,
            item_commitments: &covered,
            message: None,
        };
        for pretty in [true, false] {
            let json = json_to_seal(&sealed, pretty);
            assert!(json.len() > 128 * 1024, "{}", json.len());
            assert_eq!(json.capacity(), json.len());
            let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed["attachments"].as_array().unwrap().len(), 400);
        }
    }

    #[test]
    fn incident_names_round_trip() {
        for t in IncidentType::ALL {
            assert_eq!(IncidentType::from_name(t.name()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
        assert_eq!(IncidentType::from_name("alien_abduction"), None);
    }
}
