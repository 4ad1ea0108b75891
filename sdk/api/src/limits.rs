//! The contract's limits: what one call may carry. Clients size their calls by these.

/// Most readings in one `SubmitReadings` call.
pub const MAX_BATCH: usize = 1_000;
/// Most HIDs in one `ProvisionMeters` call.
pub const MAX_PROVISION: usize = 1_000;
/// Largest reading transaction accepted, in bytes (a v1 reading is 188).
pub const MAX_READING_BYTES: usize = 1_024;
/// Largest `SubmitReadings` argument, in bytes (1,000 base64 readings of the maximum size fit).
pub const MAX_BATCH_ARG_BYTES: usize = 2 * 1024 * 1024;
/// Largest page of `GetReadings` / `ListMeters`.
pub const MAX_PAGE_SIZE: u32 = 1_000;
/// Page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Longest MSP id accepted in the configuration.
pub const MAX_MSP_ID_LEN: usize = 256;
/// Most rules per role in the configuration.
pub const MAX_ROLE_RULES: usize = 16;
/// Base64 length of a reading of [`MAX_READING_BYTES`]; also the longest base64 argument of the
/// registration-type functions.
pub const MAX_READING_BASE64: usize = MAX_READING_BYTES.div_ceil(3) * 4;
