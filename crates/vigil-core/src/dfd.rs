//! The data-flow diagram of an artifact: elements named as the artifact names them, the flows
//! between them with the data they carry, the trust zones they sit in and the boundaries that
//! flows cross.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::finding::Evidence;

/// The kind of a diagram element, as in STRIDE-per-element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// Code that runs: services, APIs, workers, clients, devices.
    Process,
    /// Data at rest: databases, queues, buckets, caches, files, logs.
    DataStore,
    /// People and systems outside the design's control.
    ExternalEntity,
    /// A data flow between two elements.
    Flow,
}

impl ElementKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ElementKind::Process => "process",
            ElementKind::DataStore => "data_store",
            ElementKind::ExternalEntity => "external_entity",
            ElementKind::Flow => "flow",
        }
    }
}

impl FromStr for ElementKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "process" => ElementKind::Process,
            "data_store" => ElementKind::DataStore,
            "external_entity" => ElementKind::ExternalEntity,
            "flow" | "data_flow" => ElementKind::Flow,
            other => return Err(Error::UnknownElementKind(other.to_owned())),
        })
    }
}

/// Where an element runs, from the least to the most trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustZone {
    /// Anonymous users and anything on the public internet.
    Internet,
    /// Hardware in the field: phones' peripherals, IoT devices, vehicles.
    Device,
    /// Third-party SaaS and providers the team does not operate.
    ThirdParty,
    /// Partner organisations with a contractual relationship.
    Partner,
    /// Internet-facing edge: gateways, load balancers, CDNs, WAFs.
    Edge,
    /// The organisation's own network and services.
    Internal,
    /// Stores and services holding the most sensitive data.
    Restricted,
}

impl TrustZone {
    /// Every zone, in order of trust.
    pub const ALL: [TrustZone; 7] = [
        TrustZone::Internet,
        TrustZone::Device,
        TrustZone::ThirdParty,
        TrustZone::Partner,
        TrustZone::Edge,
        TrustZone::Internal,
        TrustZone::Restricted,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustZone::Internet => "internet",
            TrustZone::Device => "device",
            TrustZone::ThirdParty => "third_party",
            TrustZone::Partner => "partner",
            TrustZone::Edge => "edge",
            TrustZone::Internal => "internal",
            TrustZone::Restricted => "restricted",
        }
    }

    /// A human label for diagrams.
    pub fn label(self) -> &'static str {
        match self {
            TrustZone::Internet => "Internet",
            TrustZone::Device => "Devices",
            TrustZone::ThirdParty => "Third parties",
            TrustZone::Partner => "Partners",
            TrustZone::Edge => "Edge",
            TrustZone::Internal => "Internal network",
            TrustZone::Restricted => "Restricted data",
        }
    }

    /// Whether the zone is outside the organisation's control.
    pub fn is_untrusted(self) -> bool {
        matches!(
            self,
            TrustZone::Internet | TrustZone::Device | TrustZone::ThirdParty | TrustZone::Partner
        )
    }
}

impl fmt::Display for TrustZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrustZone {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        TrustZone::ALL
            .into_iter()
            .find(|z| z.as_str() == s)
            .ok_or_else(|| Error::UnknownTrustZone(s.to_owned()))
    }
}

/// An element of the diagram: an external entity, a process or a data store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DfdNode {
    /// Diagram-local id (`n1`, `n2`, ...).
    pub id: String,
    /// Name as the artifact writes it.
    pub name: String,
    /// STRIDE element kind.
    pub kind: ElementKind,
    /// Component type from the catalogue lexicon (`database`, `queue`, `api`, `idp`, ...).
    pub component: String,
    /// Trust zone it runs in.
    pub trust_zone: TrustZone,
    /// Whether untrusted callers reach it directly.
    pub entry_point: bool,
    /// Technologies named for it (`postgresql`, `redis`, `kafka`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub technologies: Vec<String>,
    /// Data classes it holds or handles (`personal`, `cardholder`, `credentials`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<String>,
    /// Controls the artifact states for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// Controls the artifact rules out for it ("without TLS", "no rate limit").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_controls: Vec<String>,
    /// Risk signals stated near it ("password in the clear", "any host can connect").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    /// Where the artifact names it; the first is the defining mention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Evidence>,
}

/// A data flow between two elements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFlow {
    /// Diagram-local id (`f1`, `f2`, ...).
    pub id: String,
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// What happens on the flow (`calls`, `stores`, `reads`, `uploads`, `publishes`, ...).
    pub interaction: String,
    /// Data classes carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<String>,
    /// Protocol when stated (`https`, `grpc`, `mqtt`, `bluetooth`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Whether the flow crosses a trust boundary.
    pub crosses_boundary: bool,
    /// The boundary crossed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// Controls stated for the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// Controls ruled out for the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_controls: Vec<String>,
    /// Risk signals stated for the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    /// The sentences that establish the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// A boundary between two trust zones that at least one flow crosses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustBoundary {
    /// Boundary id (`b-internet-edge`, ...).
    pub id: String,
    /// Human name ("Internet / Edge").
    pub name: String,
    /// Less trusted side.
    pub outer: TrustZone,
    /// More trusted side.
    pub inner: TrustZone,
}

/// The whole diagram.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dfd {
    /// Elements.
    pub nodes: Vec<DfdNode>,
    /// Flows.
    pub flows: Vec<DataFlow>,
    /// Boundaries crossed by some flow.
    #[serde(default)]
    pub boundaries: Vec<TrustBoundary>,
    /// Ids of nodes that untrusted callers reach directly.
    #[serde(default)]
    pub entry_points: Vec<String>,
}

impl Dfd {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&DfdNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The flow with this id.
    pub fn flow(&self, id: &str) -> Option<&DataFlow> {
        self.flows.iter().find(|f| f.id == id)
    }

    /// "Source -> Target" for a flow.
    pub fn flow_name(&self, flow: &DataFlow) -> String {
        let name = |id: &str| {
            self.node(id)
                .map_or_else(|| id.to_owned(), |n| n.name.clone())
        };
        format!("{} -> {}", name(&flow.from), name(&flow.to))
    }
}
