//! Sealing: streaming age encryption of one item to the active key set.
//!
//! Each item is a standard age file (`age -d -i identity` opens it). Plaintext is pushed in
//! as it arrives and ciphertext is drained in bounded pieces, so memory does not grow with the
//! size of an attachment: age itself holds one 64 KiB plaintext chunk, and the caller drains
//! the ciphertext buffer whenever it passes its chunk size.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::keyring::ActiveKeySet;

/// Ciphertext written by age and not yet drained by the caller.
#[derive(Clone, Default)]
struct CiphertextBuffer(Arc<Mutex<Vec<u8>>>);

impl CiphertextBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while holding this lock cannot leave the buffer half-updated in a way that
        // matters: the item is abandoned either way.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Write for CiphertextBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One item being sealed.
pub struct ItemSealer {
    writer: age::stream::StreamWriter<CiphertextBuffer>,
    buffer: CiphertextBuffer,
    plaintext_len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("could not seal to the reviewer keys: {0}")]
    Encrypt(#[from] age::EncryptError),
    #[error("sealing failed: {0}")]
    Io(#[from] io::Error),
}

impl ItemSealer {
    /// Wraps a fresh file key to every key of the set. This does public-key work (and for
    /// plugin keys, runs the plugin): call it off the async threads.
    pub fn new(keys: &ActiveKeySet) -> Result<Self, SealError> {
        let buffer = CiphertextBuffer::default();
        let writer = keys.encryptor()?.wrap_output(buffer.clone())?;
        Ok(Self {
            writer,
            buffer,
            plaintext_len: 0,
        })
    }

    pub fn write(&mut self, plaintext: &[u8]) -> Result<(), SealError> {
        self.writer.write_all(plaintext)?;
        self.plaintext_len += plaintext.len() as u64;
        Ok(())
    }

    /// Bytes of ciphertext waiting to be drained.
    pub fn pending(&self) -> usize {
        self.buffer.lock().len()
    }

    /// Takes the ciphertext produced so far. The buffer left behind has the same capacity, so
    /// that the next chunk is not copied over and over as it grows.
    pub fn drain(&mut self) -> Vec<u8> {
        let mut buffer = self.buffer.lock();
        let capacity = buffer.capacity();
        std::mem::replace(&mut *buffer, Vec::with_capacity(capacity))
    }

    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Ends the age stream; returns the remaining ciphertext.
    pub fn finish(self) -> Result<Vec<u8>, SealError> {
        let buffer = self.buffer;
        self.writer.finish()?;
        Ok(std::mem::take(&mut *buffer.lock()))
    }
}

/// Seals a small, complete plaintext in one go.
pub fn seal_bytes(keys: &ActiveKeySet, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut sealer = ItemSealer::new(keys)?;
    sealer.write(plaintext)?;
    sealer.finish()
}

/// Seals a small plaintext to one source's reply recipient only (the source's copy of a reply).
pub fn seal_to_source(
    recipient: &age::x25519::Recipient,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plaintext)?;
    writer.finish()?;
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
#[error("could not open a reply sealed to this receipt: {0}")]
pub struct OpenError(String);

/// Opens the source's copy of a reply with the identity derived from the receipt. The
/// plaintext is returned in memory that is cleared when dropped.
pub fn open_for_source(
    identity: &age::x25519::Identity,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, OpenError> {
    use std::io::Read;
    let decryptor = age::Decryptor::new(sealed).map_err(|e| OpenError(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| OpenError(e.to_string()))?;
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(sealed.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| OpenError(e.to_string()))?;
    Ok(plaintext)
}

/// `value` as JSON (indented if `pretty`), in a buffer cleared when dropped, for sealing.
///
/// The buffer is allocated once at its final size, measured by serializing into a counter
/// first: a buffer that grew while the JSON was written into it would leave each outgrown copy,
/// plaintext and all, in freed memory, where nothing clears it.
pub fn json_to_seal<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Zeroizing<Vec<u8>> {
    fn write<T: Serialize + ?Sized>(out: impl Write, value: &T, pretty: bool) {
        let written = if pretty {
            serde_json::to_writer_pretty(out, value)
        } else {
            serde_json::to_writer(out, value)
        };
        written.expect("what tipbox seals serializes");
    }
    let mut length = ByteCounter(0);
    write(&mut length, value, pretty);
    let mut json = Zeroizing::new(Vec::with_capacity(length.0));
    write(&mut *json, value, pretty);
    debug_assert_eq!(json.capacity(), length.0, "never grown");
    json
}

/// Counts what is written to it, and keeps none of it.
struct ByteCounter(usize);

impl Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
