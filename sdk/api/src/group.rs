//! The group-keys interface (issue 13: MLS, RFC 9420, with the channel as Delivery Service):
//! arguments, records, responses and limits of the group functions. The MLS messages (key
//! packages, GroupInfo, commits, Welcomes) travel as base64 and are opaque here: the contract
//! checks them with `bcami-group`'s observer, so that clients need not link `mls-rs` to call.
//!
//! Every group function is one variant of [`Call::Group`](crate::Call::Group) and
//! [`Request::Group`](crate::Request::Group), so the contract dispatches them to one module.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_sdk::{GroupCredentialRequest, Hid};
use serde::{Deserialize, Serialize};

use crate::call::ArgError;
use crate::function::Function;
use crate::key_hash::{from_hex, hid_hex, to_hex};

/// Most members of one group (the head-end counts). The stored public state is about 450 bytes
/// per member and an Add transaction carries a Welcome with the whole ratchet tree and writes the
/// new state: ≈ 190 KB at 256 members, ≈ 745 KB at 1,024 (BENCHMARKS.md, "Group keys"), against
/// the orderers' 2 MiB request limit. 256 keeps every commit below 10 % of it.
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Longest group id, bytes (sent as hex).
pub const MAX_GROUP_ID_LEN: usize = 32;
/// Largest key package, bytes (one of suite 1 with a HID credential is about 300).
pub const MAX_KEY_PACKAGE_BYTES: usize = 2_048;
/// Most key packages in one `PublishKeyPackages` call.
pub const MAX_KEY_PACKAGES: usize = 16;
/// Largest GroupInfo, commit or Welcome, bytes. A Welcome at [`MAX_GROUP_MEMBERS`] is about
/// 110 KB (it carries the ratchet tree); a commit right after a bulk add of 255 members about
/// 22 KB.
pub const MAX_GROUP_MESSAGE_BYTES: usize = 512 * 1024;
/// Largest page of `GetGroupCommits`.
pub const MAX_GROUP_COMMITS_PAGE: u32 = 32;
/// Page size of `GetGroupCommits` when none is given.
pub const DEFAULT_GROUP_COMMITS_PAGE: u32 = 8;
/// Length of the group authority's key and of a member's MLS signature key (Ed25519).
pub const GROUP_KEY_LEN: usize = 32;
/// Length of an issued group credential: `HID (32) ‖ Ed25519 signature (64)`.
pub const GROUP_CREDENTIAL_LEN: usize = 96;

/// A group id: 1 to [`MAX_GROUP_ID_LEN`] bytes, hex in JSON and in ledger keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(Vec<u8>);

impl GroupId {
    /// A group id from its bytes, if 1 to [`MAX_GROUP_ID_LEN`] long.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        (!bytes.is_empty() && bytes.len() <= MAX_GROUP_ID_LEN).then(|| GroupId(bytes.to_vec()))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses the hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() % 2 != 0 || text.len() > 2 * MAX_GROUP_ID_LEN {
            return None;
        }
        let bytes = text
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let s = std::str::from_utf8(pair).ok()?;
                from_hex::<1>(s).map(|[b]| b)
            })
            .collect::<Option<Vec<u8>>>()?;
        GroupId::new(&bytes)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl Serialize for GroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GroupId::from_hex(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a group id is 1 to {MAX_GROUP_ID_LEN} bytes in lower-case hex"
            ))
        })
    }
}

/// A group call with its arguments parsed (the MLS messages still opaque).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCall {
    /// `SetGroupAuthority`: the Utility's group-authority public key (Ed25519).
    SetGroupAuthority([u8; GROUP_KEY_LEN]),
    /// `RequestGroupCredential`: a meter asks for its MLS signature key to be certified.
    RequestGroupCredential(Box<GroupCredentialRequest>),
    /// `IssueGroupCredential`: the authority's credential for a meter's (or the head-end's) key.
    IssueGroupCredential {
        /// The member.
        hid: Hid,
        /// Its MLS signature key.
        signature_key: [u8; GROUP_KEY_LEN],
        /// The credential (`HID ‖ signature`).
        credential: [u8; GROUP_CREDENTIAL_LEN],
    },
    /// `PublishKeyPackages`: one-time key packages (MLS messages).
    PublishKeyPackages(Vec<Vec<u8>>),
    /// `CreateGroup`: the creator's GroupInfo with the ratchet tree.
    CreateGroup(Vec<u8>),
    /// `SubmitGroupCommit`: a commit for the group's current epoch, and the Welcome of its adds.
    SubmitGroupCommit {
        /// The group.
        group_id: GroupId,
        /// The commit (an MLS PublicMessage).
        commit: Vec<u8>,
        /// The Welcome, if the commit adds members.
        welcome: Option<Vec<u8>>,
    },
    /// `ProposeGroupRemoval`: an administrator approves removing a member.
    ProposeGroupRemoval {
        /// The group.
        group_id: GroupId,
        /// The member to remove.
        hid: Hid,
    },
    /// `GetGroupAuthority`.
    GetGroupAuthority,
    /// `GetGroupCredential`: a member's credential record and its groups.
    GetGroupCredential(Hid),
    /// `GetKeyPackage`: one unused key package of a member.
    GetKeyPackage(Hid),
    /// `GetGroup`.
    GetGroup(GroupId),
    /// `GetGroupCommits`: commits from an epoch on.
    GetGroupCommits {
        /// The group.
        group_id: GroupId,
        /// The first commit returned is the one made for this epoch.
        from_epoch: u64,
        /// At most this many.
        page_size: u32,
    },
    /// `GetGroupWelcome`: the Welcome that added a member.
    GetGroupWelcome {
        /// The group.
        group_id: GroupId,
        /// The member.
        hid: Hid,
    },
}

/// A group call as a client writes it. Binary messages are their bytes; they are sent as base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRequest<'a> {
    /// See [`GroupCall::SetGroupAuthority`].
    SetGroupAuthority(&'a [u8]),
    /// An encoded `GroupCredentialRequest`.
    RequestGroupCredential(&'a [u8]),
    /// See [`GroupCall::IssueGroupCredential`].
    IssueGroupCredential {
        /// The member.
        hid: Hid,
        /// Its MLS signature key.
        signature_key: &'a [u8],
        /// The credential.
        credential: &'a [u8],
    },
    /// Key packages.
    PublishKeyPackages(&'a [Vec<u8>]),
    /// A GroupInfo.
    CreateGroup(&'a [u8]),
    /// A commit and its Welcome.
    SubmitGroupCommit {
        /// The group.
        group_id: &'a GroupId,
        /// The commit.
        commit: &'a [u8],
        /// The Welcome.
        welcome: Option<&'a [u8]>,
    },
    /// An administrator's removal proposal.
    ProposeGroupRemoval {
        /// The group.
        group_id: &'a GroupId,
        /// The member.
        hid: Hid,
    },
    /// The authority record.
    GetGroupAuthority,
    /// A member's credential record.
    GetGroupCredential(Hid),
    /// One unused key package.
    GetKeyPackage(Hid),
    /// The group.
    GetGroup(&'a GroupId),
    /// Commits from an epoch.
    GetGroupCommits {
        /// The group.
        group_id: &'a GroupId,
        /// First epoch.
        from_epoch: u64,
        /// Page size (default [`DEFAULT_GROUP_COMMITS_PAGE`]).
        page_size: Option<u32>,
    },
    /// A member's Welcome.
    GetGroupWelcome {
        /// The group.
        group_id: &'a GroupId,
        /// The member.
        hid: Hid,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssueArg {
    #[serde(with = "hid_hex")]
    hid: Hid,
    signature_key: String,
    credential: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommitArg {
    group_id: GroupId,
    commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    welcome: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MemberArg {
    group_id: GroupId,
    #[serde(with = "hid_hex")]
    hid: Hid,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommitsArg {
    group_id: GroupId,
    from_epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_size: Option<u32>,
}

impl GroupRequest<'_> {
    /// The function it calls.
    pub fn function(&self) -> Function {
        match self {
            GroupRequest::SetGroupAuthority(_) => Function::SetGroupAuthority,
            GroupRequest::RequestGroupCredential(_) => Function::RequestGroupCredential,
            GroupRequest::IssueGroupCredential { .. } => Function::IssueGroupCredential,
            GroupRequest::PublishKeyPackages(_) => Function::PublishKeyPackages,
            GroupRequest::CreateGroup(_) => Function::CreateGroup,
            GroupRequest::SubmitGroupCommit { .. } => Function::SubmitGroupCommit,
            GroupRequest::ProposeGroupRemoval { .. } => Function::ProposeGroupRemoval,
            GroupRequest::GetGroupAuthority => Function::GetGroupAuthority,
            GroupRequest::GetGroupCredential(_) => Function::GetGroupCredential,
            GroupRequest::GetKeyPackage(_) => Function::GetKeyPackage,
            GroupRequest::GetGroup(_) => Function::GetGroup,
            GroupRequest::GetGroupCommits { .. } => Function::GetGroupCommits,
            GroupRequest::GetGroupWelcome { .. } => Function::GetGroupWelcome,
        }
    }

    /// The string arguments.
    pub fn args(&self) -> Vec<String> {
        match self {
            GroupRequest::SetGroupAuthority(bytes)
            | GroupRequest::RequestGroupCredential(bytes)
            | GroupRequest::CreateGroup(bytes) => vec![STANDARD.encode(bytes)],
            GroupRequest::IssueGroupCredential {
                hid,
                signature_key,
                credential,
            } => vec![json(&IssueArg {
                hid: *hid,
                signature_key: STANDARD.encode(signature_key),
                credential: STANDARD.encode(credential),
            })],
            GroupRequest::PublishKeyPackages(packages) => {
                let list: Vec<String> = packages.iter().map(|p| STANDARD.encode(p)).collect();
                vec![json(&list)]
            }
            GroupRequest::SubmitGroupCommit {
                group_id,
                commit,
                welcome,
            } => vec![json(&CommitArg {
                group_id: (*group_id).clone(),
                commit: STANDARD.encode(commit),
                welcome: welcome.map(|w| STANDARD.encode(w)),
            })],
            GroupRequest::ProposeGroupRemoval { group_id, hid }
            | GroupRequest::GetGroupWelcome { group_id, hid } => vec![json(&MemberArg {
                group_id: (*group_id).clone(),
                hid: *hid,
            })],
            GroupRequest::GetGroupAuthority => Vec::new(),
            GroupRequest::GetGroupCredential(hid) | GroupRequest::GetKeyPackage(hid) => {
                vec![hid.to_string()]
            }
            GroupRequest::GetGroup(group_id) => vec![group_id.to_string()],
            GroupRequest::GetGroupCommits {
                group_id,
                from_epoch,
                page_size,
            } => vec![json(&CommitsArg {
                group_id: (*group_id).clone(),
                from_epoch: *from_epoch,
                page_size: *page_size,
            })],
        }
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

struct Args<'a> {
    function: Function,
    args: &'a [Vec<u8>],
}

impl Args<'_> {
    fn name(&self) -> &'static str {
        self.function.name()
    }

    fn exactly(&self, n: usize, expected: &'static str) -> Result<(), ArgError> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(ArgError::Count {
                function: self.name(),
                expected,
                got: self.args.len(),
            })
        }
    }

    fn text(&self, i: usize) -> Result<&str, ArgError> {
        std::str::from_utf8(&self.args[i]).map_err(|_| ArgError::NotUtf8 {
            function: self.name(),
            index: i + 1,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ArgError> {
        serde_json::from_str(self.text(0)?).map_err(|e| ArgError::Json {
            function: self.name(),
            detail: e.to_string(),
        })
    }

    fn limit(&self, detail: String) -> ArgError {
        ArgError::Limit {
            function: self.name(),
            detail,
        }
    }

    fn invalid(&self, detail: String) -> ArgError {
        ArgError::Invalid {
            function: self.name(),
            detail,
        }
    }

    /// Base64 of at most `max` bytes.
    fn base64(&self, text: &str, what: &str, max: usize) -> Result<Vec<u8>, ArgError> {
        if text.len() > max.div_ceil(3) * 4 {
            return Err(self.limit(format!(
                "{what} of {} base64 characters is longer than {max} bytes",
                text.len()
            )));
        }
        let bytes = STANDARD.decode(text).map_err(|_| ArgError::Base64 {
            function: self.name(),
        })?;
        if bytes.is_empty() || bytes.len() > max {
            return Err(self.limit(format!(
                "{what} must be 1 to {max} bytes, got {}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn fixed<const N: usize>(&self, text: &str, what: &str) -> Result<[u8; N], ArgError> {
        let bytes = self.base64(text, what, N)?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            self.invalid(format!("{what} must be {N} bytes, got {}", b.len()))
        })
    }

    fn hid(&self, text: &str) -> Result<Hid, ArgError> {
        crate::call::parse_hid(text).ok_or_else(|| ArgError::Hid {
            function: self.name(),
            what: "argument 1".into(),
            text: text.chars().take(80).collect(),
        })
    }
}

/// Parses the arguments of a group function; `None` if `function` is not one.
pub(crate) fn parse(function: Function, args: &[Vec<u8>]) -> Option<Result<GroupCall, ArgError>> {
    let input = Args { function, args };
    let call = match function {
        Function::SetGroupAuthority => (|| {
            input.exactly(1, "1")?;
            Ok(GroupCall::SetGroupAuthority(
                input.fixed(input.text(0)?, "the authority key")?,
            ))
        })(),
        Function::RequestGroupCredential => (|| {
            input.exactly(1, "1")?;
            let bytes = input.base64(
                input.text(0)?,
                "the request",
                GroupCredentialRequest::ENCODED_LEN,
            )?;
            Ok(GroupCall::RequestGroupCredential(Box::new(
                GroupCredentialRequest::decode(&bytes)?,
            )))
        })(),
        Function::IssueGroupCredential => (|| {
            input.exactly(1, "1")?;
            let arg: IssueArg = input.json()?;
            Ok(GroupCall::IssueGroupCredential {
                hid: arg.hid,
                signature_key: input.fixed(&arg.signature_key, "\"signatureKey\"")?,
                credential: input.fixed(&arg.credential, "\"credential\"")?,
            })
        })(),
        Function::PublishKeyPackages => (|| {
            input.exactly(1, "1")?;
            if input.args[0].len() > (MAX_KEY_PACKAGES * (MAX_KEY_PACKAGE_BYTES * 4 / 3 + 8)) {
                return Err(input.limit(format!(
                    "at most {MAX_KEY_PACKAGES} key packages of at most {MAX_KEY_PACKAGE_BYTES} bytes"
                )));
            }
            let list: Vec<String> = input.json()?;
            if list.is_empty() || list.len() > MAX_KEY_PACKAGES {
                return Err(input.limit(format!(
                    "1 to {MAX_KEY_PACKAGES} key packages per call, got {}",
                    list.len()
                )));
            }
            let packages = list
                .iter()
                .map(|p| input.base64(p, "a key package", MAX_KEY_PACKAGE_BYTES))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(GroupCall::PublishKeyPackages(packages))
        })(),
        Function::CreateGroup => (|| {
            input.exactly(1, "1")?;
            Ok(GroupCall::CreateGroup(input.base64(
                input.text(0)?,
                "the GroupInfo",
                MAX_GROUP_MESSAGE_BYTES,
            )?))
        })(),
        Function::SubmitGroupCommit => (|| {
            input.exactly(1, "1")?;
            if input.args[0].len() > 3 * MAX_GROUP_MESSAGE_BYTES {
                return Err(input.limit(format!(
                    "the argument of {} bytes is larger than a commit and a Welcome can be",
                    input.args[0].len()
                )));
            }
            let arg: CommitArg = input.json()?;
            Ok(GroupCall::SubmitGroupCommit {
                group_id: arg.group_id,
                commit: input.base64(&arg.commit, "\"commit\"", MAX_GROUP_MESSAGE_BYTES)?,
                welcome: arg
                    .welcome
                    .map(|w| input.base64(&w, "\"welcome\"", MAX_GROUP_MESSAGE_BYTES))
                    .transpose()?,
            })
        })(),
        Function::ProposeGroupRemoval | Function::GetGroupWelcome => (|| {
            input.exactly(1, "1")?;
            let arg: MemberArg = input.json()?;
            Ok(if function == Function::ProposeGroupRemoval {
                GroupCall::ProposeGroupRemoval {
                    group_id: arg.group_id,
                    hid: arg.hid,
                }
            } else {
                GroupCall::GetGroupWelcome {
                    group_id: arg.group_id,
                    hid: arg.hid,
                }
            })
        })(),
        Function::GetGroupAuthority => input.exactly(0, "0").map(|()| GroupCall::GetGroupAuthority),
        Function::GetGroupCredential | Function::GetKeyPackage => (|| {
            input.exactly(1, "1")?;
            let hid = input.hid(input.text(0)?)?;
            Ok(if function == Function::GetKeyPackage {
                GroupCall::GetKeyPackage(hid)
            } else {
                GroupCall::GetGroupCredential(hid)
            })
        })(),
        Function::GetGroup => (|| {
            input.exactly(1, "1")?;
            let text = input.text(0)?;
            let group_id = GroupId::from_hex(text).ok_or_else(|| {
                input.invalid(format!(
                    "a group id is 1 to {MAX_GROUP_ID_LEN} bytes in lower-case hex, got {:?}",
                    text.chars().take(80).collect::<String>()
                ))
            })?;
            Ok(GroupCall::GetGroup(group_id))
        })(),
        Function::GetGroupCommits => (|| {
            input.exactly(1, "1")?;
            let arg: CommitsArg = input.json()?;
            let page_size = match arg.page_size {
                None => DEFAULT_GROUP_COMMITS_PAGE,
                Some(n) if (1..=MAX_GROUP_COMMITS_PAGE).contains(&n) => n,
                Some(n) => {
                    return Err(input.invalid(format!(
                        "\"pageSize\" must be 1 to {MAX_GROUP_COMMITS_PAGE}, got {n}"
                    )));
                }
            };
            Ok(GroupCall::GetGroupCommits {
                group_id: arg.group_id,
                from_epoch: arg.from_epoch,
                page_size,
            })
        })(),
        _ => return None,
    };
    Some(call)
}

/// `groupauthority`: the Utility's group authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAuthorityRecord {
    /// Its Ed25519 public key, base64.
    pub authority_key: String,
    /// The group-size cap in force.
    pub max_members: u32,
    /// Transaction that set it.
    pub tx_id: String,
}

/// `groupcred~HID`: a member's MLS signature key, requested by the meter (or named by the
/// administrator for the head-end) and certified by the group authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCredentialRecord {
    /// The member.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Its MLS signature public key, base64.
    pub signature_key: String,
    /// Transaction of the meter's request (none for the head-end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_tx: Option<String>,
    /// The credential, base64, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Transaction that issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_tx: Option<String>,
}

/// `GetGroupCredential`'s answer: the record and the groups the HID is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberView {
    /// The credential record.
    pub credential: GroupCredentialRecord,
    /// The groups it is a member of (the contract's index, `groupmember~HID~GROUP`).
    pub groups: Vec<GroupId>,
}

/// `groupkp~HID~REF`: a published, unused key package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPackageRecord {
    /// Whose.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Its RFC 9420 KeyPackageRef, hex.
    pub key_package_ref: String,
    /// The key package, base64.
    pub key_package: String,
    /// Transaction that published it.
    pub tx_id: String,
}

/// `PublishKeyPackages`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedKeyPackages {
    /// The KeyPackageRefs published, hex, in call order.
    pub published: Vec<String>,
}

/// `group~ID`: a group as the ledger records it. Every commit reads and rewrites it, so two
/// commits for one epoch conflict on it (MVCC) and at most one lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    /// The group.
    pub group_id: GroupId,
    /// Its current epoch.
    pub epoch: u64,
    /// Its members, in leaf order.
    #[serde(with = "hid_list")]
    pub members: Vec<Hid>,
    /// Who created it.
    #[serde(with = "hid_hex")]
    pub creator: Hid,
    /// Size of the stored public state (`groupstate~ID`), bytes.
    pub state_bytes: u64,
    /// Transaction that created it.
    pub created_tx: String,
    /// Transaction of the last accepted commit (or the creation).
    pub last_tx: String,
}

/// `groupcommit~ID~EPOCH`: an accepted commit, made for `epoch` (it moved the group to
/// `epoch + 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCommitRecord {
    /// The epoch the commit was made for.
    pub epoch: u64,
    /// The commit (an MLS PublicMessage), base64.
    pub commit: String,
    /// Who committed.
    #[serde(with = "hid_hex")]
    pub committer: Hid,
    /// Members it added.
    #[serde(with = "hid_list")]
    pub added: Vec<Hid>,
    /// Members it removed.
    #[serde(with = "hid_list")]
    pub removed: Vec<Hid>,
    /// Transaction.
    pub tx_id: String,
}

/// `GetGroupCommits`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCommitsPage {
    /// The group.
    pub group_id: GroupId,
    /// Commits in epoch order.
    pub commits: Vec<GroupCommitRecord>,
    /// The group's current epoch (a member at this epoch is up to date).
    pub epoch: u64,
}

/// `SubmitGroupCommit`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCommitResponse {
    /// The group.
    pub group_id: GroupId,
    /// Its new epoch.
    pub epoch: u64,
    /// Members added.
    #[serde(with = "hid_list")]
    pub added: Vec<Hid>,
    /// Members removed.
    #[serde(with = "hid_list")]
    pub removed: Vec<Hid>,
    /// Members now.
    #[serde(with = "hid_list")]
    pub members: Vec<Hid>,
    /// Size of the stored public state now, bytes.
    pub state_bytes: u64,
}

/// `GetGroupWelcome`'s answer (`groupjoin~ID~HID` points at `groupwelcome~ID~EPOCH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupWelcomeRecord {
    /// The group.
    pub group_id: GroupId,
    /// The member.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// The epoch the member joined at (the commit's new epoch).
    pub epoch: u64,
    /// The Welcome, base64.
    pub welcome: String,
}

/// `groupremoval~ID~HID`: an administrator's approval of a removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRemovalRecord {
    /// The group.
    pub group_id: GroupId,
    /// The member to remove.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Transaction.
    pub tx_id: String,
}

/// Serde: a list of HIDs as hex strings.
pub mod hid_list {
    use bcami_sdk::Hid;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};

    /// Serialize.
    pub fn serialize<S: Serializer>(hids: &[Hid], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hids.len()))?;
        for h in hids {
            seq.serialize_element(&h.to_string())?;
        }
        seq.end()
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hid>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| t.parse().map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Call, Request};

    fn parse(request: &Request<'_>) -> Result<Call, ArgError> {
        let args: Vec<Vec<u8>> = request.args().into_iter().map(String::into_bytes).collect();
        Call::parse(request.function(), &args)
    }

    #[test]
    fn group_calls_round_trip() {
        let hid = Hid::from_meter_id("SM-1");
        let gid = GroupId::new(b"microgrid-7").unwrap();
        let packages = [vec![1, 2], vec![3]];
        assert_eq!(GroupId::from_hex(&gid.to_string()), Some(gid.clone()));
        let cases: Vec<(GroupRequest<'_>, GroupCall)> = vec![
            (
                GroupRequest::SetGroupAuthority(&[3; 32]),
                GroupCall::SetGroupAuthority([3; 32]),
            ),
            (
                GroupRequest::IssueGroupCredential {
                    hid,
                    signature_key: &[4; 32],
                    credential: &[5; 96],
                },
                GroupCall::IssueGroupCredential {
                    hid,
                    signature_key: [4; 32],
                    credential: [5; 96],
                },
            ),
            (
                GroupRequest::PublishKeyPackages(&packages),
                GroupCall::PublishKeyPackages(vec![vec![1, 2], vec![3]]),
            ),
            (
                GroupRequest::CreateGroup(&[9, 9]),
                GroupCall::CreateGroup(vec![9, 9]),
            ),
            (
                GroupRequest::SubmitGroupCommit {
                    group_id: &gid,
                    commit: &[1],
                    welcome: Some(&[2]),
                },
                GroupCall::SubmitGroupCommit {
                    group_id: gid.clone(),
                    commit: vec![1],
                    welcome: Some(vec![2]),
                },
            ),
            (
                GroupRequest::SubmitGroupCommit {
                    group_id: &gid,
                    commit: &[1],
                    welcome: None,
                },
                GroupCall::SubmitGroupCommit {
                    group_id: gid.clone(),
                    commit: vec![1],
                    welcome: None,
                },
            ),
            (
                GroupRequest::ProposeGroupRemoval {
                    group_id: &gid,
                    hid,
                },
                GroupCall::ProposeGroupRemoval {
                    group_id: gid.clone(),
                    hid,
                },
            ),
            (
                GroupRequest::GetGroupAuthority,
                GroupCall::GetGroupAuthority,
            ),
            (
                GroupRequest::GetGroupCredential(hid),
                GroupCall::GetGroupCredential(hid),
            ),
            (
                GroupRequest::GetKeyPackage(hid),
                GroupCall::GetKeyPackage(hid),
            ),
            (
                GroupRequest::GetGroup(&gid),
                GroupCall::GetGroup(gid.clone()),
            ),
            (
                GroupRequest::GetGroupCommits {
                    group_id: &gid,
                    from_epoch: 4,
                    page_size: None,
                },
                GroupCall::GetGroupCommits {
                    group_id: gid.clone(),
                    from_epoch: 4,
                    page_size: DEFAULT_GROUP_COMMITS_PAGE,
                },
            ),
            (
                GroupRequest::GetGroupWelcome {
                    group_id: &gid,
                    hid,
                },
                GroupCall::GetGroupWelcome {
                    group_id: gid.clone(),
                    hid,
                },
            ),
        ];
        for (request, call) in cases {
            assert_eq!(parse(&Request::Group(request)), Ok(Call::Group(call)));
        }
    }

    #[test]
    fn group_limits_are_enforced() {
        let gid = GroupId::new(b"g").unwrap();
        assert!(GroupId::new(&[0; 33]).is_none() && GroupId::new(&[]).is_none());
        assert!(GroupId::from_hex("0g").is_none() && GroupId::from_hex("abc").is_none());
        // A 31-byte authority key, too many key packages, an oversize or empty one, a page of 33.
        let too_many = vec![vec![1]; MAX_KEY_PACKAGES + 1];
        let oversize = vec![vec![0; MAX_KEY_PACKAGE_BYTES + 1]];
        let empty = vec![Vec::new()];
        for request in [
            GroupRequest::SetGroupAuthority(&[3; 31]),
            GroupRequest::PublishKeyPackages(&too_many),
            GroupRequest::PublishKeyPackages(&oversize),
            GroupRequest::PublishKeyPackages(&empty),
            GroupRequest::PublishKeyPackages(&[]),
            GroupRequest::GetGroupCommits {
                group_id: &gid,
                from_epoch: 0,
                page_size: Some(MAX_GROUP_COMMITS_PAGE + 1),
            },
            GroupRequest::RequestGroupCredential(&[0x0B, 1, 2]),
        ] {
            assert!(
                parse(&Request::Group(request.clone())).is_err(),
                "{request:?}"
            );
        }
        let big = vec![0; MAX_GROUP_MESSAGE_BYTES + 1];
        assert!(parse(&Request::Group(GroupRequest::CreateGroup(&big))).is_err());
        let args = vec![br#"{"groupId":"","hid":"00"}"#.to_vec()];
        assert!(Call::parse(Function::GetGroupWelcome, &args).is_err());
    }

    #[test]
    fn a_credential_request_travels_as_base64() {
        let key = bcami_sdk::MeterSecretKey::from_bytes(&[7; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let req = GroupCredentialRequest::build(
            &key,
            hid,
            bcami_sdk::Timestamp::from_unix_millis(9),
            &[1; 32],
        )
        .unwrap();
        let bytes = req.encode();
        assert_eq!(
            parse(&Request::Group(GroupRequest::RequestGroupCredential(
                &bytes
            ))),
            Ok(Call::Group(GroupCall::RequestGroupCredential(Box::new(
                req
            ))))
        );
    }
}
