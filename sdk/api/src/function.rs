//! The contract's functions and who may call each. A new function is added here first: every
//! `match` over [`Function`] (the contract's dispatch, the client's requests, the access-control
//! matrix of the end-to-end tests) then fails to compile until it has a row.

use std::fmt;

/// The contract's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Provisions and revokes meters, provisions the MDMS, configures the contract.
    Administrator,
    /// A data concentrator: relays registrations, key rotations and readings.
    Concentrator,
    /// The MDMS: registers its key, reads readings. Also the AMI head-end, a Utility client
    /// too, registering its session-signing key.
    Mdms,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Administrator, Role::Concentrator, Role::Mdms];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Administrator => "administrator",
            Role::Concentrator => "data concentrator",
            Role::Mdms => "MDMS",
        })
    }
}

/// The contract's functions, by the name the peer CLI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    /// `Configure`
    Configure,
    /// `GetConfig`
    GetConfig,
    /// `ProvisionMeters`
    ProvisionMeters,
    /// `ProvisionMdms`
    ProvisionMdms,
    /// `RegisterMeter`
    RegisterMeter,
    /// `RegisterMdmsKey`
    RegisterMdmsKey,
    /// `RotateMeterKey`
    RotateMeterKey,
    /// `RevokeMeter`
    RevokeMeter,
    /// `SubmitReadings`
    SubmitReadings,
    /// `GetMeter`
    GetMeter,
    /// `GetMdmsKey`
    GetMdmsKey,
    /// `GetReadings`
    GetReadings,
    /// `ListMeters`
    ListMeters,
    /// `GetCounts`
    GetCounts,
    /// `RotateMdmsKey`
    RotateMdmsKey,
    // The AMI head-end (issue 12): the MDMS's rules for a second service.
    /// `ProvisionHeadEnd`
    ProvisionHeadEnd,
    /// `RegisterHeadEndKey`
    RegisterHeadEndKey,
    /// `GetHeadEnd`
    GetHeadEnd,
    /// `RotateHeadEndKey`
    RotateHeadEndKey,
    // Anonymous readings (issue 15).
    /// `SetAnonIssuerKey`
    SetAnonIssuerKey,
    /// `RequestAnonCredential`
    RequestAnonCredential,
    /// `PostAnonCredential`
    PostAnonCredential,
    /// `SubmitAnonReadings`
    SubmitAnonReadings,
    /// `GetAnonIssuerKey`
    GetAnonIssuerKey,
    /// `GetAnonCredential`
    GetAnonCredential,
    /// `GetAnonAggregate`
    GetAnonAggregate,
    /// `GetAnonDoubleReports`
    GetAnonDoubleReports,
    /// `RecordAnonTrace`
    RecordAnonTrace,
    // Group keys (issue 13).
    /// `SetGroupAuthority`
    SetGroupAuthority,
    /// `RequestGroupCredential`
    RequestGroupCredential,
    /// `IssueGroupCredential`
    IssueGroupCredential,
    /// `PublishKeyPackages`
    PublishKeyPackages,
    /// `CreateGroup`
    CreateGroup,
    /// `SubmitGroupCommit`
    SubmitGroupCommit,
    /// `ProposeGroupRemoval`
    ProposeGroupRemoval,
    /// `GetGroupAuthority`
    GetGroupAuthority,
    /// `GetGroupCredential`
    GetGroupCredential,
    /// `GetKeyPackage`
    GetKeyPackage,
    /// `GetGroup`
    GetGroup,
    /// `GetGroupCommits`
    GetGroupCommits,
    /// `GetGroupWelcome`
    GetGroupWelcome,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 41] = [
        Function::Configure,
        Function::GetConfig,
        Function::ProvisionMeters,
        Function::ProvisionMdms,
        Function::RegisterMeter,
        Function::RegisterMdmsKey,
        Function::RotateMeterKey,
        Function::RevokeMeter,
        Function::SubmitReadings,
        Function::GetMeter,
        Function::GetMdmsKey,
        Function::GetReadings,
        Function::ListMeters,
        Function::GetCounts,
        // Last, so the fuzz corpus's function bytes (an index into this list) keep their meaning.
        Function::RotateMdmsKey,
        // The AMI head-end.
        Function::ProvisionHeadEnd,
        Function::RegisterHeadEndKey,
        Function::GetHeadEnd,
        Function::RotateHeadEndKey,
        // Anonymous readings (issue 15).
        Function::SetAnonIssuerKey,
        Function::RequestAnonCredential,
        Function::PostAnonCredential,
        Function::SubmitAnonReadings,
        Function::GetAnonIssuerKey,
        Function::GetAnonCredential,
        Function::GetAnonAggregate,
        Function::GetAnonDoubleReports,
        Function::RecordAnonTrace,
        // Group keys (issue 13).
        Function::SetGroupAuthority,
        Function::RequestGroupCredential,
        Function::IssueGroupCredential,
        Function::PublishKeyPackages,
        Function::CreateGroup,
        Function::SubmitGroupCommit,
        Function::ProposeGroupRemoval,
        Function::GetGroupAuthority,
        Function::GetGroupCredential,
        Function::GetKeyPackage,
        Function::GetGroup,
        Function::GetGroupCommits,
        Function::GetGroupWelcome,
    ];

    /// The name the peer CLI uses.
    pub const fn name(self) -> &'static str {
        match self {
            Function::Configure => "Configure",
            Function::GetConfig => "GetConfig",
            Function::ProvisionMeters => "ProvisionMeters",
            Function::ProvisionMdms => "ProvisionMdms",
            Function::RegisterMeter => "RegisterMeter",
            Function::RegisterMdmsKey => "RegisterMdmsKey",
            Function::RotateMeterKey => "RotateMeterKey",
            Function::RotateMdmsKey => "RotateMdmsKey",
            Function::RevokeMeter => "RevokeMeter",
            Function::SubmitReadings => "SubmitReadings",
            Function::GetMeter => "GetMeter",
            Function::GetMdmsKey => "GetMdmsKey",
            Function::GetReadings => "GetReadings",
            Function::ListMeters => "ListMeters",
            Function::GetCounts => "GetCounts",
            Function::ProvisionHeadEnd => "ProvisionHeadEnd",
            Function::RegisterHeadEndKey => "RegisterHeadEndKey",
            Function::GetHeadEnd => "GetHeadEnd",
            Function::RotateHeadEndKey => "RotateHeadEndKey",
            // Anonymous readings (issue 15).
            Function::SetAnonIssuerKey => "SetAnonIssuerKey",
            Function::RequestAnonCredential => "RequestAnonCredential",
            Function::PostAnonCredential => "PostAnonCredential",
            Function::SubmitAnonReadings => "SubmitAnonReadings",
            Function::GetAnonIssuerKey => "GetAnonIssuerKey",
            Function::GetAnonCredential => "GetAnonCredential",
            Function::GetAnonAggregate => "GetAnonAggregate",
            Function::GetAnonDoubleReports => "GetAnonDoubleReports",
            Function::RecordAnonTrace => "RecordAnonTrace",
            // Group keys (issue 13).
            Function::SetGroupAuthority => "SetGroupAuthority",
            Function::RequestGroupCredential => "RequestGroupCredential",
            Function::IssueGroupCredential => "IssueGroupCredential",
            Function::PublishKeyPackages => "PublishKeyPackages",
            Function::CreateGroup => "CreateGroup",
            Function::SubmitGroupCommit => "SubmitGroupCommit",
            Function::ProposeGroupRemoval => "ProposeGroupRemoval",
            Function::GetGroupAuthority => "GetGroupAuthority",
            Function::GetGroupCredential => "GetGroupCredential",
            Function::GetKeyPackage => "GetKeyPackage",
            Function::GetGroup => "GetGroup",
            Function::GetGroupCommits => "GetGroupCommits",
            Function::GetGroupWelcome => "GetGroupWelcome",
        }
    }

    /// The function called `name`, if any (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The known names, comma-separated.
    pub fn known() -> String {
        Function::ALL.map(Function::name).join(", ")
    }

    /// Which roles may call it.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Function::Configure
            | Function::ProvisionMeters
            | Function::ProvisionMdms
            | Function::RevokeMeter => &[Role::Administrator],
            Function::RegisterMeter | Function::RotateMeterKey | Function::SubmitReadings => {
                &[Role::Concentrator]
            }
            Function::RegisterMdmsKey => &[Role::Mdms],
            // Not the MDMS itself: the point of rotating is that its key may be in a thief's
            // hands, and the thief holds the MDMS's identity too if the MDMS host is compromised.
            Function::RotateMdmsKey => &[Role::Administrator],
            Function::GetReadings => &[Role::Mdms, Role::Administrator],
            Function::GetConfig
            | Function::GetMeter
            | Function::GetMdmsKey
            | Function::ListMeters
            | Function::GetCounts => &Role::ALL,
            // The head-end is a Utility system: it registers its own key as a Utility client,
            // like the MDMS; the administrator provisions it and rotates its key, for the same
            // reason as the MDMS's; meters (through any role) read it.
            Function::ProvisionHeadEnd | Function::RotateHeadEndKey => &[Role::Administrator],
            Function::RegisterHeadEndKey => &[Role::Mdms],
            Function::GetHeadEnd => &Role::ALL,
            // Anonymous readings (issue 15). The issuer service is the Utility's administrator;
            // concentrators relay requests and readings and fetch credentials for their meters;
            // aggregates serve the MDMS (operations); double reports are tracing evidence.
            Function::SetAnonIssuerKey
            | Function::PostAnonCredential
            | Function::GetAnonDoubleReports
            | Function::RecordAnonTrace => &[Role::Administrator],
            Function::RequestAnonCredential | Function::SubmitAnonReadings => &[Role::Concentrator],
            Function::GetAnonIssuerKey => &Role::ALL,
            Function::GetAnonCredential => &[Role::Administrator, Role::Concentrator],
            Function::GetAnonAggregate => &[Role::Administrator, Role::Mdms],
            // Group keys (issue 13). The Utility's administrator is the group authority and
            // approves removals; concentrators relay their meters' requests, key packages and
            // commits; the head-end (a Utility client, the MDMS role) creates groups and commits.
            Function::SetGroupAuthority
            | Function::IssueGroupCredential
            | Function::ProposeGroupRemoval => &[Role::Administrator],
            Function::RequestGroupCredential => &[Role::Concentrator],
            Function::PublishKeyPackages | Function::CreateGroup | Function::SubmitGroupCommit => {
                &[Role::Concentrator, Role::Mdms]
            }
            Function::GetGroupAuthority
            | Function::GetGroupCredential
            | Function::GetKeyPackage
            | Function::GetGroup
            | Function::GetGroupCommits
            | Function::GetGroupWelcome => &Role::ALL,
        }
    }

    /// Whether `role` may call it.
    pub fn allows(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    /// Whether it only reads the ledger (a client evaluates it instead of submitting it).
    pub const fn is_query(self) -> bool {
        match self {
            Function::GetConfig
            | Function::GetMeter
            | Function::GetMdmsKey
            | Function::GetReadings
            | Function::ListMeters
            | Function::GetCounts
            | Function::GetHeadEnd => true,
            // Anonymous readings (issue 15).
            Function::GetAnonIssuerKey
            | Function::GetAnonCredential
            | Function::GetAnonAggregate
            | Function::GetAnonDoubleReports => true,
            Function::SetAnonIssuerKey
            | Function::RequestAnonCredential
            | Function::PostAnonCredential
            | Function::SubmitAnonReadings
            | Function::RecordAnonTrace => false,
            // Group keys (issue 13).
            Function::GetGroupAuthority
            | Function::GetGroupCredential
            | Function::GetKeyPackage
            | Function::GetGroup
            | Function::GetGroupCommits
            | Function::GetGroupWelcome => true,
            Function::SetGroupAuthority
            | Function::RequestGroupCredential
            | Function::IssueGroupCredential
            | Function::PublishKeyPackages
            | Function::CreateGroup
            | Function::SubmitGroupCommit
            | Function::ProposeGroupRemoval => false,
            Function::Configure
            | Function::ProvisionMeters
            | Function::ProvisionMdms
            | Function::RegisterMeter
            | Function::RegisterMdmsKey
            | Function::RotateMeterKey
            | Function::RotateMdmsKey
            | Function::RevokeMeter
            | Function::SubmitReadings
            | Function::ProvisionHeadEnd
            | Function::RegisterHeadEndKey
            | Function::RotateHeadEndKey => false,
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_round_trip_and_are_case_sensitive() {
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
            assert!(!f.roles().is_empty(), "{f} has no role");
        }
        assert_eq!(Function::from_name("submitreadings"), None);
        assert_eq!(Function::from_name(""), None);
        assert!(Function::GetReadings.allows(Role::Administrator));
        assert!(!Function::GetReadings.allows(Role::Concentrator));
        assert!(!Function::RotateMdmsKey.allows(Role::Mdms));
        assert!(!Function::RotateHeadEndKey.allows(Role::Mdms));
        assert!(Function::GetHeadEnd.is_query() && Function::GetHeadEnd.allows(Role::Concentrator));
    }
}
