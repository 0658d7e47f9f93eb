//! What a file a source sent says about them beyond its content — where a photo was taken,
//! who wrote a document, with what device — and a copy without it, made on the analyst's
//! machine only (the server never sees an attachment's plaintext).
//!
//! JPEG: the EXIF block (camera, time, GPS position), XMP and Photoshop/IPTC blocks, comments.
//! PNG: `eXIf`, text chunks (`tEXt`, `zTXt`, `iTXt`, which hold XMP too) and `tIME`. The
//! containers are read and rewritten with `img-parts` (the image data is copied as it is: no
//! re-encoding), the EXIF fields are read with `kamadak-exif`. PDF and office documents are
//! only looked at, not stripped: their author and dates can live in compressed object
//! streams that a byte scan does not see, so the desk says so rather than promising a clean
//! copy.

use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::{Bytes, ImageEXIF};

/// What was found in a file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// A GPS position (EXIF GPS latitude or longitude, or an XMP `exif:GPS…` field).
    pub location: bool,
    /// Other identifying fields: camera make/model, serial numbers, author, software, dates.
    pub other: Vec<&'static str>,
    /// Whether `strip` can make a copy without them.
    pub strippable: bool,
}

impl Findings {
    pub fn any(&self) -> bool {
        self.location || !self.other.is_empty()
    }
}

const XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Looks at `bytes` (a whole file).
pub fn inspect(bytes: &[u8]) -> Findings {
    if let Ok(jpeg) = Jpeg::from_bytes(Bytes::copy_from_slice(bytes)) {
        let mut findings = Findings {
            strippable: true,
            ..Findings::default()
        };
        if let Some(exif) = jpeg.exif() {
            exif_findings(&exif, &mut findings);
        }
        for segment in jpeg.segments() {
            let contents = segment.contents();
            match segment.marker() {
                markers::APP1 if contents.starts_with(XMP_PREFIX) => {
                    xmp_findings(contents, &mut findings)
                }
                markers::APP13 => push(&mut findings, "Photoshop/IPTC block"),
                markers::COM => push(&mut findings, "comment"),
                _ => {}
            }
        }
        return findings;
    }
    if let Ok(png) = Png::from_bytes(Bytes::copy_from_slice(bytes)) {
        let mut findings = Findings {
            strippable: true,
            ..Findings::default()
        };
        if let Some(exif) = png.exif() {
            exif_findings(&exif, &mut findings);
        }
        for chunk in png.chunks() {
            match &chunk.kind() {
                b"tEXt" | b"zTXt" | b"iTXt" => {
                    let contents = chunk.contents();
                    if contents.starts_with(b"XML:com.adobe.xmp") {
                        xmp_findings(contents, &mut findings);
                    } else {
                        push(&mut findings, "text fields");
                    }
                }
                b"tIME" => push(&mut findings, "modification time"),
                _ => {}
            }
        }
        return findings;
    }
    let mut findings = Findings::default();
    if bytes.starts_with(b"%PDF-") {
        for (needle, what) in [
            (&b"/Author"[..], "author"),
            (b"/Creator", "creating program"),
            (b"/Producer", "producing program"),
            (b"/CreationDate", "dates"),
            (b"<x:xmpmeta", "XMP metadata"),
        ] {
            if contains(bytes, needle) {
                push(&mut findings, what);
            }
        }
        // What a byte scan cannot see (compressed object streams) may hold more.
        push(
            &mut findings,
            "PDF: check its document properties before sharing",
        );
    } else if bytes.starts_with(b"PK\x03\x04") && contains(bytes, b"docProps/core.xml") {
        push(
            &mut findings,
            "office document: author and dates in its properties (docProps)",
        );
    }
    findings
}

/// A copy of `bytes` without the metadata `inspect` lists, or `None` if this is not a JPEG or
/// PNG file. The image data is kept byte for byte.
pub fn strip(bytes: &[u8]) -> Option<Vec<u8>> {
    if let Ok(mut jpeg) = Jpeg::from_bytes(Bytes::copy_from_slice(bytes)) {
        jpeg.set_exif(None);
        jpeg.segments_mut().retain(|segment| {
            let marker = segment.marker();
            let xmp = marker == markers::APP1 && segment.contents().starts_with(XMP_PREFIX);
            !(xmp || marker == markers::APP13 || marker == markers::COM)
        });
        return Some(jpeg.encoder().bytes().to_vec());
    }
    if let Ok(mut png) = Png::from_bytes(Bytes::copy_from_slice(bytes)) {
        png.set_exif(None);
        png.chunks_mut()
            .retain(|chunk| !matches!(&chunk.kind(), b"tEXt" | b"zTXt" | b"iTXt" | b"tIME"));
        return Some(png.encoder().bytes().to_vec());
    }
    None
}

fn push(findings: &mut Findings, what: &'static str) {
    if !findings.other.contains(&what) {
        findings.other.push(what);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn exif_findings(raw: &[u8], findings: &mut Findings) {
    let Ok(exif) = exif::Reader::new().read_raw(raw.to_vec()) else {
        push(findings, "EXIF block (unreadable)");
        return;
    };
    for field in exif.fields() {
        use exif::Tag;
        match field.tag {
            Tag::GPSLatitude | Tag::GPSLongitude => findings.location = true,
            Tag::Make | Tag::Model => push(findings, "camera make and model"),
            Tag::BodySerialNumber | Tag::LensSerialNumber | Tag::ImageUniqueID => {
                push(findings, "serial numbers")
            }
            Tag::Artist | Tag::Copyright => push(findings, "author"),
            Tag::Software => push(findings, "software"),
            Tag::DateTime | Tag::DateTimeOriginal | Tag::DateTimeDigitized => {
                push(findings, "dates")
            }
            _ => {}
        }
    }
    if !findings.location && findings.other.is_empty() {
        push(findings, "EXIF block");
    }
}

fn xmp_findings(xmp: &[u8], findings: &mut Findings) {
    if contains(xmp, b"GPSLatitude") || contains(xmp, b"GPSLongitude") {
        findings.location = true;
    }
    if contains(xmp, b"dc:creator") {
        push(findings, "author");
    }
    push(findings, "XMP metadata");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8×8 JPEG and PNG without metadata (made for these tests with Pillow).
    const TINY_JPEG: &[u8] = include_bytes!("../../../tests/fixtures/red-8x8.jpg");
    const TINY_PNG: &[u8] = include_bytes!("../../../tests/fixtures/red-8x8.png");

    /// EXIF with a camera and a GPS position, written with kamadak-exif.
    fn exif_with_gps() -> Vec<u8> {
        use exif::{Field, In, Rational, Tag, Value};
        let make = Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"Phone".to_vec()]),
        };
        let latitude = Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational::from((52, 1)),
                Rational::from((4, 1)),
                Rational::from((30, 1)),
            ]),
        };
        let mut writer = exif::experimental::Writer::new();
        writer.push_field(&make);
        writer.push_field(&latitude);
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_photo_with_a_position_is_pointed_out_and_stripped() {
        let mut jpeg = Jpeg::from_bytes(Bytes::from_static(TINY_JPEG)).unwrap();
        jpeg.set_exif(Some(exif_with_gps().into()));
        let photo = jpeg.encoder().bytes().to_vec();
        let found = inspect(&photo);
        assert!(found.location, "{found:?}");
        assert!(found.other.contains(&"camera make and model"));
        assert!(found.strippable);
        let clean = strip(&photo).unwrap();
        assert!(!inspect(&clean).any(), "{:?}", inspect(&clean));
        // The picture itself is untouched.
        assert!(clean.ends_with(&TINY_JPEG[TINY_JPEG.len() - 12..]));
        assert!(!inspect(TINY_JPEG).any());
        // The same in a PNG.
        let mut png = Png::from_bytes(Bytes::from_static(TINY_PNG)).unwrap();
        png.set_exif(Some(exif_with_gps().into()));
        let photo = png.encoder().bytes().to_vec();
        assert!(inspect(&photo).location);
        let clean = strip(&photo).unwrap();
        assert!(!inspect(&clean).any());
        assert!(!inspect(TINY_PNG).any());
    }

    #[test]
    fn other_files_are_looked_at_not_stripped() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Author (Zhang San) /CreationDate (D:2026) >> endobj";
        let found = inspect(pdf);
        assert!(found.other.contains(&"author"));
        assert!(!found.strippable);
        assert!(strip(pdf).is_none());
        assert!(!inspect(b"just text").any());
    }
}
