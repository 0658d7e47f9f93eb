//! What both listeners' pages need: rendering, the language of a request, cookies.

pub mod cookies;
pub mod lang;
pub mod pages;
