//! Protobuf breaking-change check between a released `FileDescriptorSet` and the current one.
//!
//! Services roll independently, so an old forecast pod must keep understanding a new ingest pod and vice versa,
//! and JSON renderings (logs, grpcurl, reflection) must keep their field names. Rules, in the spirit of
//! `buf breaking` at the WIRE_JSON level plus deletions: a removed service, rpc, message or enum breaks; an rpc
//! whose request/response type or streaming changed breaks; a field deleted without reserving its number and
//! name, renamed, retyped or changed in cardinality breaks; a reserved number or name reused breaks; an enum
//! value deleted without reservation or renamed breaks. New services, rpcs, messages, fields and enum values are
//! allowed.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto, field_descriptor_proto::Label,
};

use crate::{Finding, Verdict};

/// Why a descriptor set could not be read.
#[derive(Debug)]
pub struct DecodeError(pub prost::DecodeError);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an encoded FileDescriptorSet: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Compares two encoded `FileDescriptorSet`s. Well-known `google.*` files are skipped.
pub fn compare_encoded(baseline: &[u8], current: &[u8]) -> Result<Vec<Finding>, DecodeError> {
    let baseline = FileDescriptorSet::decode(baseline).map_err(DecodeError)?;
    let current = FileDescriptorSet::decode(current).map_err(DecodeError)?;
    Ok(compare(&baseline, &current))
}

/// Compares two descriptor sets.
pub fn compare(baseline: &FileDescriptorSet, current: &FileDescriptorSet) -> Vec<Finding> {
    let base = Index::new(baseline);
    let cur = Index::new(current);
    let mut findings = Vec::new();

    for (name, base_service) in &base.services {
        let Some(cur_service) = cur.services.get(name) else {
            findings.push(breaking("service-removed", name, "the service is gone"));
            continue;
        };
        compare_service(name, base_service, cur_service, &mut findings);
    }
    for (name, base_message) in &base.messages {
        let Some(cur_message) = cur.messages.get(name) else {
            findings.push(breaking("message-removed", name, "the message is gone"));
            continue;
        };
        compare_message(name, base_message, cur_message, &mut findings);
    }
    for (name, base_enum) in &base.enums {
        let Some(cur_enum) = cur.enums.get(name) else {
            findings.push(breaking("enum-removed", name, "the enum is gone"));
            continue;
        };
        compare_enum(name, base_enum, cur_enum, &mut findings);
    }
    findings.sort();
    findings
}

fn breaking(rule: &'static str, location: &str, detail: &str) -> Finding {
    Finding {
        verdict: Verdict::Breaking,
        rule,
        location: location.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Every service, message and enum of a set by fully qualified name (`hangang.push.v1.Fact`).
struct Index<'a> {
    services: BTreeMap<String, &'a ServiceDescriptorProto>,
    messages: BTreeMap<String, &'a DescriptorProto>,
    enums: BTreeMap<String, &'a EnumDescriptorProto>,
}

impl<'a> Index<'a> {
    fn new(set: &'a FileDescriptorSet) -> Self {
        let mut index =
            Index { services: BTreeMap::new(), messages: BTreeMap::new(), enums: BTreeMap::new() };
        for file in set.file.iter().filter(|file| !file.package().starts_with("google.")) {
            let package = file.package();
            for service in &file.service {
                index.services.insert(qualify(package, service.name()), service);
            }
            for message in &file.message_type {
                index.add_message(package, message);
            }
            for enumeration in &file.enum_type {
                index.enums.insert(qualify(package, enumeration.name()), enumeration);
            }
        }
        index
    }

    fn add_message(&mut self, scope: &str, message: &'a DescriptorProto) {
        let name = qualify(scope, message.name());
        // Map entries are synthesized; their parent's map field covers them.
        if !message.options.as_ref().is_some_and(|options| options.map_entry()) {
            self.messages.insert(name.clone(), message);
        }
        for nested in &message.nested_type {
            self.add_message(&name, nested);
        }
        for enumeration in &message.enum_type {
            self.enums.insert(qualify(&name, enumeration.name()), enumeration);
        }
    }
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

fn compare_service(
    name: &str,
    base: &ServiceDescriptorProto,
    cur: &ServiceDescriptorProto,
    findings: &mut Vec<Finding>,
) {
    for base_method in &base.method {
        let location = format!("{name}.{}", base_method.name());
        let Some(cur_method) = cur.method.iter().find(|m| m.name() == base_method.name()) else {
            findings.push(breaking("rpc-removed", &location, "the rpc is gone"));
            continue;
        };
        if base_method.input_type() != cur_method.input_type()
            || base_method.output_type() != cur_method.output_type()
        {
            findings.push(breaking(
                "rpc-type-changed",
                &location,
                &format!(
                    "({}) -> {} became ({}) -> {}",
                    base_method.input_type(),
                    base_method.output_type(),
                    cur_method.input_type(),
                    cur_method.output_type()
                ),
            ));
        }
        if base_method.client_streaming() != cur_method.client_streaming()
            || base_method.server_streaming() != cur_method.server_streaming()
        {
            findings.push(breaking("rpc-streaming-changed", &location, "streaming mode changed"));
        }
    }
}

fn compare_message(
    name: &str,
    base: &DescriptorProto,
    cur: &DescriptorProto,
    findings: &mut Vec<Finding>,
) {
    let number_reserved = |message: &DescriptorProto, number: i32| {
        // Reserved ranges are [start, end) in descriptors.
        message.reserved_range.iter().any(|range| range.start() <= number && number < range.end())
    };
    let name_reserved =
        |message: &DescriptorProto, field: &str| message.reserved_name.iter().any(|n| n == field);

    for base_field in &base.field {
        let location = format!("{name}.{}", base_field.name());
        let Some(cur_field) = cur.field.iter().find(|f| f.number() == base_field.number()) else {
            if !(number_reserved(cur, base_field.number()) && name_reserved(cur, base_field.name()))
            {
                findings.push(breaking(
                    "field-deleted-without-reserve",
                    &location,
                    &format!(
                        "field {} was deleted; reserve its number and name (`reserved {}; reserved \"{}\";`)",
                        base_field.number(),
                        base_field.number(),
                        base_field.name()
                    ),
                ));
            }
            continue;
        };
        if cur_field.name() != base_field.name() || cur_field.json_name() != base_field.json_name()
        {
            findings.push(breaking(
                "field-renamed",
                &location,
                &format!(
                    "field {} is now called `{}`; JSON renderings change",
                    base_field.number(),
                    cur_field.name()
                ),
            ));
        }
        if field_type(base_field) != field_type(cur_field) {
            findings.push(breaking(
                "field-type-changed",
                &location,
                &format!("type {} became {}", field_type(base_field), field_type(cur_field)),
            ));
        }
        if cardinality(base_field) != cardinality(cur_field) {
            findings.push(breaking(
                "field-cardinality-changed",
                &location,
                &format!("{} became {}", cardinality(base_field), cardinality(cur_field)),
            ));
        }
    }
    for cur_field in &cur.field {
        let location = format!("{name}.{}", cur_field.name());
        if number_reserved(base, cur_field.number()) {
            findings.push(breaking(
                "reserved-field-number-reused",
                &location,
                &format!("number {} was reserved in the released contract", cur_field.number()),
            ));
        }
        if name_reserved(base, cur_field.name()) {
            findings.push(breaking(
                "reserved-field-name-reused",
                &location,
                "the name was reserved in the released contract",
            ));
        }
    }
}

fn field_type(field: &FieldDescriptorProto) -> String {
    if field.type_name().is_empty() {
        format!("{:?}", field.r#type())
    } else {
        field.type_name().to_owned()
    }
}

fn cardinality(field: &FieldDescriptorProto) -> &'static str {
    match (field.label(), field.proto3_optional()) {
        (Label::Repeated, _) => "repeated",
        (Label::Required, _) => "required",
        (_, true) => "optional",
        _ => "singular",
    }
}

fn compare_enum(
    name: &str,
    base: &EnumDescriptorProto,
    cur: &EnumDescriptorProto,
    findings: &mut Vec<Finding>,
) {
    for base_value in &base.value {
        let location = format!("{name}.{}", base_value.name());
        match cur.value.iter().find(|value| value.number() == base_value.number()) {
            Some(cur_value) if cur_value.name() != base_value.name() => findings.push(breaking(
                "enum-value-renamed",
                &location,
                &format!("value {} is now called `{}`", base_value.number(), cur_value.name()),
            )),
            Some(_) => {}
            None => {
                // Enum reserved ranges are inclusive, unlike message ones.
                let reserved = cur.reserved_range.iter().any(|range| {
                    range.start() <= base_value.number() && base_value.number() <= range.end()
                }) && cur.reserved_name.iter().any(|n| n == base_value.name());
                if !reserved {
                    findings.push(breaking(
                        "enum-value-deleted",
                        &location,
                        &format!(
                            "value {} was deleted; old peers still send it (reserve number and name)",
                            base_value.number()
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Compiles one `.proto` source (package `t.v1`) with protox, through a private temporary directory.
    fn compile(source: &str) -> FileDescriptorSet {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir: PathBuf =
            std::env::temp_dir().join(format!("compat-proto-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("t.proto"),
            format!("syntax = \"proto3\";\npackage t.v1;\n{source}"),
        )
        .unwrap();
        let set = protox::compile(["t.proto"], [&dir]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        set
    }

    fn rules(base: &str, cur: &str) -> Vec<&'static str> {
        compare(&compile(base), &compile(cur)).iter().map(|finding| finding.rule).collect()
    }

    const BASE: &str = r#"
        service S { rpc Get(Req) returns (Res); }
        message Req { string id = 1; repeated string tags = 2; }
        message Res { int64 value = 1; Kind kind = 2; map<string, string> attrs = 3; }
        enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; }
    "#;

    #[test]
    fn identical_sets_are_compatible() {
        assert!(rules(BASE, BASE).is_empty());
    }

    #[test]
    fn additions_are_compatible() {
        let cur = r#"
            service S { rpc Get(Req) returns (Res); rpc List(Req) returns (Res); }
            message Req { string id = 1; repeated string tags = 2; bool verbose = 3; }
            message Res { int64 value = 1; Kind kind = 2; map<string, string> attrs = 3; }
            message Extra {}
            enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; KIND_C = 3; }
        "#;
        assert!(rules(BASE, cur).is_empty());
    }

    #[test]
    fn deleting_a_field_without_reserving_it_breaks() {
        let cur = BASE.replace("repeated string tags = 2;", "");
        assert_eq!(rules(BASE, &cur), vec!["field-deleted-without-reserve"]);
        let reserved = BASE.replace("repeated string tags = 2;", "reserved 2; reserved \"tags\";");
        assert!(rules(BASE, &reserved).is_empty());
    }

    #[test]
    fn reusing_a_reserved_number_breaks() {
        let base = BASE.replace("repeated string tags = 2;", "reserved 2; reserved \"tags\";");
        let cur =
            base.replace("reserved 2; reserved \"tags\";", "reserved \"tags\"; string other = 2;");
        assert_eq!(rules(&base, &cur), vec!["reserved-field-number-reused"]);
    }

    #[test]
    fn renaming_a_field_breaks() {
        let cur = BASE.replace("string id = 1;", "string key = 1;");
        assert_eq!(rules(BASE, &cur), vec!["field-renamed"]);
    }

    #[test]
    fn retyping_a_field_breaks() {
        let cur = BASE.replace("int64 value = 1;", "string value = 1;");
        assert_eq!(rules(BASE, &cur), vec!["field-type-changed"]);
    }

    #[test]
    fn changing_cardinality_breaks() {
        let cur = BASE.replace("repeated string tags = 2;", "string tags = 2;");
        assert_eq!(rules(BASE, &cur), vec!["field-cardinality-changed"]);
    }

    #[test]
    fn deleting_an_enum_value_breaks() {
        let cur = BASE.replace("KIND_B = 2;", "");
        assert_eq!(rules(BASE, &cur), vec!["enum-value-deleted"]);
        let reserved = BASE.replace("KIND_B = 2;", "reserved 2; reserved \"KIND_B\";");
        assert!(rules(BASE, &reserved).is_empty());
    }

    #[test]
    fn renaming_an_enum_value_breaks() {
        let cur = BASE.replace("KIND_B = 2;", "KIND_BEE = 2;");
        assert_eq!(rules(BASE, &cur), vec!["enum-value-renamed"]);
    }

    #[test]
    fn removing_an_rpc_or_changing_its_types_breaks() {
        let removed = BASE.replace("rpc Get(Req) returns (Res);", "");
        assert_eq!(rules(BASE, &removed), vec!["rpc-removed"]);
        let retyped = BASE.replace("rpc Get(Req) returns (Res);", "rpc Get(Req) returns (Req);");
        assert_eq!(rules(BASE, &retyped), vec!["rpc-type-changed"]);
        let streaming = BASE.replace("returns (Res)", "returns (stream Res)");
        assert_eq!(rules(BASE, &streaming), vec!["rpc-streaming-changed"]);
    }

    #[test]
    fn removing_a_message_enum_or_service_breaks() {
        let cur = r#"
            message Req { string id = 1; repeated string tags = 2; }
        "#;
        assert_eq!(rules(BASE, cur), vec!["enum-removed", "message-removed", "service-removed"]);
    }
}
