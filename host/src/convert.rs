//! Between the shared indicator types and the contract's generated ones.

use enrichbox_indicator::{HashAlgorithm as Algorithm, Indicator as Parsed, Kind};

use crate::bindings::{FileHash, HashAlgorithm, Indicator, IndicatorKind};

pub fn wit_kind(kind: Kind) -> IndicatorKind {
    match kind {
        Kind::Ip => IndicatorKind::Ip,
        Kind::Domain => IndicatorKind::Domain,
        Kind::Url => IndicatorKind::Url,
        Kind::Hash => IndicatorKind::Hash,
    }
}

pub fn kind_from_wit(kind: IndicatorKind) -> Kind {
    match kind {
        IndicatorKind::Ip => Kind::Ip,
        IndicatorKind::Domain => Kind::Domain,
        IndicatorKind::Url => Kind::Url,
        IndicatorKind::Hash => Kind::Hash,
    }
}

pub fn wit_indicator(indicator: &Parsed) -> Indicator {
    match indicator {
        Parsed::Ip(ip) => Indicator::Ip(ip.to_string()),
        Parsed::Domain(d) => Indicator::Domain(d.clone()),
        Parsed::Url(u) => Indicator::Url(u.clone()),
        Parsed::Hash { algorithm, value } => Indicator::Hash(FileHash {
            algorithm: match algorithm {
                Algorithm::Md5 => HashAlgorithm::Md5,
                Algorithm::Sha1 => HashAlgorithm::Sha1,
                Algorithm::Sha256 => HashAlgorithm::Sha256,
            },
            value: value.clone(),
        }),
    }
}

pub fn serialize_kind<S: serde::Serializer>(kind: &Kind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}
