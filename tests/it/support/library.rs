//! The `tipbox` library items the tests and benchmarks use, each named here once: when the
//! library moves or renames one, this file is the one place to change.

pub use tipbox::app::BINDINGS_MADE_FILE;
pub use tipbox::audit::AuditEntry;
pub use tipbox::auth::totp::totp;
pub use tipbox::clock::now;
pub use tipbox::commitment::CommitmentKey;
pub use tipbox::commitment::SealedCommitments;
pub use tipbox::i18n::Lang;
pub use tipbox::keyring::Recipient;
pub use tipbox::receipt::ReceiptCode;
pub use tipbox::rekey::Header;
pub use tipbox::rekey::rewrap_header;
pub use tipbox::secrets::ServerSecret;
pub use tipbox::store::Counts;
pub use tipbox::store::QueueFilter;
pub use tipbox::store::Store;
pub use tipbox::web::transport::client::tor_header;
