//! Read-only accessors over one rendered Kubernetes object, so the policies read like the rules they check.

use serde_json::Value;

/// One object of a rendered manifest stream.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    value: &'a Value,
}

/// One container (or init container) of a pod template, with the pod-level settings it inherits.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    pub value: &'a Value,
    pub pod: &'a Value,
}

impl<'a> Object<'a> {
    pub fn new(value: &'a Value) -> Self {
        Object { value }
    }

    pub fn value(&self) -> &'a Value {
        self.value
    }

    pub fn kind(&self) -> &'a str {
        self.value["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &'a str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    /// `Kind/name`, how every message names the object.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.value["metadata"]["annotations"][key].as_str()
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.value["metadata"]["labels"][key].as_str()
    }

    /// The component an object belongs to: its `app.kubernetes.io/name` label, else its name (PDBs, HPAs and
    /// Ingresses are named after the workload they serve).
    pub fn component(&self) -> &'a str {
        self.label("app.kubernetes.io/name").unwrap_or_else(|| self.name())
    }

    pub fn is_workload(&self) -> bool {
        matches!(self.kind(), "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob")
    }

    /// Long-running workloads (probed, gracefully terminated); Jobs run to completion.
    pub fn is_long_running(&self) -> bool {
        matches!(self.kind(), "Deployment" | "StatefulSet" | "DaemonSet")
    }

    /// The pod template's `metadata` and `spec`, for workloads.
    pub fn pod_template(&self) -> Option<&'a Value> {
        let template = match self.kind() {
            "CronJob" => &self.value["spec"]["jobTemplate"]["spec"]["template"],
            _ if self.is_workload() => &self.value["spec"]["template"],
            _ => return None,
        };
        template.is_object().then_some(template)
    }

    pub fn pod_spec(&self) -> Option<&'a Value> {
        self.pod_template().map(|template| &template["spec"])
    }

    /// Every container and init container of the pod template.
    pub fn containers(&self) -> Vec<Container<'a>> {
        let Some(pod) = self.pod_spec() else { return Vec::new() };
        ["initContainers", "containers"]
            .iter()
            .filter_map(|key| pod[key].as_array())
            .flatten()
            .map(|value| Container { value, pod })
            .collect()
    }
}

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        self.value["name"].as_str().unwrap_or("")
    }

    pub fn image(&self) -> &'a str {
        self.value["image"].as_str().unwrap_or("")
    }

    /// A security setting from the container, falling back to the pod's (as the kubelet resolves it).
    pub fn security(&self, key: &str) -> &'a Value {
        let own = &self.value["securityContext"][key];
        if own.is_null() { &self.pod["securityContext"][key] } else { own }
    }

    /// Whether `port` (a number or a port name) is one of the container's declared ports.
    pub fn declares_port(&self, port: &Value) -> bool {
        let ports = self.value["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
        ports.iter().any(|declared| match port {
            Value::String(name) => declared["name"].as_str() == Some(name),
            Value::Number(number) => declared["containerPort"].as_u64() == number.as_u64(),
            _ => false,
        })
    }

    /// The environment variable `name`, as written in the manifest.
    pub fn env(&self, name: &str) -> Option<&'a Value> {
        self.value["env"].as_array()?.iter().find(|var| var["name"].as_str() == Some(name))
    }
}
