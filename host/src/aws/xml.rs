//! Reading AWS's XML answers with quick-xml's serde deserializer, made safe against its panics.
//!
//! Fuzzing found an answer body that makes quick-xml 0.38.4's deserializer reach an
//! `unreachable!()` (fuzz/regressions/aws_error/): a hostile or broken endpoint could stop the
//! process with one answer. Every XML answer is read here, and such a panic is an error about
//! that answer like any other malformed body. quick-xml 0.42 no longer panics on those bodies
//! (the regressions replay without the guard); the guard stays for the next such fault.

use serde::de::DeserializeOwned;

/// `text` read as `T`; `Err` with why it is not one (the deserializer's own panic included).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    match std::panic::catch_unwind(|| quick_xml::de::from_str::<T>(text)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the XML deserializer failed on this body (an internal error of quick-xml)".into()),
    }
}
