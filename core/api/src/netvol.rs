//! `/networks/...` and `/volumes/...`: thin wrappers over the engine's network and
//! volume methods (the rules live there, shared with the CLI).

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use berth_engine::{networks::NetworkCreateOptions, volumes::VolumeCreateOptions, Filters};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    containers::qbool,
    create_map::Fields,
    error::{ApiError, ApiResult},
    server::AppState,
};

fn to_json<T: serde::Serialize>(v: &T) -> ApiResult<Json<Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

fn body_json(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

#[derive(Deserialize)]
pub struct FilterQuery {
    filters: Option<String>,
}

fn filters(q: &FilterQuery) -> ApiResult<Filters> {
    Ok(Filters::from_json(q.filters.as_deref().unwrap_or(""))?)
}

pub async fn network_list(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    st.blocking(move |engine| to_json(&engine.list_networks(&f)?))
        .await
}

pub async fn network_inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    st.blocking(move |engine| to_json(&engine.inspect_network(&id)?))
        .await
}

pub async fn network_create(State(st): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let mut b = Fields::new("", Some(body_json(&body)?))?;
    let name = b
        .string("Name")?
        .ok_or_else(|| ApiError::bad_request("Name: the network name is required"))?;
    let driver = b.string("Driver")?.unwrap_or_default();
    let internal = b.bool("Internal")?;
    let labels = b.string_map("Labels")?;
    let (mut subnet, mut gateway) = (None, None);
    let mut ipam = Fields::new("IPAM.", b.take("IPAM"))?;
    ipam.one_of("Driver", &["default"])?;
    if let Some(Value::Array(cfgs)) = ipam.take("Config") {
        if cfgs.len() > 1 {
            return Err(ApiError::bad_request(
                "IPAM.Config: berth networks have one subnet",
            ));
        }
        for c in cfgs {
            let mut c = Fields::new("IPAM.Config[].", Some(c))?;
            subnet = c.string("Subnet")?;
            gateway = c.string("Gateway")?;
            c.finish()?;
        }
    }
    ipam.ignore(&["Options"]);
    ipam.finish()?;
    // Always true for dockerd since 1.44; attachable/ingress are swarm's.
    b.ignore(&["CheckDuplicate", "Attachable", "Scope"]);
    b.finish()?;
    let o = NetworkCreateOptions {
        name,
        driver,
        subnet,
        gateway,
        internal,
        labels,
    };
    st.blocking(move |engine| {
        let n = engine.create_network(&o)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": n.id, "Warning": ""})),
        )
            .into_response())
    })
    .await
}

pub async fn network_remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.blocking(move |engine| {
        engine.remove_network(&id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

pub async fn network_prune(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    st.blocking(move |engine| to_json(&engine.prune_networks(&f)?))
        .await
}

pub async fn network_connect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut b = Fields::new("", Some(body_json(&body)?))?;
    let ctr = b
        .string("Container")?
        .ok_or_else(|| ApiError::bad_request("Container: the container is required"))?;
    let mut ep = Fields::new("EndpointConfig.", b.take("EndpointConfig"))?;
    let aliases = ep.strings("Aliases")?.unwrap_or_default();
    ep.ignore(&["NetworkID", "EndpointID", "DriverOpts"]);
    ep.finish()?;
    b.finish()?;
    st.blocking(move |engine| {
        let net = engine.inspect_network(&id)?;
        let name = net.name.unwrap_or(id);
        let rec = engine.db()?.resolve(&ctr)?;
        engine.connect(&rec, &name, &aliases)?;
        Ok(StatusCode::OK.into_response())
    })
    .await
}

pub async fn network_disconnect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut b = Fields::new("", Some(body_json(&body)?))?;
    let ctr = b
        .string("Container")?
        .ok_or_else(|| ApiError::bad_request("Container: the container is required"))?;
    b.ignore(&["Force"]);
    b.finish()?;
    st.blocking(move |engine| {
        let net = engine.inspect_network(&id)?;
        let name = net.name.unwrap_or(id);
        let rec = engine.db()?.resolve(&ctr)?;
        engine.disconnect(&rec, &name)?;
        Ok(StatusCode::OK.into_response())
    })
    .await
}

pub async fn volume_list(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    st.blocking(move |engine| {
        let list = engine.list_volumes(&f)?;
        Ok(Json(json!({"Volumes": list, "Warnings": []})))
    })
    .await
}

pub async fn volume_create(State(st): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let mut b = Fields::new("", Some(body_json(&body)?))?;
    let o = VolumeCreateOptions {
        name: b.string("Name")?,
        driver: b.string("Driver")?.unwrap_or_default(),
        driver_opts: b.string_map("DriverOpts")?,
        labels: b.string_map("Labels")?,
    };
    b.finish()?;
    st.blocking(move |engine| {
        let v = engine.create_volume(&o)?;
        Ok((StatusCode::CREATED, to_json(&v)?).into_response())
    })
    .await
}

pub async fn volume_inspect(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    st.blocking(move |engine| to_json(&engine.inspect_volume(&name)?))
        .await
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    force: Option<String>,
}

pub async fn volume_remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Response> {
    st.blocking(move |engine| {
        engine.remove_volume(&name, qbool(&q.force))?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

pub async fn volume_prune(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    st.blocking(move |engine| to_json(&engine.prune_volumes(false, &f)?))
        .await
}
