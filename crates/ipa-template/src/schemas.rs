//! JSON Schemas of agent tool parameters, with the `jsonschema` crate: checking a schema when a
//! tool is configured (the [`SchemaChecker`] port of the agent context, and the stricter
//! [`JsonSchemas::parameters_problems`] for the parameters of a tool), and validating a language
//! model's tool-call arguments against it before the tool is called ([`JsonSchemas::validate`]).
//!
//! Nothing here reads a file or the network: only references inside the schema itself (`#...`)
//! are followed. A schema is configuration written by a tenant; fetching what it names would let
//! it make the server call internal addresses, and would make a check depend on someone else's
//! server being up.

use std::collections::HashSet;
use std::io;

use ipa_agent::{DocumentProblem, SchemaChecker};
use ipa_kernel::json::serialized_within;
use ipa_kernel::text::clip;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, JsonType, ReferencingError, ValidationError, Validator};
use serde_json::Value;

/// The largest schema accepted, serialized as compact JSON, in bytes. Meta-validation and
/// compilation are linear in the schema; bounding it bounds the work a tool's configuration can
/// ask of the server, and no tool needs more to describe its parameters.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// The deepest nesting of objects and arrays accepted in a schema (each nested object property
/// takes two levels: its `properties` and its schema). Checking, compiling and validating recurse
/// over the schema, so its depth is their stack depth; a bound keeps a schema built in code from
/// overflowing the stack (one parsed by `serde_json` is already limited to 128).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// How much of a value a message quotes, in characters: enough to recognise it, never a page.
const MAX_QUOTED_CHARS: usize = 200;

/// The longest message, in characters. Messages also quote the schema's own values (`enum`
/// options, `const`), which the quoting of the offending value does not bound.
const MAX_MESSAGE_CHARS: usize = 600;

/// How many problems are reported at most: beyond that a list no longer helps anybody, and a
/// large schema or argument object full of mistakes would make a very large response.
const MAX_PROBLEMS: usize = 100;

/// How many times compilation is retried after removing what failed it. `jsonschema` stops at
/// the first error; retrying without it finds the next, so an author sees every broken pattern
/// and reference at once.
const MAX_COMPILE_ROUNDS: usize = 32;

/// The dialect of a schema without `$schema`.
const DEFAULT_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The keywords holding a reference, by draft: `$ref` (all), `$recursiveRef` (2019-09) and
/// `$dynamicRef` (2020-12).
const REFERENCE_KEYWORDS: [&str; 3] = ["$ref", "$dynamicRef", "$recursiveRef"];

/// Keywords whose value is a schema (`items` only up to 2019-09 when it is an array, which
/// [`SCHEMA_ARRAY_KEYWORDS`] covers).
const SCHEMA_KEYWORDS: [&str; 12] = [
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
];

/// Keywords whose value is an array of schemas.
const SCHEMA_ARRAY_KEYWORDS: [&str; 5] = ["allOf", "anyOf", "items", "oneOf", "prefixItems"];

/// Keywords whose value is an object of schemas by name (`dependencies` mixes schemas and arrays
/// of names before 2019-09).
const SCHEMA_MAP_KEYWORDS: [&str; 6] = [
    "$defs",
    "definitions",
    "dependencies",
    "dependentSchemas",
    "patternProperties",
    "properties",
];

/// The JSON Schema compiler and validator of agent tools. Holds nothing: cheap to build and to
/// share.
#[derive(Clone, Debug, Default)]
pub struct JsonSchemas;

impl JsonSchemas {
    /// A compiler that resolves only references inside the schema itself.
    pub const fn new() -> Self {
        Self
    }

    /// Every problem of `schema` as the parameters of a tool: those of [`SchemaChecker`], and a
    /// root that is an object schema (`"type": "object"`), since function-calling APIs pass a
    /// tool's arguments as an object of named values.
    pub fn parameters_problems(&self, schema: &Value) -> Vec<DocumentProblem> {
        let Some(object) = schema.as_object() else {
            return vec![problem(
                "",
                "a parameters schema must be a JSON object, e.g. {\"type\": \"object\", \
                 \"properties\": {...}}",
            )];
        };
        let mut problems = Vec::new();
        match object.get("type") {
            Some(Value::String(kind)) if kind == "object" => {}
            Some(other) => problems.push(problem(
                "/type",
                format!(
                    "the root `type` of a parameters schema must be \"object\", not {}: \
                     function-calling APIs pass a tool's arguments as an object of named values",
                    quoted(other)
                ),
            )),
            None => problems.push(problem(
                "",
                "a parameters schema must have \"type\": \"object\" at its root: \
                 function-calling APIs pass a tool's arguments as an object of named values",
            )),
        }
        problems.extend(self.schema_problems(schema));
        problems
    }

    /// Validates `instance` (e.g. a language model's arguments for a tool call) against `schema`:
    /// every value that does not conform is a problem at its pointer inside `instance` (`""` for
    /// the instance itself, where a missing required property is reported).
    ///
    /// When the schema itself has problems nothing is validated; they are returned at their
    /// pointers inside the schema, each message saying the schema is at fault.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Result<(), Vec<DocumentProblem>> {
        let validator = compile(schema).map_err(|problems| {
            problems
                .into_iter()
                .map(|found| DocumentProblem {
                    pointer: found.pointer,
                    message: format!(
                        "the schema itself is invalid, so nothing was validated: {}",
                        found.message
                    ),
                })
                .collect::<Vec<_>>()
        })?;
        let mut problems = Problems::default();
        for error in validator.iter_errors(instance) {
            problems.add(error.instance_path().as_str(), instance_message(&error));
        }
        problems.into_result()
    }
}

impl SchemaChecker for JsonSchemas {
    fn schema_problems(&self, schema: &Value) -> Vec<DocumentProblem> {
        match compile(schema) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }
}

/// `schema` compiled, or every problem found in it.
fn compile(schema: &Value) -> Result<Validator, Vec<DocumentProblem>> {
    // Bounds first: everything after recurses over the schema or serializes it.
    if too_deep(schema) {
        return Err(vec![problem(
            "",
            format!(
                "the schema nests objects and arrays more than {MAX_SCHEMA_DEPTH} levels deep; \
                 flatten it, e.g. with definitions under `$defs` used through `$ref`"
            ),
        )]);
    }
    if !serialized_within(schema, MAX_SCHEMA_BYTES) {
        return Err(vec![problem(
            "",
            "the schema is larger than 64 KiB; shorten it, e.g. its descriptions and examples",
        )]);
    }
    let draft = dialect(schema).map_err(|found| vec![found])?;

    let mut problems = Problems::default();
    let meta = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validator(),
        Draft::Draft6 => jsonschema::draft6::meta::validator(),
        Draft::Draft7 => jsonschema::draft7::meta::validator(),
        Draft::Draft201909 => jsonschema::draft201909::meta::validator(),
        _ => jsonschema::draft202012::meta::validator(),
    };
    // What the meta-schema refuses is reported and taken out of a working copy, so compiling
    // the rest still finds its own problems (a bad regex beside a misspelt type) in the same
    // answer. A refused root, or a refused part that cannot be taken out alone (an entry of an
    // array), leaves nothing meaningful to compile.
    let mut working = schema.clone();
    let mut cannot_compile = false;
    for error in meta.iter_errors(schema) {
        let pointer = error.instance_path().as_str().to_owned();
        problems.add(&pointer, schema_message(&error));
        remove_at(&mut working, &pointer);
        cannot_compile |= pointer.is_empty() || working.pointer(&pointer).is_some();
    }
    if cannot_compile {
        return Err(problems.into_vec());
    }

    // Remote references are refused here, all of them, with what to do instead; compiling goes
    // on without them to find the other problems. (Compiling is offline anyway: this is the
    // message, not the protection.)
    for reference in references(schema) {
        if !reference.target.starts_with('#') {
            problems.add(&reference.pointer, remote_message(&reference, draft));
            remove_at(&mut working, &reference.pointer);
        }
    }

    for _ in 0..MAX_COMPILE_ROUNDS {
        let error = match jsonschema::options()
            .with_draft(draft)
            .offline()
            .build(&working)
        {
            Ok(validator) if problems.is_empty() => return Ok(validator),
            Ok(_) => break,
            Err(error) => error,
        };
        let found = compile_problems(&error, &working, draft);
        let mut removed = false;
        for (pointer, message) in found {
            problems.add(&pointer, message);
            // Removing what failed lets the next round find the next problem; the root, or an
            // entry of an array, cannot be removed without changing what the rest means.
            removed |= !pointer.is_empty() && remove_at(&mut working, &pointer);
        }
        if !removed {
            break;
        }
    }
    Err(problems.into_vec())
}

/// The draft `schema` is written in, by its `$schema` (Draft 2020-12 without one).
fn dialect(schema: &Value) -> Result<Draft, DocumentProblem> {
    let Some(Value::String(uri)) = schema.get("$schema") else {
        // Absent, or not a string: the meta-schema of the default draft says what is wrong.
        return Ok(Draft::Draft202012);
    };
    match Draft::from_schema_uri(uri) {
        draft @ (Draft::Draft4
        | Draft::Draft6
        | Draft::Draft7
        | Draft::Draft201909
        | Draft::Draft202012) => Ok(draft),
        _ => Err(problem(
            "/$schema",
            format!(
                "`$schema` names a dialect this server does not know ({}); use \
                 \"{DEFAULT_DIALECT}\" (also the default when `$schema` is left out), \
                 \"https://json-schema.org/draft/2019-09/schema\", or \
                 \"http://json-schema.org/draft-07/schema#\", draft-06 or draft-04",
                quoted(&Value::String(uri.clone()))
            ),
        )),
    }
}

/// Whether `value` nests objects and arrays deeper than [`MAX_SCHEMA_DEPTH`]. Iterative, so it
/// is safe on any value.
fn too_deep(value: &Value) -> bool {
    let mut pending = vec![(value, 1_usize)];
    while let Some((value, depth)) = pending.pop() {
        match value {
            Value::Array(items) if depth <= MAX_SCHEMA_DEPTH => {
                pending.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(members) if depth <= MAX_SCHEMA_DEPTH => {
                pending.extend(members.values().map(|member| (member, depth + 1)));
            }
            Value::Array(_) | Value::Object(_) => return true,
            _ => {}
        }
    }
    false
}

/// A reference keyword inside a schema.
#[derive(Debug)]
struct Reference {
    /// Where the keyword is (its pointer ends with the keyword).
    pointer: String,
    /// `$ref`, `$dynamicRef` or `$recursiveRef`.
    keyword: &'static str,
    /// What it refers to.
    target: String,
}

/// Every reference keyword of `schema` and its subschemas, in document order.
fn references(schema: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    collect_references(schema, "", &mut found);
    found
}

/// Walks the subschemas by keyword, not every object: a `"$ref"` member of an `enum` value, a
/// `default` or a property named `$ref` is data, not a reference.
fn collect_references(schema: &Value, pointer: &str, found: &mut Vec<Reference>) {
    let Value::Object(object) = schema else {
        return;
    };
    for keyword in REFERENCE_KEYWORDS {
        if let Some(Value::String(target)) = object.get(keyword) {
            found.push(Reference {
                pointer: child(pointer, keyword),
                keyword,
                target: target.clone(),
            });
        }
    }
    for (keyword, value) in object {
        let at = child(pointer, keyword);
        let keyword = keyword.as_str();
        if SCHEMA_KEYWORDS.contains(&keyword) {
            collect_references(value, &at, found);
        }
        if let (true, Value::Array(items)) = (SCHEMA_ARRAY_KEYWORDS.contains(&keyword), value) {
            for (index, item) in items.iter().enumerate() {
                collect_references(item, &child(&at, &index.to_string()), found);
            }
        }
        if let (true, Value::Object(members)) = (SCHEMA_MAP_KEYWORDS.contains(&keyword), value) {
            for (name, member) in members {
                collect_references(member, &child(&at, name), found);
            }
        }
    }
}

/// Where definitions go in `draft`: the keyword its meta-schema names.
fn definitions(draft: Draft) -> &'static str {
    match draft {
        Draft::Draft4 | Draft::Draft6 | Draft::Draft7 => "definitions",
        _ => "$defs",
    }
}

/// Why a reference to another document is refused, and what to do instead.
fn remote_message(reference: &Reference, draft: Draft) -> String {
    if reference.target.is_empty() {
        // Means this document, by the letter of RFC 3986; "#" says so without doubt.
        return format!(
            "`{}` is empty; refer to the whole schema as \"#\", or to a definition as \
             \"#/{}/<name>\"",
            reference.keyword,
            definitions(draft)
        );
    }
    let definitions = definitions(draft);
    format!(
        "`{}` {} refers to another document, and remote references are not fetched; copy what \
         it refers to under `{definitions}` and refer to it as \"#/{definitions}/<name>\"",
        reference.keyword,
        quoted(&Value::String(reference.target.clone()))
    )
}

/// The problems behind a compilation error of `schema`, each at its pointer inside it.
fn compile_problems(
    error: &ValidationError<'_>,
    schema: &Value,
    draft: Draft,
) -> Vec<(String, String)> {
    let ValidationErrorKind::Referencing(failure) = error.kind() else {
        // A broken pattern (or anything else the meta-schema let through), reported at the
        // keyword that holds it.
        return vec![(
            error.instance_path().as_str().to_owned(),
            schema_message(error),
        )];
    };
    // A failed reference says what could not be found, not which `$ref` asked for it: every
    // reference to it is reported.
    let refers_to = |matches: &dyn Fn(&str) -> bool, why: &str| {
        let found = references(schema)
            .into_iter()
            .filter(|reference| matches(&reference.target))
            .map(|reference| {
                let message = format!(
                    "`{}` {} {why}",
                    reference.keyword,
                    quoted(&Value::String(reference.target.clone()))
                );
                (reference.pointer, cap(&message))
            })
            .collect::<Vec<_>>();
        if found.is_empty() {
            vec![(
                String::new(),
                cap(&format!("the schema does not compile: {failure}")),
            )]
        } else {
            found
        }
    };
    match failure {
        ReferencingError::PointerToNowhere { pointer } => refers_to(
            &|target| fragment_is(target, pointer),
            &format!(
                "points to nothing in this schema (there is no {}); add what it refers to or \
                 correct the reference",
                quoted(&Value::String(pointer.clone()))
            ),
        ),
        ReferencingError::NoSuchAnchor { anchor } => refers_to(
            &|target| fragment_is(target, anchor),
            &format!(
                "names an anchor that no `$anchor` in this schema defines; a reference to a \
                 definition is written \"#/{}/<name>\"",
                definitions(draft)
            ),
        ),
        ReferencingError::InvalidAnchor { anchor: pointer }
        | ReferencingError::InvalidPercentEncoding { pointer, .. }
        | ReferencingError::InvalidArrayIndex { pointer, .. } => refers_to(
            &|target| fragment_is(target, pointer),
            &format!(
                "is not a valid reference; refer to a definition as \"#/{}/<name>\", or to an \
                 `$anchor` as \"#<anchor>\"",
                definitions(draft)
            ),
        ),
        ReferencingError::UnknownSpecification { specification } => vec![(
            String::new(),
            cap(&format!(
                "a `$schema` inside the schema names a dialect this server does not know ({}); \
                 remove it or use the one at the root",
                quoted(&Value::String(specification.clone()))
            )),
        )],
        ReferencingError::Unretrievable { uri, .. } => vec![(
            String::new(),
            cap(&format!(
                "the schema refers to {}, which is not part of it, and remote references are not \
                 fetched",
                quoted(&Value::String(uri.clone()))
            )),
        )],
        // An unparsable reference (`InvalidUri`) and whatever else: the compiler's words, at
        // the references they quote.
        _ => {
            let words = failure.to_string();
            refers_to(
                &|target| words.contains(&format!("'{target}'")),
                &format!("cannot be resolved: {words}"),
            )
        }
    }
}

/// Whether the fragment of a reference (after `#`) is `expected`, as written or percent-decoded
/// (as the resolver reads it).
fn fragment_is(target: &str, expected: &str) -> bool {
    let Some((_, fragment)) = target.split_once('#') else {
        return false;
    };
    fragment == expected || percent_decoded(fragment).is_some_and(|decoded| decoded == expected)
}

/// `text` with its `%XX` escapes decoded; `None` when that is not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (b'%', Some(escaped)) => {
                decoded.push(escaped);
                index += 3;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The message for a problem of a schema (from its meta-schema, or from compiling it), naming
/// the keyword at fault rather than the meta-schema's keyword that caught it.
fn schema_message(error: &ValidationError<'_>) -> String {
    let place = Place::of(error.instance_path().as_str());
    let subject = &place.subject;
    let found = quoted(error.instance());
    let message = match error.kind() {
        ValidationErrorKind::Format { format } if format == "regex" => {
            if place.member_of.as_deref() == Some("patternProperties") {
                format!(
                    "the key {found} of `patternProperties` is not a valid regular expression \
                     (ECMA-262 syntax, e.g. \"^x-[a-z]+$\")"
                )
            } else {
                format!(
                    "{subject} is not a valid regular expression: {found} (ECMA-262 syntax, e.g. \
                     \"^[a-z]+$\")"
                )
            }
        }
        ValidationErrorKind::Format { format } => {
            format!("{subject} must be a valid {format}, not {found}")
        }
        ValidationErrorKind::Type { kind } => {
            format!("{subject} must be {}, not {found}", expected_types(kind))
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. }
            if error
                .schema_path()
                .as_str()
                .ends_with("/properties/type/anyOf") =>
        {
            format!(
                "{subject} must be one of \"array\", \"boolean\", \"integer\", \"null\", \
                 \"number\", \"object\" and \"string\", or an array of them, not {found}"
            )
        }
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            format!("{subject} does not have a form JSON Schema allows for it: {found}")
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{subject} must be at least {limit}, not {found}")
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("{subject} must be greater than {limit}, not {found}")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("{subject} must have at least {limit} entries")
        }
        ValidationErrorKind::UniqueItems => format!("{subject} must not repeat an entry: {found}"),
        _ => format!("{subject} is not valid: {}", error.masked_with(found)),
    };
    cap(&message)
}

/// The message for a value (an argument) that does not conform to its schema. The location is
/// in the pointer; the message says what is wrong with the value.
fn instance_message(error: &ValidationError<'_>) -> String {
    cap(&error.masked_with(quoted(error.instance())).to_string())
}

/// What a type check of the meta-schema expected, in words.
fn expected_types(kind: &TypeKind) -> String {
    let names = match kind {
        TypeKind::Single(single) => vec![*single],
        TypeKind::Multiple(set) => set.iter().collect(),
    };
    if names.len() == 2 && names.contains(&JsonType::Object) && names.contains(&JsonType::Boolean) {
        return "a JSON object or a boolean".to_owned();
    }
    let names = names.into_iter().map(type_name).collect::<Vec<_>>();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "something else".to_owned(),
    }
}

/// A JSON type with its article, for messages.
fn type_name(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Array => "an array",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

/// What a pointer inside a schema designates, in words: "`minLength`", "the schema of property
/// `city`", "entry 2 of `required`". Keywords and names alternate along a pointer, so telling
/// them apart takes walking it from the root (`/properties/type` is a property named `type`).
#[derive(Debug)]
struct Place {
    /// The words.
    subject: String,
    /// The keyword of which the last segment is a member name (`properties`, `$defs`, ...).
    member_of: Option<String>,
}

impl Place {
    fn of(pointer: &str) -> Self {
        /// What the next segment of a pointer is.
        enum Next {
            /// A keyword of a schema.
            Keyword,
            /// An index under this keyword when it holds an array of schemas (`allOf`), else a
            /// keyword of the schema it holds (`items` is either up to 2019-09).
            IndexOrKeyword(String),
            /// A name under this keyword (`properties`, `$defs`).
            Member(String),
            /// Inside the value of this keyword, which is not a schema (`required`, `enum`).
            Value(String),
        }

        let mut next = Next::Keyword;
        let mut place = Self {
            subject: "the schema".to_owned(),
            member_of: None,
        };
        for segment in pointer.split('/').skip(1).map(unescape) {
            place.member_of = None;
            let index = segment.parse::<usize>().is_ok();
            next = match next {
                Next::IndexOrKeyword(keyword) if index => {
                    place.subject = format!("schema {segment} of `{keyword}`");
                    Next::Keyword
                }
                Next::Keyword | Next::IndexOrKeyword(_) => {
                    place.subject = format!("`{segment}`");
                    let keyword = segment.as_str();
                    if SCHEMA_MAP_KEYWORDS.contains(&keyword) {
                        Next::Member(segment)
                    } else if SCHEMA_ARRAY_KEYWORDS.contains(&keyword) {
                        Next::IndexOrKeyword(segment)
                    } else if SCHEMA_KEYWORDS.contains(&keyword) {
                        Next::Keyword
                    } else {
                        Next::Value(segment)
                    }
                }
                Next::Member(keyword) => {
                    place.subject = match keyword.as_str() {
                        "properties" => format!("the schema of property `{segment}`"),
                        "patternProperties" => {
                            format!("the schema of properties matching `{segment}`")
                        }
                        "$defs" | "definitions" => format!("the definition `{segment}`"),
                        _ => format!("the schema that applies when `{segment}` is present"),
                    };
                    place.member_of = Some(keyword);
                    Next::Keyword
                }
                Next::Value(keyword) => {
                    place.subject = format!("entry {segment} of `{keyword}`");
                    Next::Value(keyword)
                }
            };
        }
        place
    }
}

/// `value` as JSON, cut to [`MAX_QUOTED_CHARS`] characters. Only the beginning is written: the
/// value may be a large part of the schema, quoted once per problem.
fn quoted(value: &Value) -> String {
    /// Enough bytes for the characters kept and one more, however wide they are.
    const HEAD_BYTES: usize = 4 * (MAX_QUOTED_CHARS + 1);

    /// A writer that keeps the first [`HEAD_BYTES`] bytes, then refuses the rest.
    struct Head(Vec<u8>);

    impl io::Write for Head {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let room = HEAD_BYTES - self.0.len();
            if room == 0 {
                return Err(io::Error::other("the head is full"));
            }
            let taken = room.min(buf.len());
            self.0.extend_from_slice(&buf[..taken]);
            Ok(taken)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let mut head = Head(Vec::with_capacity(HEAD_BYTES));
    // Stopping early is the point: what was written is what is quoted.
    let whole = serde_json::to_writer(&mut head, value).is_ok();
    let text = match std::str::from_utf8(&head.0) {
        Ok(text) => text,
        // Cut inside a character: keep the whole ones.
        Err(error) => std::str::from_utf8(&head.0[..error.valid_up_to()]).unwrap_or_default(),
    };
    if whole {
        return clip(text, MAX_QUOTED_CHARS);
    }
    // Only the head was written, so the whole length is unknown: the note says only that it was
    // cut.
    const NOTE: &str = "… (cut)";
    let keep = MAX_QUOTED_CHARS - NOTE.chars().count();
    let end = text
        .char_indices()
        .nth(keep)
        .map_or(text.len(), |(at, _)| at);
    format!("{}{NOTE}", &text[..end])
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters.
fn cap(message: &str) -> String {
    clip(message, MAX_MESSAGE_CHARS)
}

/// `base` extended by one member name or index, escaped per RFC 6901.
fn child(base: &str, member: &str) -> String {
    format!("{base}/{}", member.replace('~', "~0").replace('/', "~1"))
}

/// One segment of an RFC 6901 pointer, unescaped.
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Removes the object member at `pointer` from `root`; whether there was one.
fn remove_at(root: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    match root.pointer_mut(parent) {
        Some(Value::Object(members)) => members.remove(&unescape(last)).is_some(),
        _ => false,
    }
}

fn problem(pointer: &str, message: impl Into<String>) -> DocumentProblem {
    DocumentProblem {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

/// Problems found so far: each once (several meta-schemas of one draft catch the same mistake),
/// at most [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
struct Problems {
    found: Vec<DocumentProblem>,
    seen: HashSet<(String, String)>,
    omitted: usize,
}

impl Problems {
    fn add(&mut self, pointer: &str, message: String) {
        if !self.seen.insert((pointer.to_owned(), message.clone())) {
            return;
        }
        if self.found.len() < MAX_PROBLEMS {
            self.found.push(problem(pointer, message));
        } else {
            self.omitted += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems by pointer, so that they read in the order of the document, whatever order
    /// the checks found them in (a stable sort: several at one pointer keep theirs).
    fn into_vec(mut self) -> Vec<DocumentProblem> {
        self.found
            .sort_by(|left, right| left.pointer.cmp(&right.pointer));
        if self.omitted > 0 {
            self.found.push(problem(
                "",
                format!(
                    "{} more problems are not listed; fix these first",
                    self.omitted
                ),
            ));
        }
        self.found
    }

    fn into_result(self) -> Result<(), Vec<DocumentProblem>> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_vec())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn problems(schema: &Value) -> Vec<DocumentProblem> {
        JsonSchemas::new().schema_problems(schema)
    }

    fn pointers(found: &[DocumentProblem]) -> Vec<&str> {
        found.iter().map(|found| found.pointer.as_str()).collect()
    }

    #[test]
    fn quoting_writes_only_the_beginning_of_a_value() {
        let long = Value::String("é".repeat(1_000_000));
        let quote = quoted(&long);
        assert_eq!(quote.chars().count(), MAX_QUOTED_CHARS, "{quote}");
        assert!(
            quote.starts_with("\"ééé") && quote.ends_with("… (cut)"),
            "{quote}"
        );
        let short_enough = Value::String("é".repeat(MAX_QUOTED_CHARS + 10));
        assert!(
            quoted(&short_enough).ends_with("… (212 characters, cut)"),
            "a value written whole says how long it was"
        );
        assert_eq!(quoted(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
    }

    /// The only problem of `schema`.
    fn only_problem(schema: &Value) -> DocumentProblem {
        let found = problems(schema);
        assert_eq!(found.len(), 1, "{found:#?}");
        found.into_iter().next().unwrap()
    }

    fn weather() -> Value {
        json!({
            "type": "object",
            "description": "Current weather of a city.",
            "properties": {
                "city": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z .-]+$"},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7}
            },
            "required": ["city"],
            "additionalProperties": false
        })
    }

    #[test]
    fn a_valid_object_schema_has_no_problems() {
        assert_eq!(problems(&weather()), vec![]);
        assert_eq!(JsonSchemas::new().parameters_problems(&weather()), vec![]);
        // Any valid schema is a schema, booleans included.
        assert_eq!(problems(&json!(true)), vec![]);
        assert_eq!(problems(&json!({"type": ["string", "null"]})), vec![]);
    }

    #[test]
    fn a_wrong_type_is_reported_at_its_keyword() {
        let found = only_problem(&json!({"type": "nope"}));
        assert_eq!(found.pointer, "/type");
        assert!(
            found.message.starts_with("`type` must be one of \"array\""),
            "{found:?}"
        );
        assert!(found.message.ends_with("not \"nope\""), "{found:?}");
    }

    #[test]
    fn a_nested_problem_is_reported_at_its_pointer() {
        let found = only_problem(&json!({"properties": {"a": {"type": 5}}}));
        assert_eq!(found.pointer, "/properties/a/type");
        // A property named like a keyword is still a property.
        let found = only_problem(&json!({"properties": {"type": 3}}));
        assert_eq!(found.pointer, "/properties/type");
        assert_eq!(
            found.message,
            "the schema of property `type` must be a JSON object or a boolean, not 3"
        );
    }

    #[test]
    fn every_problem_is_reported_once() {
        let found = problems(&json!({
            "properties": {"a": {"minLength": -1, "required": "x"}, "b": 3},
            "required": [1],
            "pattern": 5
        }));
        assert_eq!(
            pointers(&found),
            [
                "/pattern",
                "/properties/a/minLength",
                "/properties/a/required",
                "/properties/b",
                "/required/0"
            ],
            "{found:#?}"
        );
        let messages = found
            .iter()
            .map(|found| found.message.as_str())
            .collect::<Vec<_>>();
        assert_eq!(
            messages,
            [
                "`pattern` must be a string, not 5",
                "`minLength` must be at least 0, not -1",
                "`required` must be an array, not \"x\"",
                "the schema of property `b` must be a JSON object or a boolean, not 3",
                "entry 0 of `required` must be a string, not 1",
            ]
        );
    }

    #[test]
    fn an_invalid_regex_is_a_problem() {
        let found = only_problem(&json!({"properties": {"a": {"pattern": "[a-"}}}));
        assert_eq!(found.pointer, "/properties/a/pattern");
        assert!(
            found
                .message
                .starts_with("`pattern` is not a valid regular expression: \"[a-\""),
            "{found:?}"
        );
        let found = only_problem(&json!({"patternProperties": {"(": {}}}));
        assert_eq!(found.pointer, "/patternProperties/(");
        assert!(
            found
                .message
                .starts_with("the key \"(\" of `patternProperties`"),
            "{found:?}"
        );
    }

    #[test]
    fn every_compile_problem_is_reported() {
        let found = problems(&json!({
            "$defs": {"x": {"type": "string"}},
            "properties": {
                "a": {"pattern": "("},
                "b": {"$ref": "#/$defs/missing"},
                "c": {"$ref": "#/$defs/x"},
                "d": {"pattern": "[z-a]"}
            }
        }));
        let mut found = pointers(&found);
        found.sort_unstable();
        assert_eq!(
            found,
            [
                "/properties/a/pattern",
                "/properties/b/$ref",
                "/properties/d/pattern"
            ]
        );
    }

    #[test]
    fn a_remote_reference_is_refused_without_fetching() {
        let started = Instant::now();
        let found = only_problem(&json!({"$ref": "https://example.com/x.json"}));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it must not try the network"
        );
        assert_eq!(found.pointer, "/$ref");
        assert!(
            found.message.contains("remote references are not fetched"),
            "{found:?}"
        );
        let found = only_problem(&json!({"$ref": ""}));
        assert_eq!(found.pointer, "/$ref");
        assert!(found.message.contains("\"#\""), "{found:?}");
        // Relative references and files too; each one, with the other problems.
        let found = problems(&json!({
            "properties": {
                "a": {"$ref": "other.json#/x"},
                "b": {"items": {"$ref": "file:///etc/passwd"}},
                "c": {"pattern": "("},
                "d": {"enum": [{"$ref": "https://example.com/data-not-a-reference"}]}
            }
        }));
        assert_eq!(
            pointers(&found),
            [
                "/properties/a/$ref",
                "/properties/b/items/$ref",
                "/properties/c/pattern"
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn local_references_are_resolved() {
        let schema = json!({
            "type": "object",
            "$defs": {"city": {"type": "string", "minLength": 1}},
            "properties": {"from": {"$ref": "#/$defs/city"}, "to": {"$ref": "#/$defs/city"}}
        });
        assert_eq!(problems(&schema), vec![]);
        let schemas = JsonSchemas::new();
        assert_eq!(
            schemas.validate(&schema, &json!({"from": "Oslo", "to": "Rome"})),
            Ok(())
        );
        let found = schemas
            .validate(&schema, &json!({"from": "", "to": 1}))
            .unwrap_err();
        assert_eq!(pointers(&found), ["/from", "/to"], "{found:#?}");

        let found = only_problem(&json!({"properties": {"a": {"$ref": "#/$defs/missing"}}}));
        assert_eq!(found.pointer, "/properties/a/$ref");
        assert!(found.message.contains("points to nothing"), "{found:?}");
        let found = only_problem(&json!({"properties": {"a": {"$ref": "#/$defs/x y"}}}));
        assert_eq!(found.pointer, "/properties/a/$ref");
        assert!(found.message.contains("cannot be resolved"), "{found:?}");
        let schema = json!({"$defs": {"a b": {}}, "properties": {"a": {"$ref": "#/$defs/a%20b"}}});
        assert_eq!(problems(&schema), vec![]);
        let found = only_problem(&json!({"properties": {"a": {"$ref": "#nowhere"}}}));
        assert_eq!(found.pointer, "/properties/a/$ref");
        assert!(found.message.contains("no `$anchor`"), "{found:?}");
    }

    #[test]
    fn the_draft_follows_schema() {
        let draft7 = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "definitions": {"n": {"type": "integer"}},
            "properties": {"n": {"$ref": "#/definitions/n"}},
            "dependencies": {"n": ["m"]}
        });
        assert_eq!(problems(&draft7), vec![]);
        let schemas = JsonSchemas::new();
        let found = schemas.validate(&draft7, &json!({"n": "1"})).unwrap_err();
        assert_eq!(pointers(&found), ["", "/n"], "{found:#?}");
        // Draft 4: `exclusiveMaximum` is a boolean there, a number since draft 6.
        let draft4 = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "maximum": 5,
            "exclusiveMaximum": 5
        });
        assert_eq!(pointers(&problems(&draft4)), ["/exclusiveMaximum"]);
        // Draft 7 asserts formats in its meta-schema: a broken pattern is caught there.
        let found = only_problem(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"a": {"pattern": "("}}
        }));
        assert_eq!(found.pointer, "/properties/a/pattern");
        assert!(
            found.message.contains("not a valid regular expression"),
            "{found:?}"
        );
        for uri in [
            "https://json-schema.org/draft/2020-12/schema",
            "https://json-schema.org/draft/2019-09/schema",
            "http://json-schema.org/draft-06/schema#",
        ] {
            assert_eq!(
                problems(&json!({"$schema": uri, "type": "object"})),
                vec![],
                "{uri}"
            );
        }
    }

    #[test]
    fn an_unknown_schema_is_refused() {
        let found =
            only_problem(&json!({"$schema": "https://example.com/custom", "type": "object"}));
        assert_eq!(found.pointer, "/$schema");
        assert!(found.message.contains("does not know"), "{found:?}");
        let found = only_problem(&json!({"$schema": 5}));
        assert_eq!(found.pointer, "/$schema");
    }

    #[test]
    fn an_oversized_schema_is_refused() {
        let properties = (0..2000)
            .map(|index| {
                (
                    format!("property_{index}"),
                    json!({"type": "string", "description": "x".repeat(30)}),
                )
            })
            .collect::<serde_json::Map<_, _>>();
        let schema = json!({"type": "object", "properties": properties});
        assert!(serde_json::to_vec(&schema).unwrap().len() > MAX_SCHEMA_BYTES);
        let found = only_problem(&schema);
        assert_eq!(found.pointer, "");
        assert!(found.message.contains("64 KiB"), "{found:?}");
        assert!(JsonSchemas::new().validate(&schema, &json!({})).is_err());
    }

    #[test]
    fn a_too_deep_schema_is_refused() {
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let found = only_problem(&deep);
        assert!(found.message.contains("levels deep"), "{found:?}");
        let mut fine = json!({"type": "string"});
        for _ in 0..30 {
            fine = json!({"type": "object", "properties": {"a": fine}});
        }
        assert_eq!(problems(&fine), vec![]);
    }

    #[test]
    fn parameters_must_be_an_object_schema() {
        let schemas = JsonSchemas::new();
        for root in [json!(true), json!("object"), json!([])] {
            let found = schemas.parameters_problems(&root);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert_eq!(found[0].pointer, "");
            assert!(
                found[0]
                    .message
                    .starts_with("a parameters schema must be a JSON object")
            );
        }
        let found = schemas.parameters_problems(&json!({"properties": {"a": {}}}));
        assert_eq!(pointers(&found), [""]);
        assert!(
            found[0].message.contains("\"type\": \"object\""),
            "{found:?}"
        );
        let found = schemas.parameters_problems(&json!({"type": "string"}));
        assert_eq!(pointers(&found), ["/type"]);
        // The problems of the schema come along.
        let found = schemas.parameters_problems(&json!({
            "type": "object",
            "properties": {"a": {"type": 5}}
        }));
        assert_eq!(pointers(&found), ["/properties/a/type"]);
    }

    #[test]
    fn validate_reports_each_wrong_argument() {
        let schemas = JsonSchemas::new();
        assert_eq!(
            schemas.validate(&weather(), &json!({"city": "Oslo", "days": 3})),
            Ok(())
        );
        let found = schemas
            .validate(&weather(), &json!({"city": 5, "days": 9, "extra": true}))
            .unwrap_err();
        assert_eq!(pointers(&found), ["", "/city", "/days"], "{found:#?}");
        assert!(found[0].message.contains("'extra'"), "{found:?}");
        assert_eq!(found[1].message, "5 is not of type \"string\"");
        assert_eq!(found[2].message, "9 is greater than the maximum of 7");

        let found = schemas
            .validate(&weather(), &json!({"unit": "kelvin"}))
            .unwrap_err();
        assert_eq!(pointers(&found), ["", "/unit"], "{found:#?}");
        assert_eq!(found[0].message, "\"city\" is a required property");
    }

    #[test]
    fn validate_reports_problems_of_the_schema_as_such() {
        let found = JsonSchemas::new()
            .validate(&json!({"properties": {"a": {"type": 5}}}), &json!({"a": 1}))
            .unwrap_err();
        assert_eq!(pointers(&found), ["/properties/a/type"]);
        assert!(
            found[0].message.starts_with("the schema itself is invalid"),
            "{found:?}"
        );
    }

    #[test]
    fn quoted_values_are_cut() {
        let long = "x".repeat(5000);
        let found = JsonSchemas::new()
            .validate(
                &json!({"type": "object", "properties": {"a": {"maxLength": 3}}}),
                &json!({"a": long}),
            )
            .unwrap_err();
        assert_eq!(pointers(&found), ["/a"]);
        assert!(found[0].message.len() < 300, "{}", found[0].message);
        assert!(found[0].message.contains("…"), "{}", found[0].message);

        let found = only_problem(&json!({"type": "y".repeat(5000)}));
        assert!(
            found.message.chars().count() <= MAX_MESSAGE_CHARS + 1,
            "{}",
            found.message
        );
        let long_enum = (0..3).map(|_| "e".repeat(1000)).collect::<Vec<_>>();
        let found = JsonSchemas::new()
            .validate(&json!({"enum": long_enum}), &json!(1))
            .unwrap_err();
        assert!(
            found[0].message.chars().count() <= MAX_MESSAGE_CHARS + 1,
            "{}",
            found[0].message
        );
    }

    #[test]
    fn many_problems_are_capped() {
        let properties = (0..300)
            .map(|index| (format!("p{index}"), json!({"type": 5})))
            .collect::<serde_json::Map<_, _>>();
        let found = problems(&json!({"properties": properties}));
        assert_eq!(found.len(), MAX_PROBLEMS + 1);
        assert!(
            found[MAX_PROBLEMS].message.starts_with("200 more problems"),
            "{:?}",
            found[MAX_PROBLEMS]
        );
    }

    #[test]
    fn places_name_keywords_and_names() {
        let subject = |pointer: &str| Place::of(pointer).subject;
        assert_eq!(subject(""), "the schema");
        assert_eq!(subject("/properties/a/type"), "`type`");
        assert_eq!(
            subject("/properties/properties"),
            "the schema of property `properties`"
        );
        assert_eq!(subject("/allOf/1"), "schema 1 of `allOf`");
        assert_eq!(subject("/items/0/minLength"), "`minLength`");
        assert_eq!(subject("/items/minLength"), "`minLength`");
        assert_eq!(subject("/$defs/a~1b"), "the definition `a/b`");
        assert_eq!(subject("/enum/2"), "entry 2 of `enum`");
    }
}
