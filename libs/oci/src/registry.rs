//! Pushing an OCI layout through the distribution API (`go-containerregistry`'s `remote/write.go` order):
//! every blob (`HEAD`, skip when present, else `POST` an upload and one monolithic `PUT ?digest=`), then every
//! image manifest by digest, then the index by tag, last, so the tag never names something incomplete.
//! Pushing again skips every blob and rewrites the same manifests, so a retry is safe.
//!
//! The registry's `Docker-Content-Digest` must equal the sha256 of the bytes sent: a registry that rewrote a
//! manifest would otherwise hand the cluster something other than what was built. Upload `Location`s must stay
//! on the registry's origin (ggcr refuses redirects to other hosts for the same reason: a registry should not
//! steer our bytes elsewhere). Plain http is accepted on loopback only.
//!
//! Every request goes through [`Registry::send`]: a `401` is answered once as its `WWW-Authenticate` challenge
//! asks ([`crate::auth`]: Basic, or a token from the Bearer realm scoped to pull and push the repository),
//! and the request is sent again with the answer, which is kept for the repository's later requests. A token
//! that expires mid-push is refreshed the same way.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Mutex,
    time::Duration,
};

use anyhow::Context;
use reqwest::{RequestBuilder, Response, StatusCode, Url, header, header::HeaderValue};
use serde::Serialize;

use super::{
    auth::{AuthError, Challenge, Credentials, TokenAnswer, sensitive},
    digest::Digest,
    image::{Descriptor, Index, Layout, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest},
};

/// A registry, and the repository prefix images go under (`host:port/prefix/<name>`).
#[derive(Debug)]
pub struct Registry {
    origin: Url,
    prefix: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// The `Authorization` each repository's requests carry once a challenge was answered (`""`: Basic, for
    /// every repository). Values are marked sensitive, so `Debug` shows none.
    authorizations: Mutex<BTreeMap<String, HeaderValue>>,
}

/// The key of a Basic answer in [`Registry::authorizations`]: one login for the whole registry.
const EVERY_REPOSITORY: &str = "";

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// `host[:port]/repository:tag@digest`.
    pub reference: String,
    /// The digest the registry reported for the tag.
    pub digest: Digest,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
}

impl Registry {
    /// `http://127.0.0.1:5000`, `https://registry.example/team` or `127.0.0.1:5000` (http on loopback, https
    /// elsewhere).
    pub fn parse(spec: &str) -> anyhow::Result<Registry> {
        let with_scheme =
            if spec.contains("://") { spec.to_owned() } else { format!("https://{spec}") };
        let mut url =
            Url::parse(&with_scheme).with_context(|| format!("invalid registry `{spec}`"))?;
        let host = url.host_str().with_context(|| format!("registry `{spec}` has no host"))?;
        let loopback = is_loopback(host);
        if !spec.contains("://") && loopback {
            url = Url::parse(&format!("http://{spec}"))?;
        }
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => anyhow::bail!("registry `{spec}`: plain http is only allowed on loopback"),
            other => anyhow::bail!("registry `{spec}`: unsupported scheme {other}"),
        }
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none() && url.query().is_none(),
            "registry `{spec}` must not carry credentials or a query"
        );
        let prefix = url.path().trim_matches('/').to_owned();
        url.set_path("/");
        let http = reqwest::Client::builder()
            .user_agent("hangangjari-xtask")
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            // Redirects are judged by hand (see `location`), never followed blindly.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Registry {
            origin: url,
            prefix,
            http,
            credentials: None,
            authorizations: Mutex::new(BTreeMap::new()),
        })
    }

    /// The credentials to answer challenges with (without them, only anonymous tokens are asked for).
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Registry {
        self.credentials = credentials;
        self
    }

    /// `host[:port]`, as image references spell the registry.
    pub fn host(&self) -> String {
        let host = self.origin.host_str().unwrap_or_default();
        match self.origin.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// `host[:port][/prefix]`: how every image reference of this registry begins, path prefix included
    /// (`127.0.0.1:5000/team/hangangjari`), so references, signatures and provenance name the repositories the
    /// push writes.
    pub fn reference_prefix(&self) -> String {
        if self.prefix.is_empty() {
            self.host()
        } else {
            format!("{}/{}", self.host(), self.prefix)
        }
    }

    /// The repository `name` is pushed to, on the registry (with the path prefix, without the host).
    pub fn repository(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_owned() } else { format!("{}/{name}", self.prefix) }
    }

    /// Pushes what `tag` names in `layout` to the repository `name` under the same tag.
    pub async fn push(&self, layout: &Layout, tag: &str, name: &str) -> anyhow::Result<Pushed> {
        let repository = self.repository(name);
        let top = layout.tagged(tag)?;
        let image_manifests: Vec<Descriptor> = match top.media_type.as_str() {
            MEDIA_TYPE_INDEX => layout.read_json::<Index>(&top, MEDIA_TYPE_INDEX)?.manifests,
            MEDIA_TYPE_MANIFEST => vec![top.clone()],
            other => anyhow::bail!("tag `{tag}` names a {other}"),
        };

        let (mut blobs_uploaded, mut blobs_present) = (0, 0);
        let mut done = BTreeSet::new();
        for descriptor in &image_manifests {
            let manifest: Manifest = layout.read_json(descriptor, MEDIA_TYPE_MANIFEST)?;
            for blob in manifest.layers.iter().chain([&manifest.config]) {
                if !done.insert(blob.digest.clone()) {
                    continue;
                }
                if self.blob_exists(&repository, &blob.digest).await? {
                    blobs_present += 1;
                } else {
                    self.upload_blob(&repository, &blob.digest, layout.read_blob(blob)?).await?;
                    blobs_uploaded += 1;
                }
            }
            // An index's manifests go by digest; the tag comes last, on whatever it names.
            if descriptor.digest != top.digest {
                let bytes = layout.read_blob(descriptor)?;
                self.put_manifest(&repository, descriptor.digest.as_str(), descriptor, bytes)
                    .await?;
            }
        }
        let digest = self.put_manifest(&repository, tag, &top, layout.read_blob(&top)?).await?;
        Ok(Pushed {
            reference: format!("{}/{repository}:{tag}@{digest}", self.host()),
            digest,
            blobs_uploaded,
            blobs_present,
        })
    }

    async fn blob_exists(&self, repository: &str, digest: &Digest) -> anyhow::Result<bool> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let response = self
            .send(repository, self.http.head(url.clone()))
            .await
            .with_context(|| format!("blob {digest}: HEAD {url} failed"))?;
        match response.status() {
            StatusCode::OK => Ok(true),
            // A registry that serves blobs from elsewhere redirects only for blobs it has.
            status if status.is_redirection() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => anyhow::bail!("blob {digest}: HEAD {url} answered {status}"),
        }
    }

    async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> anyhow::Result<()> {
        let start = self.url(&format!("/v2/{repository}/blobs/uploads/"))?;
        let response = self
            .send(repository, self.http.post(start.clone()).header(header::CONTENT_LENGTH, 0))
            .await
            .with_context(|| format!("blob {digest}: POST {start} failed"))?;
        if response.status() != StatusCode::ACCEPTED {
            let status = response.status();
            let body = body_excerpt(response).await;
            anyhow::bail!(
                "blob {digest}: starting the upload (POST {start}) answered {status}: {body}"
            );
        }
        let mut location = self.location(&response).with_context(|| format!("blob {digest}"))?;
        location.query_pairs_mut().append_pair("digest", digest.as_str());

        let size = bytes.len();
        let upload = self
            .http
            .put(location.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size)
            .body(bytes);
        let response = self
            .send(repository, upload)
            .await
            .with_context(|| format!("blob {digest} ({size} bytes): PUT failed"))?;
        let status = response.status();
        if status != StatusCode::CREATED {
            let body = body_excerpt(response).await;
            anyhow::bail!("blob {digest} ({size} bytes): PUT {location} answered {status}: {body}");
        }
        if let Some(reported) = reported_digest(&response)? {
            anyhow::ensure!(
                &reported == digest,
                "blob {digest}: the registry stored it as {reported}"
            );
        }
        Ok(())
    }

    /// PUTs a manifest or index under `reference` (a tag or its digest) and returns the digest the registry
    /// reports, which must be the sha256 of `bytes`.
    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        descriptor: &Descriptor,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Digest> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let sent = Digest::of(&bytes);
        let request = self
            .http
            .put(url.clone())
            .header(header::CONTENT_TYPE, &descriptor.media_type)
            .body(bytes);
        let response = self
            .send(repository, request)
            .await
            .with_context(|| format!("manifest {sent}: PUT {url} failed"))?;
        let status = response.status();
        if !matches!(status, StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED) {
            let body = body_excerpt(response).await;
            anyhow::bail!("manifest {sent}: PUT {url} answered {status}: {body}");
        }
        let reported = reported_digest(&response)?.with_context(|| {
            format!("manifest {sent}: PUT {url} answered without Docker-Content-Digest")
        })?;
        anyhow::ensure!(
            reported == sent,
            "manifest {sent}: PUT {url}: the registry reports {reported} for the bytes sent"
        );
        Ok(reported)
    }

    /// Sends `request` for `repository` with what earlier challenges were answered with; a `401` is answered
    /// (once) and the request sent again. Only a `401` after answering is an authentication failure.
    async fn send(&self, repository: &str, request: RequestBuilder) -> anyhow::Result<Response> {
        // Every body here is bytes in memory, so a request can always be sent twice.
        let again = request.try_clone().context("a request that cannot be resent")?;
        let response = self.authorized(repository, request).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = self.challenge(&response)?;
        self.answer(repository, &challenge).await?;
        let response = self.authorized(repository, again).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let registry = self.host();
        let scheme = challenge.scheme();
        Err(match &self.credentials {
            None => AuthError::Required { registry, scheme },
            Some(credentials) => AuthError::Refused {
                registry,
                username: credentials.username().to_owned(),
                scheme,
                detail: format!("401 after authenticating: {}", body_excerpt(response).await),
            },
        }
        .into())
    }

    fn authorized(&self, repository: &str, request: RequestBuilder) -> RequestBuilder {
        let authorizations =
            self.authorizations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match authorizations.get(repository).or_else(|| authorizations.get(EVERY_REPOSITORY)) {
            Some(value) => request.header(header::AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// The challenge of a `401`, preferring Bearer when a registry offers both.
    fn challenge(&self, response: &Response) -> anyhow::Result<Challenge> {
        let values: Vec<&str> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let challenges: Vec<Challenge> =
            values.iter().filter_map(|v| Challenge::parse(v)).collect();
        let bearer = challenges.iter().find(|c| matches!(c, Challenge::Bearer { .. }));
        match bearer.or(challenges.first()) {
            Some(challenge) => Ok(challenge.clone()),
            None => {
                Err(AuthError::Unanswerable { registry: self.host(), header: values.join(", ") }
                    .into())
            }
        }
    }

    /// Answers `challenge` for `repository` and keeps the answer for its next requests.
    async fn answer(&self, repository: &str, challenge: &Challenge) -> anyhow::Result<()> {
        let (key, value) = match challenge {
            Challenge::Basic => {
                let credentials = self.credentials.as_ref().ok_or_else(|| AuthError::Required {
                    registry: self.host(),
                    scheme: challenge.scheme(),
                })?;
                (EVERY_REPOSITORY, credentials.basic_authorization())
            }
            Challenge::Bearer { realm, service, scope } => {
                let token =
                    self.token(repository, realm, service.as_deref(), scope.as_deref()).await?;
                let value = sensitive(&format!("Bearer {token}")).map_err(|_| {
                    anyhow::anyhow!(
                        "registry {}: the token service sent a token that is not header text",
                        self.host()
                    )
                })?;
                (repository, value)
            }
        };
        self.authorizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.to_owned(), value);
        Ok(())
    }

    /// A token from the Bearer `realm` for what the challenge named and for pushing `repository` (asked for
    /// up front, so the first `HEAD`'s pull-only challenge does not cost a second token), with the
    /// credentials as Basic auth when there are any.
    async fn token(
        &self,
        repository: &str,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> anyhow::Result<String> {
        let registry = self.host();
        let mut url = Url::parse(realm).with_context(|| {
            format!("registry {registry}: the token realm `{realm}` is not a URL")
        })?;
        let realm_host = url.host_str().unwrap_or_default();
        anyhow::ensure!(
            url.scheme() == "https" || (url.scheme() == "http" && is_loopback(realm_host)),
            "registry {registry}: the token realm {realm} is not https (credentials go there)"
        );
        let push_scope = format!("repository:{repository}:pull,push");
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope.filter(|scope| *scope != push_scope) {
                query.append_pair("scope", scope);
            }
            query.append_pair("scope", &push_scope);
        }
        let mut request = self.http.get(url.clone());
        if let Some(credentials) = &self.credentials {
            request = request.header(header::AUTHORIZATION, credentials.basic_authorization());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("registry {registry}: the token service {realm} failed"))?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let detail =
                format!("the token service answered {status}: {}", body_excerpt(response).await);
            return Err(match &self.credentials {
                None => AuthError::Required { registry, scheme: "Bearer" },
                Some(credentials) => AuthError::Refused {
                    registry,
                    username: credentials.username().to_owned(),
                    scheme: "Bearer",
                    detail,
                },
            }
            .into());
        }
        if !status.is_success() {
            let body = body_excerpt(response).await;
            return Err(AuthError::TokenService {
                registry,
                realm: realm.to_owned(),
                status,
                body,
            }
            .into());
        }
        let answer: TokenAnswer = response.json().await.with_context(|| {
            format!("registry {registry}: the token service {realm} sent no JSON")
        })?;
        answer.into_token().with_context(|| {
            format!("registry {registry}: the token service {realm} sent neither `token` nor `access_token`")
        })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(self.origin.join(path)?)
    }

    /// The upload `Location`, resolved against the registry and required to stay on its origin.
    fn location(&self, response: &reqwest::Response) -> anyhow::Result<Url> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .context("the upload answer has no Location")?
            .to_str()
            .context("the upload Location is not text")?;
        let url = self.origin.join(location)?;
        anyhow::ensure!(
            url.origin() == self.origin.origin(),
            "the registry sent the upload to another origin: {url}"
        );
        Ok(url)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn reported_digest(response: &reqwest::Response) -> anyhow::Result<Option<Digest>> {
    let Some(value) = response.headers().get("docker-content-digest") else { return Ok(None) };
    let text = value.to_str().context("Docker-Content-Digest is not text")?;
    Ok(Some(Digest::parse(text).context("invalid Docker-Content-Digest")?))
}

/// The start of an error answer: registries explain themselves in a JSON body.
async fn body_excerpt(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    let body = body.trim();
    match body.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None if body.is_empty() => "(no body)".to_owned(),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::Registry;

    #[test]
    fn parses_registry_urls() {
        let registry = Registry::parse("127.0.0.1:5000").unwrap();
        assert_eq!(
            (registry.origin.as_str(), registry.host()),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000".to_owned())
        );
        assert_eq!(registry.repository("hangang-api"), "hangang-api");
        assert_eq!(registry.reference_prefix(), "127.0.0.1:5000");

        let registry = Registry::parse("https://registry.example/team/").unwrap();
        assert_eq!(registry.host(), "registry.example");
        assert_eq!(registry.repository("hangang-api"), "team/hangang-api");
        assert_eq!(registry.reference_prefix(), "registry.example/team");
        let registry = Registry::parse("127.0.0.1:5000/team/hangangjari").unwrap();
        assert_eq!(registry.reference_prefix(), "127.0.0.1:5000/team/hangangjari");

        assert!(Registry::parse("http://registry.example").is_err(), "plain http off loopback");
        assert!(Registry::parse("https://user:secret@registry.example").is_err());
        assert!(Registry::parse("ftp://127.0.0.1").is_err());
    }
}
