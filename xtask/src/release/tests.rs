//! End-to-end checks of the image path: reproducibility across directories and file metadata, `fsck`, and a
//! push to Debian's `docker-registry` read back by `skopeo` and `umoci` (independent readers), pushes to a
//! `docker-registry` that wants Basic credentials (htpasswd) or Bearer tokens (a token service beside it),
//! plus the error answers of an in-process fake registry.

use std::{
    collections::BTreeMap,
    net::TcpStream,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use xshell::{Shell, cmd};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use oci::{
    auth::{AuthError, Credentials},
    image::{Layout, MEDIA_TYPE_INDEX, Written},
    layer,
    registry::Registry,
};

use super::{IMAGE_USER, ReleaseMeta, assemble};

/// What the tests put in place of a service binary: assembly never looks inside it.
pub(super) const PRETEND_BINARY: &[u8] = b"#!/bin/sh\necho pretend hangang-api\n";

pub(super) fn meta() -> ReleaseMeta {
    ReleaseMeta {
        release_id: "2026.11.27-1".to_owned(),
        commit: "c974e611bd51d9b122fadf2e8bb3b5a73def019f".to_owned(),
        source_date_epoch: 1_795_785_629,
        source: Some("https://git.hangangjari.app/hangangjari/backend.git".to_owned()),
    }
}

/// Writes the pretend binary under `dir` with the given mode and mtime, assembles its image into
/// `dir/layout` and checks the layout.
pub(super) fn assemble_in(dir: &Path, mode: u32, mtime: SystemTime) -> (Written, PathBuf) {
    let meta = meta();
    let binary = dir.join("input/hangang-api");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::write(&binary, PRETEND_BINARY).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::File::options().write(true).open(&binary).unwrap().set_modified(mtime).unwrap();
    let base = layer::base(meta.source_date_epoch).unwrap();
    let layout = dir.join("layout");
    let written = assemble("hangang-api", &binary, &meta, &base, &layout).unwrap();
    let fsck = Layout::open(&layout).unwrap().fsck().unwrap();
    assert_eq!((fsck.blobs, fsck.images), (5, 1), "2 layers, config, manifest, index");
    (written, layout)
}

/// Every file of a directory tree, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// A umask reaches an image only through the metadata of the files it reads (the binary's mode) and writes
/// (the layout's), and a checkout's path and times through the rest: vary them all and expect the same bytes.
/// (std has no safe way to change the umask itself, and the workspace forbids `unsafe`.)
#[test]
fn same_inputs_give_identical_layouts_anywhere() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::Builder::new().prefix("elsewhere-").tempdir().unwrap();
    let (first, first_layout) =
        assemble_in(first_dir.path(), 0o700, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    let (second, second_layout) = assemble_in(second_dir.path(), 0o775, SystemTime::now());
    std::fs::set_permissions(&second_layout, std::fs::Permissions::from_mode(0o750)).unwrap();

    assert_eq!(first.index, second.index);
    assert_eq!(first.manifest, second.manifest);
    assert_eq!(first.config, second.config);
    assert_eq!(first.layers, second.layers);
    assert_eq!(tree(&first_layout), tree(&second_layout));

    // Assembling again over an existing layout replaces it with the same bytes.
    let (again, _) = assemble_in(first_dir.path(), 0o644, SystemTime::now());
    assert_eq!(again.index, first.index);
    assert_eq!(tree(&first_layout), tree(&second_layout));
}

#[test]
fn layout_is_complete_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let (written, layout_dir) = assemble_in(dir.path(), 0o755, SystemTime::now());
    let layout = Layout::open(&layout_dir).unwrap();

    let tagged = layout.tagged("2026.11.27-1").unwrap();
    assert_eq!(
        (tagged.media_type.as_str(), &tagged.digest),
        (MEDIA_TYPE_INDEX, &written.index.digest)
    );
    assert_eq!(
        std::fs::read_to_string(layout_dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let platform = written.manifest.platform.as_ref().unwrap();
    assert_eq!((platform.architecture.as_str(), platform.os.as_str()), ("amd64", "linux"));

    let config: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&written.config).unwrap()).unwrap();
    assert_eq!(config["created"], "2026-11-27T13:20:29Z");
    assert_eq!(config["config"]["User"], IMAGE_USER);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/app/hangang-api"]));
    assert_eq!(config["config"]["Env"], serde_json::json!(["PATH=/app"]));
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], meta().commit);
    assert_eq!(labels["org.opencontainers.image.version"], "2026.11.27-1");
    assert_eq!(labels["app.hangangjari.release-id"], "2026.11.27-1");
    assert_eq!(config["history"][1]["created"], "2026-11-27T13:20:29Z");

    // The base layer is the same blob whatever the binary.
    assert_eq!(written.layers[0].digest, layer::base(meta().source_date_epoch).unwrap().digest);
    let app = layer::entries(&layout.read_blob(&written.layers[1]).unwrap()).unwrap();
    assert_eq!(app[1].path, "app/hangang-api");
    assert_eq!(
        (app[1].mode, app[1].mtime, &app[1].contents[..]),
        (0o755, 1_795_785_629, PRETEND_BINARY)
    );
}

#[test]
fn fsck_finds_corrupt_missing_and_stray_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (written, layout_dir) = assemble_in(dir.path(), 0o755, SystemTime::now());
    let blob = |digest: &super::Digest| layout_dir.join("blobs/sha256").join(digest.hex());
    let fsck = || format!("{:#}", Layout::open(&layout_dir).unwrap().fsck().unwrap_err());

    let app_layer = blob(&written.layers[1].digest);
    let original = std::fs::read(&app_layer).unwrap();
    std::fs::write(&app_layer, b"tampered").unwrap();
    assert!(
        fsck().contains(&format!("blob {} does not hash to its name", written.layers[1].digest))
    );

    std::fs::remove_file(&app_layer).unwrap();
    assert!(fsck().contains(&format!("blob {} is missing", written.layers[1].digest)));
    std::fs::write(&app_layer, original).unwrap();

    std::fs::write(layout_dir.join("blobs/sha256/notahash"), b"").unwrap();
    assert!(fsck().contains("unexpected blobs/sha256/notahash"));
}

/// Debian's `docker-registry` on a free loopback port, with its storage in a temporary directory; killed on
/// drop.
pub(super) struct LocalRegistry {
    child: Child,
    pub(super) address: String,
    log: PathBuf,
}

impl LocalRegistry {
    pub(super) fn start(dir: &Path) -> LocalRegistry {
        LocalRegistry::start_with(dir, "")
    }

    /// The registry with `auth` (the `auth:` section of its configuration, YAML) in force.
    pub(super) fn start_with(dir: &Path, auth: &str) -> LocalRegistry {
        require_tools(&["docker-registry"]);
        // Bind, read the port, release it: a small race with other processes, acceptable in a test.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {address}\n{auth}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("docker-registry is installed (checked by require_tools)");
        let mut registry = LocalRegistry { child, address, log };
        let started = Instant::now();
        while TcpStream::connect(&registry.address).is_err() {
            let exited = registry.child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > Duration::from_secs(15) {
                panic!("docker-registry did not start: {}", registry.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test, naming the package, when a tool it drives is not installed.
fn require_tools(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let package = match *tool {
            "htpasswd" => "apache2-utils",
            other => other,
        };
        assert!(
            std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()),
            "{tool} is missing: apt-get install -y --no-install-recommends {package} (.ci/run does this)"
        );
    }
}

/// Pushes a layout to a real registry, twice, and reads the result back with two independent clients.
#[test]
fn push_to_docker_registry_then_read_back_with_skopeo_and_umoci() {
    let sh = Shell::new().unwrap();
    require_tools(&["docker-registry", "skopeo", "umoci"]);
    let work = tempfile::tempdir().unwrap();
    let (written, layout_dir) = assemble_in(work.path(), 0o755, SystemTime::now());
    let local = LocalRegistry::start(work.path());
    let registry = Registry::parse(&local.address).unwrap();
    let layout = Layout::open(&layout_dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let tag = "2026.11.27-1";
    let pushed = runtime
        .block_on(registry.push(&layout, tag, "hangang-api"))
        .unwrap_or_else(|error| panic!("{error:#}\nregistry log:\n{}", local.log()));
    assert_eq!(pushed.digest, written.index.digest);
    assert_eq!((pushed.blobs_uploaded, pushed.blobs_present), (3, 0));
    assert_eq!(
        pushed.reference,
        format!("{}/hangang-api:{tag}@{}", local.address, written.index.digest)
    );
    let again = runtime.block_on(registry.push(&layout, tag, "hangang-api")).unwrap();
    assert_eq!((again.digest, again.blobs_uploaded, again.blobs_present), (pushed.digest, 0, 3));

    // skopeo reads the registry and the layout, and both give the same config.
    let remote = format!("docker://{}/hangang-api:{tag}", local.address);
    let inspect: serde_json::Value = serde_json::from_str(
        &cmd!(sh, "skopeo inspect --tls-verify=false {remote}").read().unwrap(),
    )
    .unwrap();
    assert_eq!(inspect["Labels"]["org.opencontainers.image.version"], tag);
    assert_eq!(
        (inspect["Architecture"].as_str(), inspect["Os"].as_str()),
        (Some("amd64"), Some("linux"))
    );
    let raw = cmd!(sh, "skopeo inspect --raw --tls-verify=false {remote}").read().unwrap();
    assert_eq!(super::Digest::of(raw.as_bytes()), written.index.digest);
    let remote_config: serde_json::Value = serde_json::from_str(
        &cmd!(sh, "skopeo inspect --config --tls-verify=false {remote}").read().unwrap(),
    )
    .unwrap();
    let local_ref = format!("oci:{}:{tag}", layout_dir.display());
    let local_config: serde_json::Value =
        serde_json::from_str(&cmd!(sh, "skopeo inspect --config {local_ref}").read().unwrap())
            .unwrap();
    assert_eq!(remote_config, local_config);
    assert_eq!(remote_config["config"]["User"], IMAGE_USER);
    assert_eq!(remote_config["config"]["Entrypoint"], serde_json::json!(["/app/hangang-api"]));

    // umoci unpacks the layout as a runtime would: owners, modes and the process to run.
    let bundle = work.path().join("bundle");
    let image = format!("{}:{tag}", layout_dir.display());
    cmd!(sh, "umoci --log error unpack --rootless --image {image} {bundle}").run().unwrap();
    let mode = |path: &str| {
        std::fs::symlink_metadata(bundle.join("rootfs").join(path)).unwrap().permissions().mode()
            & 0o7777
    };
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("app/hangang-api"), 0o755);
    assert_eq!(mode("home/nonroot"), 0o700);
    assert_eq!(std::fs::read(bundle.join("rootfs/app/hangang-api")).unwrap(), PRETEND_BINARY);
    let runtime_config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let process = &runtime_config["process"];
    assert_eq!(
        (process["user"]["uid"].as_u64(), process["user"]["gid"].as_u64()),
        (Some(65532), Some(65532))
    );
    assert_eq!(process["args"], serde_json::json!(["/app/hangang-api"]));
    assert!(process["env"].as_array().unwrap().iter().any(|env| env == "PATH=/app"));
}

mod fake {
    //! A registry that answers one way, to check the errors a push reports.

    use axum::{
        Router,
        http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
        response::IntoResponse,
    };

    #[derive(Debug, Clone, Copy)]
    pub enum Behaviour {
        /// Knows no blob and fails every upload with a 500.
        RefusesUploads,
        /// Sends uploads to another host.
        RedirectsUploads,
        /// Has every blob, and reports another digest for every manifest.
        RewritesManifests,
    }

    /// Serves `behaviour` on a loopback port until the runtime ends; returns `host:port`.
    pub async fn start(behaviour: Behaviour) -> String {
        let app = Router::new().fallback(move |method: Method, uri: Uri| async move {
            answer(behaviour, &method, &uri)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    }

    fn answer(behaviour: Behaviour, method: &Method, uri: &Uri) -> axum::response::Response {
        let path = uri.path();
        let mut headers = HeaderMap::new();
        match (behaviour, method.as_str()) {
            (Behaviour::RewritesManifests, "HEAD") => StatusCode::OK.into_response(),
            (_, "HEAD") => StatusCode::NOT_FOUND.into_response(),
            (Behaviour::RefusesUploads, "POST") => {
                (StatusCode::INTERNAL_SERVER_ERROR, r#"{"errors":[{"code":"UNKNOWN"}]}"#)
                    .into_response()
            }
            (Behaviour::RedirectsUploads, "POST") => {
                headers.insert("location", HeaderValue::from_static("http://192.0.2.1/upload/1"));
                (StatusCode::ACCEPTED, headers).into_response()
            }
            (Behaviour::RewritesManifests, "PUT") if path.contains("/manifests/") => {
                let other = crate::release::Digest::of(b"something else");
                headers.insert(
                    "docker-content-digest",
                    HeaderValue::from_str(other.as_str()).unwrap(),
                );
                (StatusCode::CREATED, headers).into_response()
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        }
    }
}

#[tokio::test]
async fn push_errors_name_the_blob_and_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (written, layout_dir) = assemble_in(dir.path(), 0o755, SystemTime::now());
    let layout = Layout::open(&layout_dir).unwrap();
    let push = |address: String| {
        let layout = &layout;
        async move {
            let registry = Registry::parse(&address).unwrap();
            format!("{:#}", registry.push(layout, "2026.11.27-1", "hangang-api").await.unwrap_err())
        }
    };
    let base = &written.layers[0].digest;

    let error = push(fake::start(fake::Behaviour::RefusesUploads).await).await;
    assert!(error.contains(&format!("blob {base}")), "{error}");
    assert!(error.contains("500 Internal Server Error"), "{error}");
    assert!(error.contains("UNKNOWN"), "{error}");

    let error = push(fake::start(fake::Behaviour::RedirectsUploads).await).await;
    assert!(error.contains(&format!("blob {base}")), "{error}");
    assert!(error.contains("another origin: http://192.0.2.1/upload/1"), "{error}");

    let error = push(fake::start(fake::Behaviour::RewritesManifests).await).await;
    assert!(error.contains(&format!("manifest {}", written.manifest.digest)), "{error}");
    assert!(error.contains("the registry reports"), "{error}");
}

/// The authentication error a push ended with, wherever in its context chain.
fn auth_error(error: &anyhow::Error) -> &AuthError {
    error
        .downcast_ref::<AuthError>()
        .unwrap_or_else(|| panic!("not an authentication error: {error:#}"))
}

/// docker-registry with htpasswd (bcrypt) auth answers every request `401` with a Basic challenge: a push with
/// the credentials a `docker login` would have left in config.json succeeds; without credentials, or with a
/// wrong password, it fails saying which registry wants what, and never prints the password.
#[test]
fn push_to_a_registry_that_wants_basic_credentials() {
    require_tools(&["docker-registry", "htpasswd", "skopeo"]);
    let sh = Shell::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let password = "correct horse battery staple";
    let entry = cmd!(sh, "htpasswd -nbB minji {password}").read().unwrap();
    let htpasswd = work.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{entry}\n")).unwrap();
    let local = LocalRegistry::start_with(
        work.path(),
        &format!(
            "auth:\n  htpasswd:\n    realm: hangangjari-test\n    path: {}\n",
            htpasswd.display()
        ),
    );
    let (written, layout_dir) = assemble_in(work.path(), 0o755, SystemTime::now());
    let layout = Layout::open(&layout_dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let spec = format!("{}/team", local.address);
    let tag = "2026.11.27-1";

    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        serde_json::json!({"auths": {&local.address: {"auth": BASE64.encode(format!("minji:{password}"))}}})
            .to_string(),
    )
    .unwrap();
    let docker_config = docker_config.display().to_string();
    let found = Credentials::lookup(&local.address, |name| {
        (name == "DOCKER_CONFIG").then(|| docker_config.clone())
    })
    .unwrap()
    .expect("the docker config has an entry for the registry");
    let registry = Registry::parse(&spec).unwrap().with_credentials(Some(found.credentials));
    assert!(!format!("{registry:?}").contains(password), "{registry:?}");
    let pushed = runtime
        .block_on(registry.push(&layout, tag, "hangang-api"))
        .unwrap_or_else(|error| panic!("{error:#}\nregistry log:\n{}", local.log()));
    assert_eq!(pushed.digest, written.index.digest);
    assert!(!format!("{registry:?}").contains(&BASE64.encode(format!("minji:{password}"))));

    // The registry really wants the login: skopeo reads the image with it and is refused without it.
    let remote = format!("docker://{}/team/hangang-api:{tag}", local.address);
    let login = format!("minji:{password}");
    let raw = cmd!(sh, "skopeo inspect --raw --tls-verify=false --creds {login} {remote}")
        .read()
        .unwrap();
    assert_eq!(super::Digest::of(raw.as_bytes()), written.index.digest);
    assert!(
        cmd!(sh, "skopeo inspect --raw --tls-verify=false --no-creds {remote}")
            .quiet()
            .ignore_stderr()
            .read()
            .is_err()
    );

    let anonymous = Registry::parse(&spec).unwrap();
    let error = runtime.block_on(anonymous.push(&layout, tag, "hangang-api")).unwrap_err();
    assert!(
        matches!(auth_error(&error), AuthError::Required { registry, scheme: "Basic" } if *registry == local.address),
        "{error:#}"
    );
    let message = format!("{error:#}");
    assert!(
        message.contains(&format!("registry {} requires authentication", local.address)),
        "{message}"
    );
    assert!(message.contains("REGISTRY_USERNAME and REGISTRY_PASSWORD"), "{message}");

    let wrong = Registry::parse(&spec)
        .unwrap()
        .with_credentials(Some(Credentials::new("minji", "not-the-password")));
    let error = runtime.block_on(wrong.push(&layout, tag, "hangang-api")).unwrap_err();
    assert!(
        matches!(auth_error(&error), AuthError::Refused { username, .. } if username == "minji"),
        "{error:#}"
    );
    assert!(!format!("{error:#} {error:?}").contains("not-the-password"), "{error:#}");
}

mod token_service {
    //! The token half of the distribution spec's Bearer flow, as GHCR, Harbor or Docker Hub run it beside
    //! their registry: `GET /token?service=…&scope=…` with Basic credentials answers a JWT that
    //! docker-registry (`auth: token`) verifies against the certificate it is configured to trust. Signed
    //! with openssl (RS256), so the test needs no JWT library.

    use std::{
        path::{Path, PathBuf},
        process::Command,
        sync::{Arc, Mutex},
        time::{SystemTime, UNIX_EPOCH},
    };

    use axum::{
        Json, Router,
        extract::{RawQuery, State},
        http::{HeaderMap, StatusCode},
        response::{IntoResponse, Response},
        routing::get,
    };
    use base64::{
        Engine as _,
        engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL},
    };

    pub const SERVICE: &str = "hangangjari-test-registry";
    pub const ISSUER: &str = "hangangjari-test-issuer";

    /// One token request: the scopes asked for, and whether credentials came along.
    pub type Request = (Vec<String>, bool);

    /// Every token request the service answered, in order.
    #[derive(Clone, Debug, Default)]
    pub struct Requests(pub Arc<Mutex<Vec<Request>>>);

    #[derive(Clone)]
    struct Service {
        key: PathBuf,
        certificate_der: Vec<u8>,
        authorization: String,
        requests: Requests,
    }

    /// A signing key and its self-signed certificate in `dir` (`token.key`, `token.crt`, the registry's
    /// `rootcertbundle`).
    pub fn key_and_certificate(dir: &Path) -> PathBuf {
        let (key, certificate) = (dir.join("token.key"), dir.join("token.crt"));
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=hangangjari-test-token-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl could not make the token key");
        certificate
    }

    /// Serves the token endpoint for `username:password` on a loopback port; returns its realm URL.
    pub async fn start(dir: &Path, username: &str, password: &str, requests: Requests) -> String {
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("token.crt"))
            .output()
            .unwrap();
        assert!(der.status.success());
        let service = Service {
            key: dir.join("token.key"),
            certificate_der: der.stdout,
            authorization: format!("Basic {}", BASE64.encode(format!("{username}:{password}"))),
            requests,
        };
        let app = Router::new().route("/token", get(token)).with_state(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/token")
    }

    async fn token(
        State(service): State<Service>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> Response {
        let query = query.unwrap_or_default();
        let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{query}"))
            .unwrap()
            .query_pairs()
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let scopes: Vec<String> = pairs
            .iter()
            .filter(|(key, _)| key == "scope")
            .map(|(_, value)| value.clone())
            .collect();
        let sent = headers.get("authorization").and_then(|value| value.to_str().ok());
        service.requests.0.lock().unwrap().push((scopes.clone(), sent.is_some()));
        if sent != Some(service.authorization.as_str()) {
            return (StatusCode::UNAUTHORIZED, r#"{"details":"incorrect username or password"}"#)
                .into_response();
        }
        if !pairs.iter().any(|(key, value)| key == "service" && value == SERVICE) {
            return (StatusCode::BAD_REQUEST, "unknown service").into_response();
        }
        let jwt = tokio::task::spawn_blocking(move || sign(&service, &scopes)).await.unwrap();
        // OAuth2's field name, which the spec allows instead of `token`.
        Json(serde_json::json!({"access_token": jwt, "expires_in": 300})).into_response()
    }

    /// A JWT granting every requested `repository:<name>:<actions>` scope.
    fn sign(service: &Service, scopes: &[String]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name,
                                         "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256",
                                         "x5c": [BASE64.encode(&service.certificate_der)]});
        let claims = serde_json::json!({"iss": ISSUER, "sub": "minji", "aud": SERVICE,
                                         "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                                         "jti": format!("{now}-{}", access.len()), "access": access});
        let signing_input = format!(
            "{}.{}",
            BASE64URL.encode(header.to_string()),
            BASE64URL.encode(claims.to_string())
        );
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&service.key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        openssl.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
        let signature = openssl.wait_with_output().unwrap();
        assert!(signature.status.success(), "openssl could not sign the token");
        format!("{signing_input}.{}", BASE64URL.encode(signature.stdout))
    }
}

/// docker-registry with token auth challenges `Bearer realm=…,service=…,scope=…`: the push fetches a token
/// from the realm with its credentials (asking for pull and push on the repository it writes, path prefix
/// included), keeps it for that repository and succeeds; anonymous, the token service refuses and the push
/// says authentication is required.
#[tokio::test]
async fn push_through_the_bearer_token_flow() {
    require_tools(&["docker-registry", "openssl"]);
    let work = tempfile::tempdir().unwrap();
    let certificate = token_service::key_and_certificate(work.path());
    let requests = token_service::Requests::default();
    let realm = token_service::start(work.path(), "minji", "s3cret", requests.clone()).await;
    let local = LocalRegistry::start_with(
        work.path(),
        &format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            token_service::SERVICE,
            token_service::ISSUER,
            certificate.display()
        ),
    );
    let (written, layout_dir) = assemble_in(work.path(), 0o755, SystemTime::now());
    let layout = Layout::open(&layout_dir).unwrap();
    let spec = format!("{}/team/hangangjari", local.address);

    let registry =
        Registry::parse(&spec).unwrap().with_credentials(Some(Credentials::new("minji", "s3cret")));
    let pushed = registry
        .push(&layout, "2026.11.27-1", "hangang-api")
        .await
        .unwrap_or_else(|error| panic!("{error:#}\nregistry log:\n{}", local.log()));
    assert_eq!(pushed.digest, written.index.digest);
    assert_eq!(
        pushed.reference,
        format!(
            "{}/team/hangangjari/hangang-api:2026.11.27-1@{}",
            local.address, written.index.digest
        )
    );
    let asked = requests.0.lock().unwrap().clone();
    assert_eq!(
        asked,
        // The first HEAD's challenge names pull only; the push scope is asked for with it, so one token
        // serves every request of the push.
        vec![(
            vec![
                "repository:team/hangangjari/hangang-api:pull".to_owned(),
                "repository:team/hangangjari/hangang-api:pull,push".to_owned()
            ],
            true
        )]
    );

    let anonymous = Registry::parse(&spec).unwrap();
    let error = anonymous.push(&layout, "2026.11.27-1", "hangang-api").await.unwrap_err();
    assert!(
        matches!(auth_error(&error), AuthError::Required { registry, scheme: "Bearer" } if *registry == local.address),
        "{error:#}"
    );
    assert!(
        format!("{error:#}")
            .contains(&format!("registry {} requires authentication", local.address)),
        "{error:#}"
    );
}
