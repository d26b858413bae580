//! The versioned job envelope. The handler decodes it itself (the worker hands it the raw
//! bytes), so a malformed payload fails one job instead of stopping the worker.

use serde::{Deserialize, Serialize};

use crate::domain::TouchId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum DispatchJob {
    /// Send these touches (one, or a batch planned for the same instant).
    #[serde(rename = "1")]
    V1 { touches: Vec<TouchId> },
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable dispatch job: {0}")]
pub struct JobError(String);

impl DispatchJob {
    pub fn new(touches: Vec<TouchId>) -> Self {
        Self::V1 { touches }
    }

    pub fn touches(&self) -> &[TouchId] {
        match self {
            Self::V1 { touches } => touches,
        }
    }

    /// The bytes the queue stores: the job as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From the bytes the queue stored.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, JobError> {
        serde_json::from_slice(bytes).map_err(|e| JobError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_rejects_unknown_versions() {
        let job = DispatchJob::new(vec![TouchId::from_stored("birthday:a:2026".into())]);
        let v: serde_json::Value = serde_json::from_slice(&job.encode()).unwrap();
        assert_eq!(v["v"], "1");
        assert_eq!(DispatchJob::decode_bytes(&job.encode()).unwrap(), job);
        assert!(DispatchJob::decode_bytes(br#"{"v": "9", "touches": []}"#).is_err());
        assert!(DispatchJob::decode_bytes(br#""garbage""#).is_err());
        assert!(DispatchJob::decode_bytes(b"\xff not json").is_err());
    }
}
