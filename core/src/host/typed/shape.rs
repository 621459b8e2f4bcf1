//! The shapes of the functions a consumer imports and a provider exports:
//! the check that links them (the same functions, with the same types,
//! compared structurally, since each component has its own type tables),
//! the refusal of what cannot cross (resources, futures, streams), and a
//! WIT-like rendering for messages.

use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

/// Why a provider's function does not fit a consumer's import.
pub fn func_mismatch(import: &ComponentFunc, export: &ComponentFunc) -> Option<String> {
    let (ip, ep): (Vec<_>, Vec<_>) = (import.params().collect(), export.params().collect());
    if ip.len() != ep.len() {
        return Some(format!(
            "the import takes {} parameter(s), the provider's function {}",
            ip.len(),
            ep.len()
        ));
    }
    for ((iname, ity), (ename, ety)) in ip.iter().zip(&ep) {
        if let Some(why) = mismatch(ity, ety) {
            return Some(format!("parameter `{iname}` (provider: `{ename}`): {why}"));
        }
    }
    let (ir, er): (Vec<_>, Vec<_>) = (import.results().collect(), export.results().collect());
    if ir.len() != er.len() {
        return Some("the results differ in number".to_owned());
    }
    ir.iter()
        .zip(&er)
        .find_map(|(i, e)| mismatch(i, e).map(|why| format!("result: {why}")))
}

/// Why `a` and `b` are not the same type, or `None` when they are.
pub fn mismatch(a: &Type, b: &Type) -> Option<String> {
    let differ = || Some(format!("`{}` against `{}`", describe(a), describe(b)));
    match (a, b) {
        (Type::List(x), Type::List(y)) => mismatch(&x.ty(), &y.ty()),
        (Type::Map(x), Type::Map(y)) => mismatch(&x.key(), &y.key()).or_else(|| mismatch(&x.value(), &y.value())),
        (Type::FixedLengthList(x), Type::FixedLengthList(y)) if x.len() == y.len() => mismatch(&x.ty(), &y.ty()),
        (Type::Option(x), Type::Option(y)) => mismatch(&x.ty(), &y.ty()),
        (Type::Result(x), Type::Result(y)) => optional(x.ok(), y.ok()).or_else(|| optional(x.err(), y.err())),
        (Type::Tuple(x), Type::Tuple(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (x.types().collect(), y.types().collect());
            if xs.len() != ys.len() {
                return differ();
            }
            xs.iter().zip(&ys).find_map(|(x, y)| mismatch(x, y))
        }
        (Type::Record(x), Type::Record(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (x.fields().collect(), y.fields().collect());
            if xs.len() != ys.len() || xs.iter().zip(&ys).any(|(x, y)| x.name != y.name) {
                return differ();
            }
            xs.iter()
                .zip(&ys)
                .find_map(|(x, y)| mismatch(&x.ty, &y.ty).map(|why| format!("field `{}`: {why}", x.name)))
        }
        (Type::Variant(x), Type::Variant(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (x.cases().collect(), y.cases().collect());
            if xs.len() != ys.len() || xs.iter().zip(&ys).any(|(x, y)| x.name != y.name) {
                return differ();
            }
            xs.iter()
                .zip(&ys)
                .find_map(|(x, y)| optional(x.ty.clone(), y.ty.clone()).map(|why| format!("case `{}`: {why}", x.name)))
        }
        (Type::Enum(x), Type::Enum(y)) if x.names().eq(y.names()) => None,
        (Type::Flags(x), Type::Flags(y)) if x.names().eq(y.names()) => None,
        _ if primitive(a).is_some() && primitive(a) == primitive(b) => None,
        _ => differ(),
    }
}

fn optional(a: Option<Type>, b: Option<Type>) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (Some(a), Some(b)) => mismatch(&a, &b),
        (Some(a), None) => Some(format!("`{}` against nothing", describe(&a))),
        (None, Some(b)) => Some(format!("nothing against `{}`", describe(&b))),
    }
}

fn primitive(ty: &Type) -> Option<&'static str> {
    Some(match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        _ => return None,
    })
}

/// A WIT-like name of a type, for messages.
pub fn describe(ty: &Type) -> String {
    if let Some(name) = primitive(ty) {
        return name.to_owned();
    }
    match ty {
        Type::List(l) => format!("list<{}>", describe(&l.ty())),
        Type::Map(m) => format!("map<{}, {}>", describe(&m.key()), describe(&m.value())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", describe(&l.ty()), l.len()),
        Type::Option(o) => format!("option<{}>", describe(&o.ty())),
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map_or("_".to_owned(), |t| describe(&t));
            format!("result<{}, {}>", side(r.ok()), side(r.err()))
        }
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types().map(|t| describe(&t)).collect::<Vec<_>>().join(", ")
        ),
        Type::Record(r) => format!(
            "record {{ {} }}",
            r.fields().map(|f| f.name.to_owned()).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            v.cases().map(|c| c.name.to_owned()).collect::<Vec<_>>().join(", ")
        ),
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".to_owned(),
        Type::Borrow(_) => "borrow<resource>".to_owned(),
        Type::Future(_) => "future".to_owned(),
        Type::Stream(_) => "stream".to_owned(),
        Type::ErrorContext => "error-context".to_owned(),
        _ => "?".to_owned(),
    }
}

/// The first handle type (resource, future, stream) inside `ty`: such
/// values belong to one store and cannot be passed between modules.
fn handle_in(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some("resource"),
        Type::Future(_) => Some("future"),
        Type::Stream(_) => Some("stream"),
        Type::ErrorContext => Some("error-context"),
        Type::List(l) => handle_in(&l.ty()),
        Type::Map(m) => handle_in(&m.key()).or_else(|| handle_in(&m.value())),
        Type::FixedLengthList(l) => handle_in(&l.ty()),
        Type::Option(o) => handle_in(&o.ty()),
        Type::Result(r) => r
            .ok()
            .and_then(|t| handle_in(&t))
            .or_else(|| r.err().and_then(|t| handle_in(&t))),
        Type::Tuple(t) => t.types().find_map(|t| handle_in(&t)),
        Type::Record(r) => r.fields().find_map(|f| handle_in(&f.ty)),
        Type::Variant(v) => v.cases().find_map(|c| c.ty.and_then(|t| handle_in(&t))),
        _ => None,
    }
}

/// Why an interface (an instance type) cannot be called across modules:
/// a resource type of its own, or a function passing a handle.
pub fn not_callable(engine: &wasmtime::Engine, item: &ComponentItem) -> Option<String> {
    let ComponentItem::ComponentInstance(instance) = item else {
        return Some("it is not an interface (an instance of functions)".to_owned());
    };
    for (name, item) in instance.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let types = func.params().map(|(_, t)| t).chain(func.results());
                if let Some(kind) = types.into_iter().find_map(|t| handle_in(&t)) {
                    return Some(format!(
                        "function `{name}` passes a {kind}; only plain values (numbers, strings, lists, records, \
                         variants, enums, options, results, flags) can cross between modules"
                    ));
                }
            }
            ComponentItem::Resource(_) => {
                return Some(format!(
                    "it defines the resource `{name}`; resources cannot cross between modules yet"
                ));
            }
            _ => {}
        }
    }
    None
}

/// Why `value` is not a value of `ty`, or `None` when it is: the check a
/// call's arguments pass before the provider's code runs.
pub fn check_value(value: &wasmtime::component::Val, ty: &Type) -> Option<String> {
    use wasmtime::component::Val;
    let wrong = || Some(format!("expected {}, got {}", describe(ty), value_kind(value)));
    let each = |vals: &[Val], ty: &Type| vals.iter().find_map(|v| check_value(v, ty));
    match (value, ty) {
        (Val::List(vs), Type::List(l)) => each(vs, &l.ty()),
        (Val::FixedLengthList(vs), Type::FixedLengthList(l)) if vs.len() == l.len() as usize => each(vs, &l.ty()),
        (Val::Map(pairs), Type::Map(m)) => pairs
            .iter()
            .find_map(|(k, v)| check_value(k, &m.key()).or_else(|| check_value(v, &m.value()))),
        (Val::Option(None), Type::Option(_)) => None,
        (Val::Option(Some(v)), Type::Option(o)) => check_value(v, &o.ty()),
        (Val::Result(r), Type::Result(t)) => {
            let (payload, side) = match r {
                Ok(v) => (v, t.ok()),
                Err(v) => (v, t.err()),
            };
            match (payload, side) {
                (None, None) => None,
                (Some(v), Some(t)) => check_value(v, &t),
                _ => wrong(),
            }
        }
        (Val::Tuple(vs), Type::Tuple(t)) => {
            let types: Vec<Type> = t.types().collect();
            if vs.len() != types.len() {
                return wrong();
            }
            vs.iter().zip(&types).find_map(|(v, t)| check_value(v, t))
        }
        (Val::Record(fields), Type::Record(r)) => {
            let types: Vec<_> = r.fields().collect();
            if fields.len() != types.len() || fields.iter().zip(&types).any(|((n, _), f)| n != f.name) {
                return Some(format!(
                    "expected the fields {{ {} }}, got {{ {} }}",
                    types.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
                    fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            fields
                .iter()
                .zip(&types)
                .find_map(|((n, v), f)| check_value(v, &f.ty).map(|why| format!("field `{n}`: {why}")))
        }
        (Val::Variant(case, payload), Type::Variant(v)) => {
            let Some(found) = v.cases().find(|c| c.name == case) else {
                return Some(format!("`{case}` is not a case of {}", describe(ty)));
            };
            match (payload, found.ty) {
                (None, None) => None,
                (Some(p), Some(t)) => check_value(p, &t),
                _ => Some(format!("case `{case}`: the payload does not match")),
            }
        }
        (Val::Enum(case), Type::Enum(e)) => {
            (!e.names().any(|n| n == case)).then(|| format!("`{case}` is not a case of {}", describe(ty)))
        }
        (Val::Flags(names), Type::Flags(f)) => names
            .iter()
            .find(|n| !f.names().any(|m| m == n.as_str()))
            .map(|n| format!("`{n}` is not a flag of {}", describe(ty))),
        (Val::Bool(_), Type::Bool)
        | (Val::S8(_), Type::S8)
        | (Val::U8(_), Type::U8)
        | (Val::S16(_), Type::S16)
        | (Val::U16(_), Type::U16)
        | (Val::S32(_), Type::S32)
        | (Val::U32(_), Type::U32)
        | (Val::S64(_), Type::S64)
        | (Val::U64(_), Type::U64)
        | (Val::Float32(_), Type::Float32)
        | (Val::Float64(_), Type::Float64)
        | (Val::Char(_), Type::Char)
        | (Val::String(_), Type::String) => None,
        _ => wrong(),
    }
}

fn value_kind(value: &wasmtime::component::Val) -> &'static str {
    use wasmtime::component::Val;
    match value {
        Val::Bool(_) => "a bool",
        Val::S8(_) | Val::U8(_) | Val::S16(_) | Val::U16(_) | Val::S32(_) | Val::U32(_) | Val::S64(_) | Val::U64(_) => {
            "an integer of another width or sign"
        }
        Val::Float32(_) | Val::Float64(_) => "a float",
        Val::Char(_) => "a char",
        Val::String(_) => "a string",
        Val::List(_) | Val::FixedLengthList(_) => "a list",
        Val::Map(_) => "a map",
        Val::Record(_) => "a record",
        Val::Tuple(_) => "a tuple",
        Val::Variant(..) => "a variant",
        Val::Enum(_) => "an enum",
        Val::Option(_) => "an option",
        Val::Result(_) => "a result",
        Val::Flags(_) => "flags",
        _ => "a handle",
    }
}
