//! gRPC types and clients/servers between services, generated from `contracts/proto/` by
//! `cargo xtask codegen` (protox + tonic-prost-build, no system `protoc`). Do not edit `gen/` by hand.

#![allow(clippy::all, missing_debug_implementations, unreachable_pub)]

/// The encoded `FileDescriptorSet` of every `.proto` file, for gRPC reflection and the breaking-change check.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/descriptor.binpb");

pub mod forecast {
    pub mod v1 {
        include!("gen/hangang.forecast.v1.rs");
    }
}

pub mod ingest {
    pub mod v1 {
        include!("gen/hangang.ingest.v1.rs");
    }
}

pub mod push {
    pub mod v1 {
        include!("gen/hangang.push.v1.rs");
    }
}
