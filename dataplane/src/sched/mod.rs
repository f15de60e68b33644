//! IPVS schedulers (placeholder, being written).
