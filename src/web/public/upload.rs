//! Receiving a multipart upload from a source — a first submission or an addition to it: a
//! submission slot, the checks that come before any byte is stored (keys, free space, declared
//! size), text fields held in zeroized memory, attachments sealed as they stream in, and a
//! refusal that lets the client finish sending so that it reads our page.

use std::time::Duration;

use axum::http::header;
use axum::http::request::Parts;
use zeroize::Zeroizing;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use crate::config::Limits;
use crate::i18n::Lang;
use crate::intake::{KeyState, Submission};
use crate::web::transport::body::{SharedBody, Violation};
use crate::web::transport::client::Client;
use crate::web::transport::ledger::Lease;

use super::disk::Staging;
use super::slots::Slot;

/// Multipart framing (boundaries, part headers) allowed on top of `limits.max_total_bytes`.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Longest accepted value of a short detail field (country, city, when), in characters.
pub const MAX_DETAIL_CHARS: usize = 200;
/// Longest recorded attachment file name, in bytes; longer names are cut.
const MAX_FILE_NAME_BYTES: usize = 255;
/// How long a submission may wait for a free slot before "busy" is answered.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// The most bytes read while looking for the next part's headers (and the first boundary).
const PART_HEADER_BUDGET: u64 = 1024 * 1024;

/// The form's text fields, held until the end of the upload (cleared from memory on drop).
#[derive(Default)]
pub struct FormText {
    pub csrf: Option<Zeroizing<String>>,
    pub form_key: Option<Zeroizing<String>>,
    pub message: Option<Zeroizing<String>>,
    pub incident_type: Option<Zeroizing<String>>,
    pub country: Option<Zeroizing<String>>,
    pub city: Option<Zeroizing<String>>,
    pub when: Option<Zeroizing<String>>,
    /// The name of the file being received when the upload was refused, for the page to say.
    pub refused_file: Option<String>,
}

/// An upload in progress: its submission slot (and its client's share of uploads), the room it
/// has on disk, the multipart reader and the submission that seals what arrives. Dropping it
/// frees the slot.
pub struct Upload {
    held: Held,
    staging: Staging,
    /// The body's declared length: no field of it can be longer.
    declared: Option<u64>,
    /// The request declared more than the limit (refused at its first file).
    declared_too_large: bool,
    multipart: multer::Multipart<'static>,
    pub submission: Submission,
}

/// What an upload holds until its submission is committed or abandoned. The time it held a
/// slot is charged to its client's recent use when it is given back, so a client that keeps
/// slots long waits behind others for the next one.
pub struct Held {
    _slot: Slot,
    _share: Lease,
    client: Client,
    ledger: std::sync::Arc<crate::web::transport::ledger::Ledger>,
    since: std::time::Instant,
}

/// Recent use charged per second a slot was held.
const SLOT_SECOND_COST: f64 = 0.1;

impl Drop for Held {
    fn drop(&mut self) {
        let seconds = self.since.elapsed().as_secs_f64();
        self.ledger.charge(self.client, seconds * SLOT_SECOND_COST);
    }
}

impl Upload {
    /// Takes a submission slot (waiting at most `QUEUE_WAIT`), checks that sealing is possible
    /// and that the declared size fits, and starts reading the multipart body with `fields`.
    pub async fn start(
        app: &PublicState,
        parts: &Parts,
        body: &SharedBody,
        fields: &[&str],
    ) -> Result<Upload, Refusal> {
        let limits = &app.limits;
        let whole_limit = limits.max_total_bytes.saturating_add(MULTIPART_OVERHEAD);
        let client = parts
            .extensions
            .get::<Client>()
            .copied()
            .unwrap_or(Client::Everyone);
        // One client holds at most its share of the uploads in progress, and waits for a slot
        // behind the clients that have used less than it.
        let share = app.ledger.upload(client).ok_or(Refusal::Busy)?;
        let slot = app
            .slots
            .acquire(client, body, QUEUE_WAIT)
            .await
            .ok_or(Refusal::Busy)?;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Declared larger than allowed: a client waiting for `100 Continue` (a script; browsers
        // never wait) is refused at once and never sends the body. A browser's is refused at
        // its first file, before any byte of it is sealed, once the text typed before it has
        // arrived, for the form to show it again.
        let declared_too_large = declared.is_some_and(|n| n > whole_limit);
        if declared_too_large && expects_continue(parts) {
            return Err(Refusal::TotalTooLarge(limits.max_total_bytes));
        }
        // Before any byte is read or written: a submission that cannot be stored in full is
        // refused at once, not half way through; the room it declares is set aside while it
        // arrives, and what arrives is counted as it does.
        let staging = app
            .disk
            .admit(declared.filter(|_| !declared_too_large).unwrap_or(0))
            .ok_or(Refusal::DiskFull)?;
        // The keyring as it is now, on whichever node changed it: the very next submission
        // after a key change is sealed to the new set.
        let keys = match app.intake.keys.for_submission(&app.intake.store).await {
            Ok(KeyState::Ready(keys)) => keys,
            Ok(KeyState::NoKeys | KeyState::Unusable(_)) => return Err(Refusal::Paused),
            Err(error) => {
                tracing::error!(%error, "could not read the keyring");
                return Err(Refusal::Internal);
            }
        };
        let boundary = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| multer::parse_boundary(ct).ok())
            .ok_or(Refusal::Malformed)?;
        let constraints = multer::Constraints::new()
            .allowed_fields(fields.to_vec())
            .size_limit(
                multer::SizeLimit::new()
                    .whole_stream(whole_limit)
                    .per_field(4 * MAX_DETAIL_CHARS as u64)
                    .for_field("message", limits.max_message_bytes)
                    .for_field("attachment", limits.max_attachment_bytes),
            );
        Ok(Upload {
            held: Held {
                _slot: slot,
                _share: share,
                client,
                ledger: std::sync::Arc::clone(&app.ledger),
                since: std::time::Instant::now(),
            },
            staging,
            declared,
            declared_too_large,
            multipart: multer::Multipart::with_constraints(body.clone(), boundary, constraints),
            submission: app.intake.begin(keys),
        })
    }

    /// Reads the whole form: text fields into memory (bounded), attachments sealed as they
    /// stream.
    pub async fn receive(
        &mut self,
        body: &SharedBody,
        form: &mut FormText,
        limits: &Limits,
    ) -> Result<(), Refusal> {
        let refusal = |e: &multer::Error| match body.violation() {
            Some(Violation::TooSlow) => Refusal::TooSlow,
            Some(Violation::HeadersTooLarge) => Refusal::Malformed,
            None => refusal_for(e, limits),
        };
        let submission = &mut self.submission;
        let staging = &mut self.staging;
        loop {
            body.limit_headers(Some(PART_HEADER_BUDGET));
            let next = tokio::time::timeout(body.stall_limit(), self.multipart.next_field())
                .await
                .map_err(|_| Refusal::TooSlow)?;
            body.limit_headers(None);
            let mut field = match next {
                Ok(Some(field)) => field,
                Ok(None) => {
                    body.finished();
                    return Ok(());
                }
                Err(e) => return Err(refusal(&e)),
            };
            let name = field.name().map(str::to_owned).ok_or(Refusal::Malformed)?;
            if name == "attachment" {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(|m| m.to_string());
                let received = receive_file(
                    body,
                    &mut field,
                    &refusal,
                    submission,
                    staging,
                    limits,
                    (truncate_name(file_name.clone()), content_type),
                    self.declared_too_large,
                )
                .await;
                if let Err(refused) = received {
                    if !file_name.is_empty() {
                        form.refused_file = Some(truncate_name(file_name));
                    }
                    return Err(refused);
                }
            } else {
                // Sized up front to the most the field can hold: growing would leave plaintext
                // copies. No field is longer than its limit, nor than the declared body (a
                // body longer than it declared is cut there), and the whole capacity is
                // cleared on drop, so a 2 KiB message does not cost a 256 KiB buffer.
                let limit = if name == "message" {
                    limits.max_message_bytes
                } else {
                    4 * MAX_DETAIL_CHARS as u64
                };
                let bounded_by_body = self.declared.is_some_and(|declared| declared < limit);
                let capacity = self.declared.map_or(limit, |declared| declared.min(limit));
                let mut bytes = Zeroizing::new(Vec::with_capacity(capacity.min(1 << 20) as usize));
                while let Some(data) = next_chunk(body, &mut field, &refusal).await? {
                    if bounded_by_body && bytes.len() + data.len() > bytes.capacity() {
                        // Longer than its body declared (HTTP/1.1 and HTTP/2 both stop a body
                        // at its length, so never in practice): refused, never grown.
                        return Err(Refusal::Malformed);
                    }
                    bytes.extend_from_slice(&data);
                }
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(Refusal::InvalidUtf8);
                }
                let text = Zeroizing::new(
                    String::from_utf8(std::mem::take(&mut *bytes))
                        .expect("checked to be UTF-8 above"),
                );
                let slot = match name.as_str() {
                    "csrf" => &mut form.csrf,
                    "form_key" => &mut form.form_key,
                    "message" => &mut form.message,
                    "incident_type" => &mut form.incident_type,
                    "country" => &mut form.country,
                    "city" => &mut form.city,
                    "when" => &mut form.when,
                    _ => return Err(Refusal::UnexpectedField),
                };
                if slot.replace(text).is_some() {
                    return Err(Refusal::Malformed);
                }
            }
        }
    }
}

impl Upload {
    /// Ends reading: the submission, to commit or abandon, and the slot, to hold until then.
    pub fn into_submission(self) -> (Submission, Held) {
        (self.submission, self.held)
    }
}

/// Answers a refused upload. The submission slot is free again; now let the client finish
/// sending (bounded) so that it reads our page rather than a reset connection. A client that
/// asked for `100 Continue` and was refused before sending anything just gets the page.
pub async fn refused(
    parts: &Parts,
    body: &SharedBody,
    refusal: Refusal,
    lang: Lang,
    limits: &Limits,
    back: Back,
) -> PageError {
    if !(expects_continue(parts) && body.received() == 0) {
        body.drain(limits.max_total_bytes.max(64 << 20)).await;
    }
    PageError::refused(lang, refusal, back)
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The body of an upload, watched for slow senders (more strictly while others wait for a
/// slot) and oversized part headers.
pub fn watched_body(body: axum::body::Body, app: &PublicState) -> SharedBody {
    let slots = std::sync::Arc::clone(&app.slots);
    SharedBody::new(
        body,
        app.limits.min_upload_bytes_per_second,
        Duration::from_secs(app.limits.upload_rate_window_seconds),
        std::sync::Arc::new(move || slots.contended()),
    )
}

fn refusal_for(error: &multer::Error, limits: &Limits) -> Refusal {
    match error {
        multer::Error::FieldSizeExceeded { field_name, .. } => match field_name.as_deref() {
            Some("message") => Refusal::MessageTooLarge(limits.max_message_bytes),
            Some("attachment") => Refusal::AttachmentTooLarge(limits.max_attachment_bytes),
            _ => Refusal::DetailTooLong,
        },
        multer::Error::StreamSizeExceeded { .. } => Refusal::TotalTooLarge(limits.max_total_bytes),
        multer::Error::UnknownField { .. } => Refusal::UnexpectedField,
        _ => Refusal::Malformed,
    }
}

/// Receives one file part: sealed as it streams, or refused (an upload declared larger than
/// allowed is refused at its first file, once the text before it has arrived for the form to
/// show again).
#[allow(clippy::too_many_arguments)]
async fn receive_file(
    body: &SharedBody,
    field: &mut multer::Field<'static>,
    refusal: &impl Fn(&multer::Error) -> Refusal,
    submission: &mut Submission,
    staging: &mut Staging,
    limits: &Limits,
    (file_name, content_type): (String, Option<String>),
    declared_too_large: bool,
) -> Result<(), Refusal> {
    let first = next_chunk(body, field, refusal).await?;
    // An empty file input still sends an empty, nameless part: it is not a file.
    if file_name.is_empty() && first.as_ref().is_none_or(|c| c.is_empty()) {
        return Ok(());
    }
    if declared_too_large {
        return Err(Refusal::TotalTooLarge(limits.max_total_bytes));
    }
    if submission.attachment_count() >= limits.max_attachments as usize {
        return Err(Refusal::TooManyAttachments(limits.max_attachments));
    }
    let mut upload = submission
        .begin_attachment(file_name, content_type)
        .await
        .map_err(sealing_failed)?;
    let mut chunk = first;
    while let Some(data) = chunk {
        staging.wrote(data.len() as u64).ok_or(Refusal::DiskFull)?;
        submission
            .write_attachment(&mut upload, &data)
            .await
            .map_err(sealing_failed)?;
        chunk = next_chunk(body, field, refusal).await?;
    }
    submission
        .finish_attachment(upload)
        .await
        .map_err(sealing_failed)
}

async fn next_chunk(
    body: &SharedBody,
    field: &mut multer::Field<'static>,
    refusal: &impl Fn(&multer::Error) -> Refusal,
) -> Result<Option<axum::body::Bytes>, Refusal> {
    match tokio::time::timeout(body.stall_limit(), field.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(refusal(&e)),
        Err(_) => Err(Refusal::TooSlow),
    }
}

fn sealing_failed(error: crate::intake::IntakeError) -> Refusal {
    tracing::error!(%error, "sealing an attachment failed");
    Refusal::Internal
}

fn truncate_name(mut name: String) -> String {
    if name.len() > MAX_FILE_NAME_BYTES {
        let mut end = MAX_FILE_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}
