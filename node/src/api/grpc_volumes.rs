//! gRPC face of the volume catalog (`stratus.quorum.Volumes`): filled in by the catalog work.
