//! [`Client`]: one method per contract function, typed requests and responses, over any
//! [`Ledger`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{
    Config, ConfigUpdate, Counts, ErrorCode, Function, HeadEndRecord, HeadEndView, KeyHash,
    MAX_PAGE_SIZE, MAX_PROVISION, MdmsRecord, MdmsView, MeterRecord, MeterView, MetersPage,
    MetersRequest, ProvisionEntry, ProvisionResponse, ReadingsPage, ReadingsRequest, RejectReason,
    Request, ResponseMismatch, SubmitResponse,
};
use bcami_sdk::session::HeadEndIdentity;
use bcami_sdk::{HeadEndPublicKey, Hid, MdmsPublicKey, MeterPublicKey};
use serde::de::DeserializeOwned;

use crate::ledger::{Caller, Ledger, LedgerError, Outcome, Rejection};

/// Why a call failed, by the stage that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The contract was not reached, or its transaction did not commit.
    #[error("{function}: {source}")]
    Ledger {
        /// The function called.
        function: Function,
        /// The ledger's error.
        source: LedgerError,
    },
    /// The contract refused the call (status, code and message kept).
    #[error("{function}: {rejection}")]
    Refused {
        /// The function called.
        function: Function,
        /// The refusal.
        rejection: Rejection,
    },
    /// The contract answered something that is not the documented response.
    #[error("{function} returned an unexpected response: {detail}")]
    Response {
        /// The function called.
        function: Function,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    /// The contract's refusal, if it refused.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Refused { rejection, .. } => Some(rejection),
            _ => None,
        }
    }

    /// The contract's error code, if it refused with one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.rejection().and_then(|r| r.code)
    }
}

/// The contract's functions as typed calls on a ledger.
#[derive(Debug)]
pub struct Client<'a, L: ?Sized> {
    ledger: &'a L,
}

impl<L: ?Sized> Clone for Client<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L: ?Sized> Copy for Client<'_, L> {}

/// A meter as the ledger knows it, keys decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterKeys {
    /// The current key, once registered.
    pub public_key: Option<MeterPublicKey>,
    /// Every key the meter has had (after rotations), oldest first.
    pub keys: Vec<MeterPublicKey>,
}

impl<'a, L: Ledger + ?Sized> Client<'a, L> {
    /// Calls on `ledger`.
    pub fn new(ledger: &'a L) -> Self {
        Self { ledger }
    }

    /// The ledger.
    pub fn ledger(&self) -> &'a L {
        self.ledger
    }

    /// Runs `request` as `caller` (submitted, or evaluated for queries): the contract's outcome.
    pub async fn outcome(&self, caller: Caller, request: &Request<'_>) -> Result<Outcome, Error> {
        let function = request.function();
        let args = request.args();
        let result = if function.is_query() {
            self.ledger.evaluate(caller, function, args).await
        } else {
            self.ledger.submit(caller, function, args).await
        };
        result.map_err(|source| Error::Ledger { function, source })
    }

    /// Runs `request` as `caller`: the response bytes, or the refusal as an error.
    pub async fn call(&self, caller: Caller, request: &Request<'_>) -> Result<Vec<u8>, Error> {
        let function = request.function();
        self.outcome(caller, request)
            .await?
            .map_err(|rejection| Error::Refused {
                function,
                rejection,
            })
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        caller: Caller,
        request: &Request<'_>,
    ) -> Result<T, Error> {
        let bytes = self.call(caller, request).await?;
        parse(request.function(), &bytes)
    }

    /// `Configure`: the configuration after the update.
    pub async fn configure(&self, caller: Caller, update: &ConfigUpdate) -> Result<Config, Error> {
        self.json(caller, &Request::Configure(update)).await
    }

    /// `GetConfig`.
    pub async fn config(&self, caller: Caller) -> Result<Config, Error> {
        self.json(caller, &Request::GetConfig).await
    }

    /// `ProvisionMeters`, one call (at most [`MAX_PROVISION`] entries).
    pub async fn provision_meters(
        &self,
        caller: Caller,
        meters: &[ProvisionEntry],
    ) -> Result<ProvisionResponse, Error> {
        self.json(caller, &Request::ProvisionMeters(meters)).await
    }

    /// Provisions meters as the administrator in calls of at most [`MAX_PROVISION`], each bound
    /// to the hash of the key it was made with ("at manufacture"): only that key can then
    /// register the meter, so a concentrator cannot register it first with a key of its own.
    pub async fn provision_bound_meters(
        &self,
        meters: &[(Hid, MeterPublicKey)],
    ) -> Result<(), Error> {
        for chunk in meters.chunks(MAX_PROVISION) {
            let entries: Vec<ProvisionEntry> = chunk
                .iter()
                .map(|(hid, key)| ProvisionEntry::Bound {
                    hid: *hid,
                    key_hash: KeyHash::of_meter_key(key),
                })
                .collect();
            self.provision_meters(Caller::Administrator, &entries)
                .await?;
        }
        Ok(())
    }

    /// `ProvisionMdms`.
    pub async fn provision_mdms(
        &self,
        caller: Caller,
        entry: ProvisionEntry,
    ) -> Result<MdmsRecord, Error> {
        self.json(caller, &Request::ProvisionMdms(entry)).await
    }

    /// Provisions the MDMS as the administrator, bound to the hash of its key.
    pub async fn provision_bound_mdms(
        &self,
        hid: Hid,
        key: &MdmsPublicKey,
    ) -> Result<MdmsRecord, Error> {
        let entry = ProvisionEntry::Bound {
            hid,
            key_hash: KeyHash::of_mdms_key(key),
        };
        self.provision_mdms(Caller::Administrator, entry).await
    }

    /// `RegisterMeter` with an encoded `RegistrationRequest`: the meter record.
    pub async fn register_meter(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<MeterRecord, Error> {
        self.json(caller, &Request::RegisterMeter(request)).await
    }

    /// `RegisterMdmsKey` with an encoded `MdmsRegistrationRequest`: the MDMS record.
    pub async fn register_mdms_key(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<MdmsRecord, Error> {
        self.json(caller, &Request::RegisterMdmsKey(request)).await
    }

    /// `RotateMeterKey` with an encoded `KeyRotationRequest`: the meter record.
    pub async fn rotate_meter_key(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<MeterRecord, Error> {
        self.json(caller, &Request::RotateMeterKey(request)).await
    }

    /// `RotateMdmsKey` with the new key's encoded `MdmsRegistrationRequest`: the MDMS record.
    pub async fn rotate_mdms_key(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<MdmsRecord, Error> {
        self.json(caller, &Request::RotateMdmsKey(request)).await
    }

    /// `RevokeMeter`: the meter record.
    pub async fn revoke_meter(&self, caller: Caller, hid: Hid) -> Result<MeterRecord, Error> {
        self.json(caller, &Request::RevokeMeter(hid)).await
    }

    /// `SubmitReadings` of encoded reading transactions: per reading, `None` if it was stored,
    /// else why not.
    pub async fn submit_readings(
        &self,
        caller: Caller,
        readings: &[Vec<u8>],
    ) -> Result<Vec<Option<RejectReason>>, Error> {
        let response: SubmitResponse = self
            .json(caller, &Request::SubmitReadings(readings))
            .await?;
        reasons(&response, readings.len())
    }

    /// `GetMeter`.
    pub async fn meter(&self, caller: Caller, hid: Hid) -> Result<MeterView, Error> {
        self.json(caller, &Request::GetMeter(hid)).await
    }

    /// `GetMeter`'s keys; `None` if the HID is not provisioned.
    pub async fn meter_keys(&self, caller: Caller, hid: Hid) -> Result<Option<MeterKeys>, Error> {
        match self.meter(caller, hid).await {
            Ok(view) => Ok(Some(MeterKeys {
                public_key: view.meter.public_key,
                keys: view.keys.iter().map(|k| k.public_key).collect(),
            })),
            Err(e) if e.code() == Some(ErrorCode::UnknownMeter) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GetMdmsKey`.
    pub async fn mdms_key(&self, caller: Caller) -> Result<MdmsView, Error> {
        self.json(caller, &Request::GetMdmsKey).await
    }

    /// The MDMS's current key and its version (1 once registered, +1 per rotation); `None`
    /// if no MDMS key is registered.
    pub async fn current_mdms_key(
        &self,
        caller: Caller,
    ) -> Result<Option<(MdmsPublicKey, u32)>, Error> {
        match self.mdms_key(caller).await {
            Ok(view) => {
                let version = view.record.current_key_version();
                Ok(view.record.public_key.map(|key| (key, version)))
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMdms | ErrorCode::MdmsNotRegistered)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `GetReadings`: one page.
    pub async fn readings_page(
        &self,
        caller: Caller,
        query: &ReadingsRequest,
    ) -> Result<ReadingsPage, Error> {
        self.json(caller, &Request::GetReadings(query)).await
    }

    /// Every committed reading of a meter with `from <= timestamp < to` (as the MDMS), following
    /// the bookmarks: the raw transactions, in time order.
    pub async fn readings(&self, hid: Hid, from: u64, to: u64) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        let mut query = ReadingsRequest {
            hid,
            from: Some(from),
            to: Some(to),
            page_size: Some(MAX_PAGE_SIZE),
            bookmark: String::new(),
        };
        loop {
            let page = self.readings_page(Caller::Mdms, &query).await?;
            for reading in page.readings {
                out.push(
                    STANDARD
                        .decode(&reading.reading)
                        .map_err(|_| Error::Response {
                            function: Function::GetReadings,
                            detail: "a reading that is not base64".into(),
                        })?,
                );
            }
            if page.bookmark.is_empty() || page.bookmark == query.bookmark {
                break;
            }
            query.bookmark = page.bookmark;
        }
        Ok(out)
    }

    /// `ListMeters`: one page.
    pub async fn meters_page(
        &self,
        caller: Caller,
        query: &MetersRequest,
    ) -> Result<MetersPage, Error> {
        self.json(caller, &Request::ListMeters(query)).await
    }

    /// Every provisioned meter's HID (as the MDMS), following the bookmarks.
    pub async fn meter_hids(&self) -> Result<Vec<Hid>, Error> {
        let mut out = Vec::new();
        let mut query = MetersRequest {
            page_size: Some(MAX_PAGE_SIZE),
            bookmark: String::new(),
        };
        loop {
            let page = self.meters_page(Caller::Mdms, &query).await?;
            out.extend(page.meters.iter().map(|m| m.hid));
            if page.bookmark.is_empty() || page.bookmark == query.bookmark {
                break;
            }
            query.bookmark = page.bookmark;
        }
        Ok(out)
    }

    /// `GetCounts`.
    pub async fn counts(&self, caller: Caller) -> Result<Counts, Error> {
        self.json(caller, &Request::GetCounts).await
    }

    // The AMI head-end.

    /// `ProvisionHeadEnd`.
    pub async fn provision_head_end(
        &self,
        caller: Caller,
        entry: ProvisionEntry,
    ) -> Result<HeadEndRecord, Error> {
        self.json(caller, &Request::ProvisionHeadEnd(entry)).await
    }

    /// Provisions the head-end as the administrator, bound to the hash of its key.
    pub async fn provision_bound_head_end(
        &self,
        hid: Hid,
        key: &HeadEndPublicKey,
    ) -> Result<HeadEndRecord, Error> {
        let entry = ProvisionEntry::Bound {
            hid,
            key_hash: KeyHash::of_service_key(key),
        };
        self.provision_head_end(Caller::Administrator, entry).await
    }

    /// `RegisterHeadEndKey` with an encoded `HeadEndRegistrationRequest`: the head-end record.
    pub async fn register_head_end_key(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<HeadEndRecord, Error> {
        self.json(caller, &Request::RegisterHeadEndKey(request))
            .await
    }

    /// `GetHeadEnd`.
    pub async fn head_end(&self, caller: Caller) -> Result<HeadEndView, Error> {
        self.json(caller, &Request::GetHeadEnd).await
    }

    /// The head-end as a meter must know it for a session (its HID and current key) and the
    /// key's version; `None` if no head-end key is registered.
    pub async fn head_end_identity(
        &self,
        caller: Caller,
    ) -> Result<Option<(HeadEndIdentity, u32)>, Error> {
        match self.head_end(caller).await {
            Ok(view) => {
                let version = view.record.current_key_version();
                Ok(view.record.public_key.map(|public_key| {
                    (
                        HeadEndIdentity {
                            id: view.record.hid,
                            public_key,
                        },
                        version,
                    )
                }))
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownHeadEnd | ErrorCode::HeadEndNotRegistered)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `RotateHeadEndKey` with the new key's encoded `HeadEndRegistrationRequest`: the head-end
    /// record.
    pub async fn rotate_head_end_key(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<HeadEndRecord, Error> {
        self.json(caller, &Request::RotateHeadEndKey(request)).await
    }
}

fn parse<T: DeserializeOwned>(function: Function, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Response {
        function,
        detail: e.to_string(),
    })
}

/// One entry per reading of an `expected`-reading batch: `None` if stored, else why not.
pub fn reasons(
    response: &SubmitResponse,
    expected: usize,
) -> Result<Vec<Option<RejectReason>>, Error> {
    let outcomes = response
        .outcomes(expected)
        .map_err(|e: ResponseMismatch| Error::Response {
            function: Function::SubmitReadings,
            detail: e.to_string(),
        })?;
    Ok(outcomes.into_iter().map(|o| o.reason()).collect())
}
