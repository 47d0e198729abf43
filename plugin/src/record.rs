//! Tolerant typed reading of one CloudTrail record.
//!
//! Real producers write fields absent, `null`, of another type (`"readOnly":"True"`), or with
//! lowercase keys. Nothing here fails on such a field: every field keeps what it found (`Scalar`,
//! `Shape`), so that normalization can use what is usable and say what was wrong. Keys match
//! exactly first (the common case) and ASCII-case-insensitively second.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A value read where a scalar was expected, whatever its JSON type turned out to be.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// The key was not there.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A string, borrowed from the record's text when it holds no escapes.
    Str(Cow<'a, str>),
    /// `true` or `false`.
    Bool(bool),
    /// A number, as text.
    Num(String),
    /// An object (dropped).
    Object,
    /// An array (dropped).
    Array,
}

impl Scalar<'_> {
    /// JSON type name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Absent => "nothing",
            Scalar::Null => "null",
            Scalar::Str(_) => "a string",
            Scalar::Bool(_) => "a boolean",
            Scalar::Num(_) => "a number",
            Scalar::Object => "an object",
            Scalar::Array => "an array",
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// What stood where an object was expected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The key was not there.
    #[default]
    Absent,
    /// An object (its fields were read).
    Object,
    /// `null`.
    Null,
    /// Another JSON type, named.
    Wrong(&'static str),
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Implements the non-object arms of a tolerant object visitor.
macro_rules! not_an_object {
    ($ty:ty) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Wrong("a string")))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Wrong("a boolean")))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Wrong("a number")))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Wrong("a number")))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Wrong("a number")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<$ty, E> {
            Ok(<$ty>::with_shape(Shape::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$ty, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(<$ty>::with_shape(Shape::Wrong("an array")))
        }
    };
}

/// Declares a tolerant record type: fields matched by JSON key, case-insensitively.
macro_rules! tolerant_object {
    ($(#[$meta:meta])* $name:ident<$lt:lifetime> { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $key:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, PartialEq)]
        pub struct $name<$lt> {
            /// What stood where the object was expected.
            pub shape: Shape,
            $($(#[$fmeta])* pub $field: $ty,)*
            _borrow: std::marker::PhantomData<&$lt ()>,
        }

        impl<$lt> $name<$lt> {
            pub(crate) fn with_shape(shape: Shape) -> Self {
                Self { shape, ..Default::default() }
            }
        }

        impl<'de: $lt, $lt> Deserialize<'de> for $name<$lt> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<$lt>(std::marker::PhantomData<&$lt ()>);
                impl<'de: $lt, $lt> Visitor<'de> for V<$lt> {
                    type Value = $name<$lt>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    not_an_object!($name<$lt>);
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name<$lt>, A::Error> {
                        let mut out = $name::with_shape(Shape::Object);
                        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                            match key.as_ref() {
                                $($key => out.$field = map.next_value()?,)*
                                other => {
                                    $(if other.eq_ignore_ascii_case($key) {
                                        out.$field = map.next_value()?;
                                        continue;
                                    })*
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_any(V(std::marker::PhantomData))
            }
        }
    };
}

/// A value's JSON text as written, unparsed (validated while it was skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(pub &'a str);

impl<'a> Raw<'a> {
    /// The text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|raw| Raw(raw.get()))
    }
}

/// A list that may turn out to be something else.
#[derive(Debug, Default, PartialEq)]
pub enum Many<T> {
    /// The key was not there, or `null`.
    #[default]
    Absent,
    /// A list.
    List(Vec<T>),
    /// Another JSON type, named.
    Wrong(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Many<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Many<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Many::List(items))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Many<T>, E> {
                Ok(Many::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Many<T>, E> {
                Ok(Many::Absent)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Many<T>, E> {
                Ok(Many::Wrong("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Many<T>, E> {
                Ok(Many::Wrong("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Many<T>, E> {
                Ok(Many::Wrong("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Many<T>, E> {
                Ok(Many::Wrong("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Many<T>, E> {
                Ok(Many::Wrong("a number"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Many<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Many::Wrong("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

tolerant_object! {
    /// `userIdentity.sessionContext.sessionIssuer`.
    SessionIssuer<'a> {
        /// `arn`.
        arn: Scalar<'a> = "arn",
        /// `userName` (the role name).
        user_name: Scalar<'a> = "userName",
    }
}

tolerant_object! {
    /// `userIdentity.sessionContext.attributes`.
    Attributes<'a> {
        /// `mfaAuthenticated`, usually the string "true" or "false".
        mfa_authenticated: Scalar<'a> = "mfaAuthenticated",
    }
}

tolerant_object! {
    /// `userIdentity.sessionContext`.
    SessionContext<'a> {
        /// `sessionIssuer`.
        session_issuer: SessionIssuer<'a> = "sessionIssuer",
        /// `attributes`.
        attributes: Attributes<'a> = "attributes",
    }
}

tolerant_object! {
    /// `userIdentity`.
    UserIdentity<'a> {
        /// `type`.
        identity_type: Scalar<'a> = "type",
        /// `principalId`.
        principal_id: Scalar<'a> = "principalId",
        /// `arn`.
        arn: Scalar<'a> = "arn",
        /// `accountId`.
        account_id: Scalar<'a> = "accountId",
        /// `accessKeyId`.
        access_key_id: Scalar<'a> = "accessKeyId",
        /// `userName`.
        user_name: Scalar<'a> = "userName",
        /// `invokedBy`.
        invoked_by: Scalar<'a> = "invokedBy",
        /// `sessionContext`.
        session_context: SessionContext<'a> = "sessionContext",
    }
}

tolerant_object! {
    /// One entry of `resources`.
    Resource<'a> {
        /// `ARN`.
        arn: Scalar<'a> = "ARN",
    }
}

tolerant_object! {
    /// `tlsDetails`.
    TlsDetails<'a> {
        /// `tlsVersion`.
        tls_version: Scalar<'a> = "tlsVersion",
        /// `cipherSuite`.
        cipher_suite: Scalar<'a> = "cipherSuite",
        /// `clientProvidedHostHeader`.
        host_header: Scalar<'a> = "clientProvidedHostHeader",
    }
}

tolerant_object! {
    /// `insightDetails` of an Insight event.
    InsightDetails<'a> {
        /// The service the insight is about.
        event_source: Scalar<'a> = "eventSource",
        /// The API the insight is about.
        event_name: Scalar<'a> = "eventName",
    }
}

tolerant_object! {
    /// `additionalEventData`, the part of it that matters for console sign-ins.
    AdditionalEventData<'a> {
        /// `MFAUsed`: "Yes" or "No".
        mfa_used: Scalar<'a> = "MFAUsed",
    }
}

tolerant_object! {
    /// One CloudTrail record as written, every field tolerant.
    Record<'a> {
        /// `eventVersion`.
        event_version: Scalar<'a> = "eventVersion",
        /// `userIdentity`.
        user_identity: UserIdentity<'a> = "userIdentity",
        /// `eventTime`.
        event_time: Scalar<'a> = "eventTime",
        /// `eventSource`.
        event_source: Scalar<'a> = "eventSource",
        /// `eventName`.
        event_name: Scalar<'a> = "eventName",
        /// `awsRegion`.
        aws_region: Scalar<'a> = "awsRegion",
        /// `sourceIPAddress`.
        source_ip_address: Scalar<'a> = "sourceIPAddress",
        /// `userAgent`.
        user_agent: Scalar<'a> = "userAgent",
        /// `errorCode`.
        error_code: Scalar<'a> = "errorCode",
        /// `errorMessage`.
        error_message: Scalar<'a> = "errorMessage",
        /// `requestParameters`, unparsed (an object, a string, or null).
        request_parameters: Option<Raw<'a>> = "requestParameters",
        /// `responseElements`, unparsed.
        response_elements: Option<Raw<'a>> = "responseElements",
        /// `additionalEventData`.
        additional_event_data: AdditionalEventData<'a> = "additionalEventData",
        /// `requestID`.
        request_id: Scalar<'a> = "requestID",
        /// `eventID`.
        event_id: Scalar<'a> = "eventID",
        /// `readOnly`.
        read_only: Scalar<'a> = "readOnly",
        /// `resources`.
        resources: Many<Resource<'a>> = "resources",
        /// `eventType`.
        event_type: Scalar<'a> = "eventType",
        /// `recipientAccountId`.
        recipient_account_id: Scalar<'a> = "recipientAccountId",
        /// `sharedEventID`.
        shared_event_id: Scalar<'a> = "sharedEventID",
        /// `eventCategory`.
        event_category: Scalar<'a> = "eventCategory",
        /// `tlsDetails`.
        tls_details: TlsDetails<'a> = "tlsDetails",
        /// `insightDetails`.
        insight_details: InsightDetails<'a> = "insightDetails",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_types_are_kept_not_fatal() {
        let r: Record = serde_json::from_str(
            r#"{"readOnly":"True","eventVersion":1.08,"userIdentity":null,"resources":"x","eventName":null}"#,
        )
        .unwrap();
        assert_eq!(r.read_only, Scalar::Str("True".into()));
        assert_eq!(r.event_version, Scalar::Num("1.08".into()));
        assert_eq!(r.user_identity.shape, Shape::Null);
        assert!(matches!(r.resources, Many::Wrong("a string")));
        assert_eq!(r.event_name, Scalar::Null);
        assert_eq!(r.event_source, Scalar::Absent);
    }

    #[test]
    fn lowercase_keys_match() {
        let r: Record = serde_json::from_str(
            r#"{"eventname":"ListUsers","useridentity":{"type":"Root","ARN":"arn:aws:iam::1:root"}}"#,
        )
        .unwrap();
        assert_eq!(r.event_name, Scalar::Str("ListUsers".into()));
        assert_eq!(r.user_identity.arn, Scalar::Str("arn:aws:iam::1:root".into()));
    }

    #[test]
    fn a_non_object_record_has_a_wrong_shape() {
        let r: Record = serde_json::from_str("42").unwrap();
        assert_eq!(r.shape, Shape::Wrong("a number"));
    }
}
