//! `meter-sim tx ...`: offline message building for the `peer` CLI. Each command prints one plain
//! string (hex or base64) on stdout; keys stay in the state folder.

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bcami_sdk::{
    IntervalLength, KeyRotationRequest, MdmsPublicKey, MdmsRegistrationRequest, MdmsSecretKey,
    MeterSecretKey, QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport,
    WattHours,
};
use rand_core::OsRng;

use crate::state::{DeviceId, Mdms, Meter, StateDir};
use crate::usage;

/// What `tx` was asked to do, validated.
#[derive(Debug)]
pub enum TxCommand {
    /// Print the HID of an ID.
    Hid { id: DeviceId },
    /// Make (or keep) a meter's device key.
    Keygen { meter: DeviceId },
    /// Build a meter registration.
    Register {
        meter: DeviceId,
        timestamp: Option<Timestamp>,
    },
    /// Build a key rotation and switch the stored key to the new one.
    Rotate {
        meter: DeviceId,
        timestamp: Option<Timestamp>,
    },
    /// Make (or keep) the MDMS key.
    MdmsKeygen { mdms: DeviceId },
    /// Build the MDMS key registration.
    MdmsRegister {
        mdms: DeviceId,
        timestamp: Option<Timestamp>,
    },
    /// Build one reading.
    Reading(ReadingArgs),
    /// Decrypt one reading as the MDMS.
    Decrypt { reading: Vec<u8> },
}

/// Arguments of `tx reading`.
#[derive(Debug)]
pub struct ReadingArgs {
    /// The meter.
    pub meter: DeviceId,
    /// Header timestamp; now if absent.
    pub timestamp: Option<Timestamp>,
    /// Energy in the interval.
    pub energy: WattHours,
    /// Interval start; the interval that ended at the timestamp (rounded down) if absent.
    pub interval_start: Option<Timestamp>,
    /// Interval length.
    pub interval: IntervalLength,
    /// Register value; the stored register plus `energy` if absent.
    pub cumulative: Option<WattHours>,
    /// Quality flags.
    pub quality: QualityFlags,
    /// Encrypt to this key instead of the state folder's MDMS.
    pub mdms_public_key: Option<MdmsPublicKey>,
}

/// Runs one `tx` command; returns what to print.
pub fn execute(state: &StateDir, command: TxCommand, now: Timestamp) -> Result<String> {
    match command {
        TxCommand::Hid { id } => Ok(id.hid().to_string()),
        TxCommand::Keygen { meter } => keygen(state, meter),
        TxCommand::Register { meter, timestamp } => register(state, &meter, timestamp, now),
        TxCommand::Rotate { meter, timestamp } => rotate(state, &meter, timestamp, now),
        TxCommand::MdmsKeygen { mdms } => mdms_keygen(state, mdms),
        TxCommand::MdmsRegister { mdms, timestamp } => mdms_register(state, &mdms, timestamp, now),
        TxCommand::Reading(args) => reading(state, args, now),
        TxCommand::Decrypt { reading } => decrypt(state, &reading),
    }
}

/// `tx keygen`: the meter's public key (made if the folder has none).
fn keygen(state: &StateDir, meter: DeviceId) -> Result<String> {
    let meter = match state.meter(&meter)? {
        Some(existing) => {
            eprintln!(
                "meter {} already has a key in {}; keeping it",
                existing.id,
                state.root().display()
            );
            existing
        }
        None => {
            let key = MeterSecretKey::generate(&mut OsRng)
                .map_err(|e| anyhow!("key generation failed: {e}"))?;
            let meter = Meter::new(meter, key);
            state.save_meter(&meter)?;
            meter
        }
    };
    Ok(hex::encode(meter.key.public_key().to_bytes()))
}

/// `tx register`: the meter's registration request, base64.
fn register(
    state: &StateDir,
    meter: &DeviceId,
    timestamp: Option<Timestamp>,
    now: Timestamp,
) -> Result<String> {
    let mut meter = load_meter(state, meter)?;
    let timestamp = stamp(&mut meter.last_timestamp_ms, timestamp, now);
    let request = RegistrationRequest::build(&meter.key, meter.hid, timestamp)
        .map_err(|e| anyhow!("cannot build registration: {e}"))?;
    state.save_meter(&meter)?;
    Ok(BASE64.encode(request.encode()))
}

/// `tx rotate`: a key rotation request to a new key (kept as the meter's), base64.
fn rotate(
    state: &StateDir,
    meter: &DeviceId,
    timestamp: Option<Timestamp>,
    now: Timestamp,
) -> Result<String> {
    let mut meter = load_meter(state, meter)?;
    let timestamp = stamp(&mut meter.last_timestamp_ms, timestamp, now);
    let new_key =
        MeterSecretKey::generate(&mut OsRng).map_err(|e| anyhow!("key generation failed: {e}"))?;
    let request = KeyRotationRequest::build(&meter.key, &new_key, meter.hid, timestamp)
        .map_err(|e| anyhow!("cannot build key rotation: {e}"))?;
    meter.key = new_key;
    state.save_meter(&meter)?;
    Ok(BASE64.encode(request.encode()))
}

/// `tx mdms-keygen`: the MDMS's public key (made if the folder has none).
fn mdms_keygen(state: &StateDir, mdms: DeviceId) -> Result<String> {
    let mdms = match state.mdms()? {
        Some(existing) if existing.id == mdms => {
            eprintln!(
                "MDMS {} already has a key in {}; keeping it",
                existing.id,
                state.root().display()
            );
            existing
        }
        Some(existing) => {
            return Err(usage(format!(
                "{} already holds MDMS {}; use another --state for MDMS {mdms}",
                state.root().display(),
                existing.id
            )));
        }
        None => {
            let key = MdmsSecretKey::generate(&mut OsRng)
                .map_err(|e| anyhow!("key generation failed: {e}"))?;
            let mdms = Mdms::new(mdms, key);
            state.save_mdms(&mdms)?;
            mdms
        }
    };
    Ok(hex::encode(mdms.public_key().to_bytes()))
}

/// `tx mdms-register`: the MDMS's key registration request, base64.
fn mdms_register(
    state: &StateDir,
    mdms: &DeviceId,
    timestamp: Option<Timestamp>,
    now: Timestamp,
) -> Result<String> {
    let mut stored = load_mdms(state)?;
    if stored.id != *mdms {
        return Err(usage(format!(
            "{} holds MDMS {}, not {mdms}",
            state.root().display(),
            stored.id
        )));
    }
    let timestamp = stamp(&mut stored.last_timestamp_ms, timestamp, now);
    let request = MdmsRegistrationRequest::build(&stored.key, stored.hid, timestamp)
        .map_err(|e| anyhow!("cannot build MDMS registration: {e}"))?;
    state.save_mdms(&stored)?;
    Ok(BASE64.encode(request.encode()))
}

/// `tx reading`: a signed, encrypted reading, base64.
fn reading(state: &StateDir, args: ReadingArgs, now: Timestamp) -> Result<String> {
    let mut meter = load_meter(state, &args.meter)?;
    let mdms_key = match args.mdms_public_key {
        Some(key) => key,
        None => load_mdms(state)
            .context("no --mdms-public-key given")?
            .public_key(),
    };
    let timestamp = stamp(&mut meter.last_timestamp_ms, args.timestamp, now);
    let interval_ms = u64::from(args.interval.seconds()) * 1000;
    let interval_start = args.interval_start.unwrap_or_else(|| {
        let end = timestamp.unix_millis() - timestamp.unix_millis() % interval_ms;
        Timestamp::from_unix_millis(end.saturating_sub(interval_ms))
    });
    let cumulative = args
        .cumulative
        .unwrap_or(WattHours(meter.cumulative_wh.saturating_add(args.energy.0)));
    let report = UsageReport {
        interval_start,
        interval_length: args.interval,
        energy: args.energy,
        cumulative_register: cumulative,
        quality: args.quality,
    };
    let reading = Transaction::build(
        &mut OsRng, &meter.key, meter.hid, timestamp, &report, &mdms_key,
    )
    .map_err(|e| anyhow!("cannot build reading: {e}"))?;
    meter.cumulative_wh = cumulative.0;
    state.save_meter(&meter)?;
    Ok(BASE64.encode(reading.encode()))
}

/// `tx decrypt`: the reading's header and report as JSON, decrypted with the MDMS keyring.
fn decrypt(state: &StateDir, reading: &[u8]) -> Result<String> {
    let mdms = load_mdms(state)?;
    let tx = Transaction::decode(reading)
        .map_err(|e| usage(format!("not a reading transaction: {e}")))?;
    let report = crate::mdms::decrypt_any(&tx, &mdms.keyring())
        .map_err(|e| anyhow!("cannot decrypt: {e}"))?;
    Ok(serde_json::json!({
        "hid": tx.hid().to_string(),
        "timestamp_ms": tx.timestamp().unix_millis(),
        "interval_start_ms": report.interval_start.unix_millis(),
        "interval_s": report.interval_length.seconds(),
        "energy_wh": report.energy.0,
        "cumulative_wh": report.cumulative_register.0,
        "quality": report.quality.bits(),
    })
    .to_string())
}

/// The given timestamp, or the next one after the last the device used (never earlier than now).
fn stamp(last_ms: &mut u64, given: Option<Timestamp>, now: Timestamp) -> Timestamp {
    let timestamp = given.unwrap_or_else(|| {
        Timestamp::from_unix_millis(now.unix_millis().max(last_ms.saturating_add(1)))
    });
    *last_ms = (*last_ms).max(timestamp.unix_millis());
    timestamp
}

fn load_meter(state: &StateDir, id: &DeviceId) -> Result<Meter> {
    state.meter(id)?.ok_or_else(|| {
        usage(format!(
            "no key for meter {id} in {}; run `meter-sim tx keygen --meter-id {id}` first",
            state.root().display()
        ))
    })
}

fn load_mdms(state: &StateDir) -> Result<Mdms> {
    state.mdms()?.ok_or_else(|| {
        usage(format!(
            "no MDMS key in {}; run `meter-sim tx mdms-keygen` first",
            state.root().display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_sdk::MeterPublicKey;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    #[test]
    fn keygen_register_reading_decrypt_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let id: DeviceId = "SM-7".parse().unwrap();
        let public = execute(&state, TxCommand::Keygen { meter: id.clone() }, now()).unwrap();
        // keygen is idempotent: the key is kept.
        let again = execute(&state, TxCommand::Keygen { meter: id.clone() }, now()).unwrap();
        assert_eq!(public, again);
        let mdms_public = execute(
            &state,
            TxCommand::MdmsKeygen {
                mdms: "MDMS-1".parse().unwrap(),
            },
            now(),
        )
        .unwrap();

        let registration = execute(
            &state,
            TxCommand::Register {
                meter: id.clone(),
                timestamp: None,
            },
            now(),
        )
        .unwrap();
        let registration =
            RegistrationRequest::decode(&BASE64.decode(registration).unwrap()).unwrap();
        registration.verify().unwrap();
        assert_eq!(registration.hid(), id.hid());
        assert_eq!(registration.timestamp(), now());
        assert_eq!(
            hex::encode(registration.public_key().to_bytes()),
            public,
            "registration carries the stored key"
        );

        let reading = execute(
            &state,
            TxCommand::Reading(ReadingArgs {
                meter: id.clone(),
                timestamp: None,
                energy: WattHours(250),
                interval_start: None,
                interval: IntervalLength::HALF_HOUR,
                cumulative: None,
                quality: QualityFlags::NONE,
                mdms_public_key: None,
            }),
            now(),
        )
        .unwrap();
        let tx = Transaction::decode(&BASE64.decode(&reading).unwrap()).unwrap();
        let key = MeterPublicKey::from_sec1_bytes(&hex::decode(&public).unwrap()).unwrap();
        tx.verify(&key).unwrap();
        // Same `now`, so the meter moves 1 ms past its registration.
        assert_eq!(tx.timestamp().unix_millis(), now().unix_millis() + 1);

        let decrypted = execute(
            &state,
            TxCommand::Decrypt {
                reading: BASE64.decode(&reading).unwrap(),
            },
            now(),
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(&decrypted).unwrap();
        assert_eq!(json["energy_wh"], 250);
        assert_eq!(json["cumulative_wh"], 250);
        assert_eq!(json["interval_s"], 1800);
        // The interval that ended at the last half-hour boundary before the timestamp.
        assert_eq!(json["interval_start_ms"], 1_699_997_400_000u64);
        assert!(!mdms_public.is_empty());
    }

    #[test]
    fn missing_keys_are_usage_errors_that_say_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let err = execute(
            &state,
            TxCommand::Register {
                meter: "SM-1".parse().unwrap(),
                timestamp: None,
            },
            now(),
        )
        .unwrap_err();
        assert!(err.is::<crate::UsageError>());
        assert!(format!("{err:#}").contains("tx keygen --meter-id SM-1"));
    }

    #[test]
    fn rotation_switches_the_stored_key() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let id: DeviceId = "SM-2".parse().unwrap();
        let old = execute(&state, TxCommand::Keygen { meter: id.clone() }, now()).unwrap();
        let rotation = execute(
            &state,
            TxCommand::Rotate {
                meter: id.clone(),
                timestamp: Some(Timestamp::from_unix_millis(5)),
            },
            now(),
        )
        .unwrap();
        let rotation = KeyRotationRequest::decode(&BASE64.decode(rotation).unwrap()).unwrap();
        let old_key = MeterPublicKey::from_sec1_bytes(&hex::decode(old).unwrap()).unwrap();
        rotation.verify(&old_key).unwrap();
        let stored = state.meter(&id).unwrap().unwrap();
        assert_eq!(&stored.key.public_key(), rotation.new_public_key());
    }
}
