//! What each run made or used (assets, with their lineage) and what each model call cost.

use super::{Database, StoreError, damaged};
use crate::objects::ObjectRef;

/// An object a run made or used.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    /// The object.
    pub object: ObjectRef,
    /// What it is to the run (`scene`, `narration`, `music`, `video`, …).
    pub kind: String,
    /// The scene it belongs to.
    pub scene: Option<u32>,
    /// The generation round that made it.
    pub round: Option<u32>,
}

/// One model call in a run's ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    /// The node that called.
    pub node: String,
    /// The scene, if per scene.
    pub scene: Option<u32>,
    /// What was asked (`image`, `speech`, …).
    pub capability: String,
    /// The model (`provider/model`).
    pub model: String,
    /// What it cost, in US dollars.
    pub usd: f64,
    /// Served from the generation cache.
    pub cached: bool,
}

type AssetTuple = (
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);
type LedgerTuple = (String, Option<i64>, String, String, f64, bool);

fn small(value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| u32::try_from(v).map_err(|e| damaged(e.to_string())))
        .transpose()
}

impl Database {
    /// Records an object of a run (recording it again changes nothing).
    pub async fn record_asset(&self, run: &str, asset: &AssetRow) -> Result<(), StoreError> {
        let size = i64::try_from(asset.object.size).map_err(|e| damaged(e.to_string()))?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO assets (run, object_key, kind, sha256, size, media_type, scene, round) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run, object_key, kind) DO NOTHING",
        )
        .bind(run)
        .bind(&asset.object.key)
        .bind(&asset.kind)
        .bind(&asset.object.sha256)
        .bind(size)
        .bind(&asset.object.media_type)
        .bind(asset.scene.map(i64::from))
        .bind(asset.round.map(i64::from))
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The objects of a run, by kind, scene and key.
    pub async fn assets_of(&self, run: &str) -> Result<Vec<AssetRow>, StoreError> {
        let rows: Vec<AssetTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT object_key, kind, sha256, size, media_type, scene, round FROM assets \
             WHERE run = $1 ORDER BY kind, scene, object_key",
        )
        .bind(run)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(key, kind, sha256, size, media_type, scene, round)| {
                Ok(AssetRow {
                    object: ObjectRef {
                        key,
                        sha256,
                        size: u64::try_from(size).map_err(|e| damaged(e.to_string()))?,
                        media_type,
                    },
                    kind,
                    scene: small(scene)?,
                    round: small(round)?,
                })
            })
            .collect()
    }

    /// Records a run's ledger, in order (recording it again changes nothing).
    pub async fn record_costs(&self, run: &str, entries: &[LedgerRow]) -> Result<(), StoreError> {
        for (position, entry) in entries.iter().enumerate() {
            let position = i64::try_from(position).map_err(|e| damaged(e.to_string()))?;
            on_pool!(self, pool => sqlx::query(
                "INSERT INTO cost_ledger (run, position, node, scene, capability, model, usd, cached) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run, position) DO NOTHING",
            )
            .bind(run)
            .bind(position)
            .bind(&entry.node)
            .bind(entry.scene.map(i64::from))
            .bind(&entry.capability)
            .bind(&entry.model)
            .bind(entry.usd)
            .bind(entry.cached)
            .execute(pool)
            .await
            .map(|_| ()))?;
        }
        Ok(())
    }

    /// A run's ledger, in order.
    pub async fn ledger_of(&self, run: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let rows: Vec<LedgerTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT node, scene, capability, model, usd, cached FROM cost_ledger WHERE run = $1 ORDER BY position",
        )
        .bind(run)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(node, scene, capability, model, usd, cached)| {
                Ok(LedgerRow {
                    node,
                    scene: small(scene)?,
                    capability,
                    model,
                    usd,
                    cached,
                })
            })
            .collect()
    }
}
