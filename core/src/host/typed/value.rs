//! Component-model values as they cross a process boundary: [`WireVal`]
//! mirrors wasmtime's [`Val`] one to one (it is self-describing: records
//! carry field names, variants and enums their case names), minus the
//! handles (resources, futures, streams) that cannot leave their store.
//! The receiving side's `Func::call` type-checks every value against the
//! function it calls, so a value that does not fit never reaches a guest.

use serde::{Deserialize, Serialize};
use wasmtime::component::Val;

/// A component-model value, serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireVal {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    Float32(f32),
    Float64(f64),
    Char(char),
    String(String),
    List(Vec<WireVal>),
    Map(Vec<(WireVal, WireVal)>),
    Record(Vec<(String, WireVal)>),
    Tuple(Vec<WireVal>),
    Variant(String, Option<Box<WireVal>>),
    Enum(String),
    Option(Option<Box<WireVal>>),
    Result(Result<Option<Box<WireVal>>, Option<Box<WireVal>>>),
    Flags(Vec<String>),
    FixedLengthList(Vec<WireVal>),
}

/// A value that cannot cross: a handle owned by one store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {0} cannot be passed between modules (only plain values can)")]
pub struct NotPlain(pub &'static str);

fn boxed(v: &Option<Box<Val>>) -> Result<Option<Box<WireVal>>, NotPlain> {
    v.as_deref().map(|v| WireVal::try_from(v).map(Box::new)).transpose()
}

fn unboxed(v: Option<Box<WireVal>>) -> Option<Box<Val>> {
    v.map(|v| Box::new(Val::from(*v)))
}

fn all(vs: &[Val]) -> Result<Vec<WireVal>, NotPlain> {
    vs.iter().map(WireVal::try_from).collect()
}

impl TryFrom<&Val> for WireVal {
    type Error = NotPlain;

    fn try_from(v: &Val) -> Result<Self, NotPlain> {
        Ok(match v {
            Val::Bool(b) => Self::Bool(*b),
            Val::S8(n) => Self::S8(*n),
            Val::U8(n) => Self::U8(*n),
            Val::S16(n) => Self::S16(*n),
            Val::U16(n) => Self::U16(*n),
            Val::S32(n) => Self::S32(*n),
            Val::U32(n) => Self::U32(*n),
            Val::S64(n) => Self::S64(*n),
            Val::U64(n) => Self::U64(*n),
            Val::Float32(n) => Self::Float32(*n),
            Val::Float64(n) => Self::Float64(*n),
            Val::Char(c) => Self::Char(*c),
            Val::String(s) => Self::String(s.clone()),
            Val::List(vs) => Self::List(all(vs)?),
            Val::Map(pairs) => Self::Map(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((Self::try_from(k)?, Self::try_from(v)?)))
                    .collect::<Result<_, NotPlain>>()?,
            ),
            Val::Record(fields) => Self::Record(
                fields
                    .iter()
                    .map(|(name, v)| Ok((name.clone(), Self::try_from(v)?)))
                    .collect::<Result<_, NotPlain>>()?,
            ),
            Val::Tuple(vs) => Self::Tuple(all(vs)?),
            Val::Variant(case, payload) => Self::Variant(case.clone(), boxed(payload)?),
            Val::Enum(case) => Self::Enum(case.clone()),
            Val::Option(v) => Self::Option(boxed(v)?),
            Val::Result(Ok(v)) => Self::Result(Ok(boxed(v)?)),
            Val::Result(Err(v)) => Self::Result(Err(boxed(v)?)),
            Val::Flags(names) => Self::Flags(names.clone()),
            Val::FixedLengthList(vs) => Self::FixedLengthList(all(vs)?),
            Val::Resource(_) => return Err(NotPlain("resource")),
            Val::Future(_) => return Err(NotPlain("future")),
            Val::Stream(_) => return Err(NotPlain("stream")),
            Val::ErrorContext(_) => return Err(NotPlain("error-context")),
        })
    }
}

impl From<WireVal> for Val {
    fn from(v: WireVal) -> Self {
        let all = |vs: Vec<WireVal>| vs.into_iter().map(Val::from).collect();
        match v {
            WireVal::Bool(b) => Self::Bool(b),
            WireVal::S8(n) => Self::S8(n),
            WireVal::U8(n) => Self::U8(n),
            WireVal::S16(n) => Self::S16(n),
            WireVal::U16(n) => Self::U16(n),
            WireVal::S32(n) => Self::S32(n),
            WireVal::U32(n) => Self::U32(n),
            WireVal::S64(n) => Self::S64(n),
            WireVal::U64(n) => Self::U64(n),
            WireVal::Float32(n) => Self::Float32(n),
            WireVal::Float64(n) => Self::Float64(n),
            WireVal::Char(c) => Self::Char(c),
            WireVal::String(s) => Self::String(s),
            WireVal::List(vs) => Self::List(all(vs)),
            WireVal::Map(pairs) => Self::Map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()),
            WireVal::Record(fields) => Self::Record(fields.into_iter().map(|(n, v)| (n, v.into())).collect()),
            WireVal::Tuple(vs) => Self::Tuple(all(vs)),
            WireVal::Variant(case, payload) => Self::Variant(case, unboxed(payload)),
            WireVal::Enum(case) => Self::Enum(case),
            WireVal::Option(v) => Self::Option(unboxed(v)),
            WireVal::Result(Ok(v)) => Self::Result(Ok(unboxed(v))),
            WireVal::Result(Err(v)) => Self::Result(Err(unboxed(v))),
            WireVal::Flags(names) => Self::Flags(names),
            WireVal::FixedLengthList(vs) => Self::FixedLengthList(all(vs)),
        }
    }
}

/// Values for the wire.
pub fn to_wire(vals: &[Val]) -> Result<Vec<WireVal>, NotPlain> {
    all(vals)
}

/// Values from the wire.
pub fn from_wire(vals: Vec<WireVal>) -> Vec<Val> {
    vals.into_iter().map(Val::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plain_value_survives_the_round_trip_through_postcard() {
        let v = Val::Record(vec![
            ("n".into(), Val::S64(-3)),
            ("s".into(), Val::String("grüße".into())),
            ("l".into(), Val::List(vec![Val::U8(1), Val::U8(2)])),
            (
                "v".into(),
                Val::Variant("out-of-range".into(), Some(Box::new(Val::Float64(99.5)))),
            ),
            ("e".into(), Val::Enum("celsius".into())),
            ("o".into(), Val::Option(None)),
            ("r".into(), Val::Result(Err(Some(Box::new(Val::Char('x')))))),
            ("f".into(), Val::Flags(vec!["humidity".into()])),
            ("t".into(), Val::Tuple(vec![Val::Bool(true), Val::Float32(1.5)])),
        ]);
        let wire = WireVal::try_from(&v).unwrap();
        let bytes = postcard::to_allocvec(&wire).unwrap();
        let back: WireVal = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(Val::from(back), v);
    }
}
