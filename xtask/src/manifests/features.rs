//! The features file of each overlay (`kustomize/overlays/<env>/features.toml`): read with the api's own types
//! (`features::Features`, so what passes here is what the api will accept), and found in the rendered
//! `hangang-features` ConfigMap exactly as committed, which is how it reaches the deploy repository and the
//! api's volume.

use serde_json::Value;

/// The ConfigMap the overlays generate from the file, and its key (the file name the api is given).
pub const CONFIG_MAP: &str = "hangang-features";
pub const KEY: &str = "features.toml";

/// Every problem with `environment`'s features file and its rendering, each naming the file or object.
pub fn check(environment: &str, objects: &[Value]) -> Vec<String> {
    let path = crate::project_root().join("kustomize/overlays").join(environment).join(KEY);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => return vec![format!("{}: cannot be read: {error}", path.display())],
    };
    let mut problems = Vec::new();
    if let Err(error) = features::Features::parse(&text) {
        problems.push(format!("{}: {error}", path.display()));
    }
    let rendered = objects
        .iter()
        .find(|object| object["kind"] == "ConfigMap" && object["metadata"]["name"] == CONFIG_MAP);
    match rendered {
        None => problems.push(format!(
            "ConfigMap/{CONFIG_MAP}: not rendered (the overlay's configMapGenerator)"
        )),
        Some(config_map) if config_map["data"][KEY].as_str() != Some(text.as_str()) => problems
            .push(format!("ConfigMap/{CONFIG_MAP}: `{KEY}` differs from {}", path.display())),
        Some(_) => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_committed_files_are_valid_and_must_be_rendered() {
        for environment in super::super::ENVIRONMENTS {
            let path = crate::project_root().join("kustomize/overlays").join(environment).join(KEY);
            let text = std::fs::read_to_string(&path).unwrap();
            let rendered = json!({
                "kind": "ConfigMap",
                "metadata": {"name": CONFIG_MAP},
                "data": {KEY: text},
            });
            assert_eq!(check(environment, &[rendered]), Vec::<String>::new(), "{environment}");
            let problems = check(environment, &[]);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("not rendered"), "{problems:?}");
            let stale = json!({
                "kind": "ConfigMap",
                "metadata": {"name": CONFIG_MAP},
                "data": {KEY: "minimum_supported_build = \"1\"\n"},
            });
            let problems = check(environment, &[stale]);
            assert!(problems.len() == 1 && problems[0].contains("differs"), "{problems:?}");
        }
    }
}
